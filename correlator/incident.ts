/**
 * Incidents: many signals about one attack, with what caused it and how to fix it. An incident is
 * plain data (JSON-serializable) so stores, the API, the bus and notifiers all share this shape.
 */
import { boundEntryAttributes } from './budget.js';
import type { Actor } from './entities.js';
import type { Severity } from './severity.js';
import { hasTrait, type SignalKind } from './signal-kinds.js';
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
  /**
   * What kind of fact: the acting identity, what enabled it, the binding it gave itself
   * (`escalation`), where its credential was used from (`credential`), what it had never done
   * before or does routinely (`novelty`), what stopped it, what was missing.
   */
  type: 'actor' | 'enabler' | 'escalation' | 'credential' | 'first-signal' | 'novelty' | 'blocked-by' | 'missing-control' | 'mesh';
  /** The entity the evidence is about (`binding:ClusterRoleBinding/x`, `policy:gatekeeper/y`). */
  entity?: string;
  detail: string;
  signalIds: string[];
}

/** A RoleBinding or ClusterRoleBinding, and the role it grants when known. */
export interface BindingRef {
  kind: 'ClusterRoleBinding' | 'RoleBinding';
  name: string;
  /** A RoleBinding's namespace; absent for a ClusterRoleBinding (or when the audit data did not say). */
  namespace?: string;
  roleKind?: string;
  roleName?: string;
}

/** Where the actor's credential was used from, or how it was minted (signals with the trait `credential-source`). */
export interface CredentialSource {
  /** In words: "token used from 203.0.113.7 with kubectl/v1.31.0". */
  detail: string;
  /** The client address the credential was used from, when the signal names one. */
  sourceIP?: string;
  /** The client's user agent (its first word: `kubectl/v1.31.0`), when the signal names one. */
  userAgent?: string;
}

/** A policy rule of a Role or ClusterRole, as the cluster holds it (RBAC's PolicyRule). */
export interface RbacRule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
  verbs: string[];
}

/** A subject of a RoleBinding or ClusterRoleBinding. */
export interface RbacSubject {
  kind: 'User' | 'Group' | 'ServiceAccount';
  name: string;
  /** A service account's namespace. */
  namespace?: string;
}

/**
 * What the live cluster (the cluster inventory, read from the Kubernetes API) says of a binding the
 * root cause names. Present only when an inventory answered: the audit data alone cannot say it.
 */
export interface BindingInCluster {
  /** False when the binding no longer exists; nothing else is then known. */
  exists: boolean;
  /** The role its roleRef names (the audit annotation may not). */
  roleKind?: 'Role' | 'ClusterRole';
  roleName?: string;
  /** False when that role does not exist: the binding grants nothing. */
  roleExists?: boolean;
  /**
   * The role's rules that grant what the incident shows was done through the binding: the sensitive
   * verb used, or, for the binding that allowed an escalation, writing bindings and bind, escalate
   * or wildcards. Empty when no rule grants it any more (the role changed since).
   */
  grantingRules: RbacRule[];
  /** How the identity that used the binding is one of its subjects: itself, or a group it belongs to. Empty when the live binding no longer names it. */
  actorSubjects: RbacSubject[];
  /** Every other subject: who else loses the role if the binding is deleted. */
  otherSubjects: RbacSubject[];
}

/** A workload that owns pods: Deployment, StatefulSet, DaemonSet, Job, CronJob, or a bare ReplicaSet. */
export interface WorkloadOwner {
  kind: 'Deployment' | 'StatefulSet' | 'DaemonSet' | 'Job' | 'CronJob' | 'ReplicaSet' | 'ReplicationController';
  namespace: string;
  name: string;
}

/** A pod the incident names, with the workload that owns it (from the cluster inventory). */
export interface PodOwner {
  /** `ns/name` of the pod. */
  pod: string;
  /** Its top owner: the Deployment behind its ReplicaSet, the CronJob behind its Job. */
  workload: WorkloadOwner;
  /** True for the actor's own pod (its token made the requests), false for a pod it acted on. */
  actorPod: boolean;
}

/**
 * The engine's explanation: one sentence, the evidence behind it, and how sure it is (0–1). Fields
 * added after the first release are optional: incidents stored without them still load.
 */
export interface RootCause {
  summary: string;
  evidence: Evidence[];
  confidence: number;
  /** The identity that acted (with impersonation, the impersonator: it holds the impersonate permission). */
  actor: string;
  /**
   * The binding that enabled the attack, when one is named in the audit annotations: the one behind
   * the allowed sensitive actions or, when the actor gave itself a binding ({@link escalation}),
   * the one that allowed it to.
   */
  enablingBinding?: BindingRef;
  /** The binding the actor created or changed during the incident (with the enabler's power) and then used, or that grants cluster-admin. */
  escalation?: BindingRef;
  /** Where the actor's credential was used from, when a signal shows it. */
  credentialSource?: CredentialSource;
  /** The identities the actor impersonated (raw Kubernetes usernames), when it did: context, not the actor. */
  impersonated?: string[];
  /** The enabling binding as the live cluster has it (cluster inventory): the rules that granted the attack, and who else it binds. */
  enablingBindingInCluster?: BindingInCluster;
  /** The escalation binding as the live cluster has it (cluster inventory). */
  escalationInCluster?: BindingInCluster;
  /** The workloads that own the pods the incident names (cluster inventory): the actor's pod and those it acted on. */
  workloads?: PodOwner[];
}

/** What a remediation does. */
export type RemediationKind =
  | 'isolate-workload'
  | 'delete-workload'
  | 'remove-binding'
  | 'tighten-role'
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
  /**
   * What the names and facts rest on: the audit data alone, or checked against the live cluster
   * (the cluster inventory). Absent in incidents stored before it: the audit data.
   */
  basis?: 'audit-data' | 'cluster-inventory';
  /** For a role rewritten or replaced: its rules as the cluster has them, and what stays of each (cluster inventory). */
  roleDiff?: RoleDiff;
}

/** One rule of a role as the cluster has it, and what a remediation keeps of it. */
export interface RuleDiff {
  rule: RbacRule;
  /** What stays of it: the rule itself, narrower rules, or nothing. */
  stays: RbacRule[];
  /** Why what goes goes; absent when the whole rule stays. */
  removed?: string;
}

/** A role's rules against what a remediation keeps of them. */
export interface RoleDiff {
  kind: 'Role' | 'ClusterRole';
  name: string;
  namespace?: string;
  rules: RuleDiff[];
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
  /**
   * Why it was resolved: by a person, after a quiet period, at its lifetime cap, merged into another,
   * or evicted early to keep the open incidents within their budget (the least severe, least recent).
   */
  resolution?: 'manual' | 'quiet' | 'lifetime' | 'merged' | 'evicted';
  /**
   * Set on a flood incident: one incident for many actors doing the same thing (a pattern), opened
   * once more than `floodActors` distinct actors opened incidents of that pattern within the window.
   */
  flood?: FloodInfo;
  /** For a merged incident: the incident that absorbed it. */
  mergedInto?: string;
  /** Who is working on it (set from Slack's "Assign to me": `slack:<username> (<user id>)`). */
  assignee?: string;
  /** Highest severity of any signal ever seen (the timeline is bounded; this is not). */
  maxSignalSeverity: Severity;
  /** Signals of its actors that silences hid (correlator/silences.ts): per silence, a few ids and the count. */
  silenced?: SilencedSignals[];
  /** The cluster of the signals that opened it (KUBEVIGIL_CLUSTER_NAME); absent when unnamed. */
  cluster?: string;
}

/** Signals one silence hid from an incident: they neither joined its timeline nor changed its severity. */
export interface SilencedSignals {
  silenceId: string;
  /** The first few signal ids (bounded); `count` has them all. */
  signalIds: string[];
  count: number;
}

/** What a flood incident groups. */
export interface FloodInfo {
  /** The detection rule or correlation id every actor of the flood matched. */
  pattern: string;
  /** Distinct actors that matched it in the window (those with incidents of their own included). */
  actors: number;
  /** A few of the actors, first seen first. */
  sample: string[];
}

/** Bounds on one incident's size. */
export interface IncidentLimits {
  /** Timeline entries kept (the first half and the latest half of this many). */
  maxTimeline: number;
  maxEntities: number;
}

const IP = /^[0-9A-Fa-f:.]{2,45}$/;
// Printable ASCII only: a user agent is client-controlled and read by people.
const USER_AGENT = /^[\x20-\x7e]{1,200}$/;
/** A copy of a short string, not a view into the excerpt's: a cut of a huge client value would keep all of it in memory. */
const fresh = (s: string): string => JSON.parse(JSON.stringify(s)) as string;

/**
 * The attributes a timeline entry keeps: the signal's, plus, for a kind that shows where the
 * credential came from (trait `credential-source`), the client address and user agent read from
 * the signal's excerpt (`sourceIPs[0]`, `userAgent`) when the source did not set `sourceIP` and
 * `userAgent` itself. The excerpt is not kept in the timeline (and not on the distributed
 * correlator's signals), so root cause reads these two here.
 */
function entryAttributes(s: Signal): Record<string, string> {
  if (!hasTrait(s.kind, 'credential-source') || (s.attributes.sourceIP && s.attributes.userAgent)) return s.attributes;
  const ips = s.excerpt.sourceIPs;
  const ip = Array.isArray(ips) ? ips[0] : undefined;
  const ua = s.excerpt.userAgent;
  const out = { ...s.attributes };
  if (!out.sourceIP && typeof ip === 'string' && IP.test(ip)) out.sourceIP = fresh(ip);
  if (!out.userAgent && typeof ua === 'string' && USER_AGENT.test(ua)) out.userAgent = fresh(ua);
  return out;
}

/**
 * Each timeline entry's JSON, written once. An entry never changes once made (an incident's
 * timeline gains and loses whole entries), and an incident is written again on every change: the
 * 200 entries of a long attack are most of its JSON.
 */
const entryJson = new WeakMap<TimelineEntry, string>();

/**
 * Exactly `JSON.stringify(inc)`, with each timeline entry serialized once across all the versions
 * of the incident (see {@link entryJson}). An incident is a plain JSON object: its own keys, in
 * order, with JSON values.
 */
export function incidentJson(inc: Incident): string {
  const o = inc as unknown as Record<string, unknown>;
  let out = '';
  for (const k of Object.keys(o)) {
    let json: string | undefined;
    if (k === 'timeline' && Array.isArray(o[k])) {
      const entries = (o[k] as TimelineEntry[]).map((e) => {
        let j = entryJson.get(e);
        if (j === undefined) entryJson.set(e, (j = JSON.stringify(e)));
        return j;
      });
      json = `[${entries.join(',')}]`;
    } else json = JSON.stringify(o[k]);
    if (json !== undefined) out += `${out ? ',' : ''}${JSON.stringify(k)}:${json}`;
  }
  return `{${out}}`;
}

/** Converts a signal to its timeline entry; never changed once made ({@link incidentJson} relies on it). */
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
    attributes: boundEntryAttributes(entryAttributes(s)),
  };
}
