/** The API's shapes as the console reads them (see /api/v1/openapi.json for the whole contract). */

export type Severity = 'info' | 'low' | 'medium' | 'high' | 'critical';
export const SEVERITIES: readonly Severity[] = ['info', 'low', 'medium', 'high', 'critical'];
export type IncidentStatus = 'open' | 'acknowledged' | 'resolved';
export const STATUSES: readonly IncidentStatus[] = ['open', 'acknowledged', 'resolved'];
export type Outcome = 'allowed' | 'denied' | 'failed' | 'unknown';

export interface Actor {
  key: string;
  type: string;
  name: string;
  namespace?: string;
}

export interface Target {
  resource?: string;
  apiGroup?: string;
  namespace?: string;
  name?: string;
  subresource?: string;
  verb?: string;
  service?: string;
  [k: string]: unknown;
}

export interface TimelineEntry {
  signalId: string;
  time: string;
  actor: string;
  source: string;
  kind: string;
  severity: Severity;
  title: string;
  outcome?: Outcome;
  ruleId: string;
  target?: Target;
  attributes?: Record<string, string>;
}

export interface Evidence {
  type: string;
  entity?: string;
  detail: string;
  signalIds: string[];
}

export interface RootCause {
  summary: string;
  confidence?: number;
  evidence: Evidence[];
  [k: string]: unknown;
}

export interface Remediation {
  kind: string;
  title: string;
  rationale: string;
  risk: string;
  commands: string[];
  /** Complete YAML manifests; the first line of each is `# save as <file>`. */
  manifests: string[];
  basis?: string;
  [k: string]: unknown;
}

export interface CorrelationFired {
  ruleId: string;
  title: string;
  signalIds: string[];
  time: string;
}

export interface Note {
  time: string;
  status: IncidentStatus;
  note: string;
  by?: string;
}

export interface BlastRadius {
  namespaces?: string[];
  workloads?: string[];
  secrets?: string[];
  bindings?: string[];
  policies?: string[];
  [k: string]: string[] | undefined;
}

/** An incident as lists and the event stream send it (no timeline). */
export interface IncidentSummary {
  id: string;
  title: string;
  status: IncidentStatus;
  severity: Severity;
  actor: Actor;
  entities: string[];
  blastRadius: BlastRadius;
  firstSeen: string;
  lastSeen: string;
  createdAt: string;
  updatedAt: string;
  resolvedAt?: string;
  version: number;
  signalCount: number;
  countsByKind: Record<string, number>;
  sources: string[];
  correlations: CorrelationFired[];
  rules: string[];
  mitre: string[];
  rootCause?: RootCause;
  assignee?: string;
  cluster?: string;
  flood?: { pattern: string; actors: number; sample: string[] };
  silenced?: { silenceId: string; signalIds: string[]; count: number }[];
  remediationCount?: number;
  remediations?: Remediation[];
  [k: string]: unknown;
}

/** One incident in full. */
export interface Incident extends IncidentSummary {
  timeline: TimelineEntry[];
  remediations: Remediation[];
  notes: Note[];
}

/** A signal as GET /api/v1/signals and /api/v1/incidents/{id}/signals send it. */
export interface Signal {
  id: string;
  /** The detection rule that raised it (timeline entries carry only its id, as `ruleId`). */
  rule: { id: string; title: string };
  matched?: { field: string; op: string; expected?: unknown; actual?: unknown }[];
  cluster?: string;
  title: string;
  kind: string;
  severity: Severity;
  source: string;
  actor: Actor;
  entities?: string[];
  eventTime: string;
  observedTime: string;
  outcome?: Outcome;
  target?: Target;
  attributes?: Record<string, string>;
  mitre?: string[];
  excerpt?: unknown;
  [k: string]: unknown;
}

export interface DetectionRuleInfo {
  type: 'detection';
  id: string;
  title: string;
  description?: string;
  source: string;
  severity: Severity;
  kind: string;
  mitre: string[];
  file: string;
}

export interface CorrelationRuleInfo {
  type: string;
  id: string;
  title: string;
  description?: string;
  rules: string[];
  timespanMs: number;
  severity: Severity;
  mitre: string[];
  file: string;
}
