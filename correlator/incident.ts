/**
 * Incidents: many signals about one attack, with what caused it and how to fix it. An incident is
 * plain data (JSON-serializable) so stores, the API, the bus and notifiers all share this shape.
 */
import type { Actor } from './entities.js';
import type { Severity } from './severity.js';
import type { SignalKind } from './signal-kinds.js';
import type { Outcome, Signal, SourceName, Target } from './signal.js';

/** Lifecycle: open → acknowledged → resolved. Resolved is final; a new signal opens a new incident. */
export type IncidentStatus = 'open' | 'acknowledged' | 'resolved';

/** The statuses in lifecycle order. */
export const INCIDENT_STATUSES: readonly IncidentStatus[] = ['open', 'acknowledged', 'resolved'];

/** One signal as the incident's timeline keeps it: enough to read the story without the full signal. */
export interface TimelineEntry {
  signalId: string;
  time: number;
  /** Entity key of the signal's actor (an incident may absorb signals of related actors). */
  actor: string;
  source: SourceName;
  kind: SignalKind;
  severity: Severity;
  title: string;
  outcome: Outcome;
  ruleId: string;
  target: Target;
  attributes: Record<string, string>;
}

/** What the attack touched, grouped for the reader. */
export interface BlastRadius {
  namespaces: string[];
  workloads: string[];
  secrets: string[];
  bindings: string[];
  policies: string[];
}

/** A piece of evidence for a root cause, pointing at the signals that show it. */
export interface Evidence {
  /** What kind of fact: the acting identity, what enabled it, what stopped it, what was missing. */
  type: 'actor' | 'enabler' | 'first-signal' | 'blocked-by' | 'missing-control' | 'mesh';
  /** The entity the evidence is about (`binding:ClusterRoleBinding/x`, `policy:gatekeeper/y`). */
  entity?: string;
  detail: string;
  signalIds: string[];
}

/** The engine's explanation: one sentence, the evidence behind it, and how sure it is (0–1). */
export interface RootCause {
  summary: string;
  evidence: Evidence[];
  confidence: number;
  /** The identity that acted. */
  actor: string;
  /** The binding that enabled the sensitive actions, when one is named in the audit annotations. */
  enablingBinding?: { kind: 'ClusterRoleBinding' | 'RoleBinding'; name: string; namespace?: string; roleKind?: string; roleName?: string };
}

/** What a remediation does. */
export type RemediationKind =
  | 'isolate-workload'
  | 'delete-workload'
  | 'remove-binding'
  | 'least-privilege-role'
  | 'admission-policy'
  | 'mesh-mtls-strict'
  | 'mesh-authorization-policy'
  | 'rotate-credentials';

/** A suggested fix. Nothing is ever applied automatically. */
export interface Remediation {
  kind: RemediationKind;
  title: string;
  rationale: string;
  /** What could break if applied. */
  risk: string;
  /** Exact commands, in order. */
  commands: string[];
  /** Complete manifests as YAML documents. */
  manifests: string[];
}

/** A correlation rule that matched, and the signals it counted. */
export interface CorrelationMatch {
  ruleId: string;
  title: string;
  signalIds: string[];
  time: number;
}

/** One incident. */
export interface Incident {
  id: string;
  title: string;
  status: IncidentStatus;
  severity: Severity;
  actor: Actor;
  /** Every entity key seen in the incident's signals (actor included). */
  entities: string[];
  blastRadius: BlastRadius;
  firstSeen: number;
  lastSeen: number;
  /** When the incident was opened (processing time). */
  createdAt: number;
  updatedAt: number;
  /** Bumped on every change; notifiers and stores use it for idempotency. */
  version: number;
  /** Ordered by event time; bounded (see {@link IncidentLimits}). */
  timeline: TimelineEntry[];
  /** Signals per kind, including those no longer in the bounded timeline. */
  signalCount: number;
  countsByKind: Partial<Record<SignalKind, number>>;
  sources: SourceName[];
  correlations: CorrelationMatch[];
  rules: string[];
  mitre: string[];
  rootCause: RootCause;
  remediations: Remediation[];
  /** Notes from acknowledge/resolve, newest last. */
  notes: { time: number; status: IncidentStatus; note: string; by?: string }[];
  resolvedAt?: number;
  /** Why it was resolved: by a person, after a quiet period, at its lifetime cap, or merged into another. */
  resolution?: 'manual' | 'quiet' | 'lifetime' | 'merged';
  /** For a merged incident: the incident that absorbed it. */
  mergedInto?: string;
  /** Highest severity of any signal ever seen (the timeline is bounded; this is not). */
  maxSignalSeverity: Severity;
}

/** Bounds on one incident's size. */
export interface IncidentLimits {
  /** Timeline entries kept (the first half and the latest half of this many). */
  maxTimeline: number;
  maxEntities: number;
}

/** Converts a signal to its timeline entry. */
export function timelineEntry(s: Signal): TimelineEntry {
  return {
    signalId: s.id,
    time: s.eventTime,
    actor: s.actor.key,
    source: s.source,
    kind: s.kind,
    severity: s.severity,
    title: s.title,
    outcome: s.outcome,
    ruleId: s.rule.id,
    target: s.target,
    attributes: s.attributes,
  };
}
