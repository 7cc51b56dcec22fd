/**
 * What changed in an incident since it was last notified, and whether that is worth a message.
 * Pure: the notifier keeps a {@link NotifiedSnapshot} per incident and compares each new version
 * with it, so a burst of versions that add nothing new sends nothing.
 */
import type { Incident, IncidentStatus } from '../../correlator/incident.js';
import { severityRank, type Severity } from '../../correlator/severity.js';
import type { SignalKind } from '../../correlator/signal-kinds.js';
import type { SourceName } from '../../correlator/signal.js';

/** What the notifier remembers of the last version it notified. */
export interface NotifiedSnapshot {
  version: number;
  severity: Severity;
  status: IncidentStatus;
  sources: SourceName[];
  kinds: SignalKind[];
  correlations: string[];
  remediations: string[];
  rootCause: string;
  signalCount: number;
  lastSeen: number;
  /** Who works on it (absent in snapshots written before assignment existed: the same as unassigned). */
  assignee?: string;
  /** Sinks that were sent this incident (so updates follow it there even if routing would no longer pick them). */
  sinks: string[];
}

/** How an incident changed since its last notification. */
export interface IncidentChange {
  kind: 'opened' | 'updated' | 'resolved';
  /** The version last notified, for updates. */
  fromVersion?: number;
  severity?: { from: Severity; to: Severity };
  status?: { from: IncidentStatus; to: IncidentStatus };
  newSources: SourceName[];
  newKinds: SignalKind[];
  newCorrelations: { ruleId: string; title: string }[];
  newRemediations: string[];
  rootCauseChanged: boolean;
  addedSignals: number;
  /** `lastSeen` of the version last notified: timeline entries after it are new. */
  since?: number;
  /** Worth a message at all. */
  material: boolean;
  /** New evidence worth a thread reply of its own (not only an edit of the message). */
  significant: boolean;
}

/** The snapshot to remember after notifying `inc` to `sinks`. */
export function snapshotOf(inc: Incident, sinks: string[]): NotifiedSnapshot {
  return {
    version: inc.version,
    severity: inc.severity,
    status: inc.status,
    sources: [...inc.sources],
    kinds: Object.keys(inc.countsByKind) as SignalKind[],
    correlations: inc.correlations.map((c) => c.ruleId),
    remediations: inc.remediations.map((r) => r.title),
    rootCause: inc.rootCause.summary,
    signalCount: inc.signalCount,
    lastSeen: inc.lastSeen,
    ...(inc.assignee ? { assignee: inc.assignee } : {}),
    sinks: [...sinks],
  };
}

const SEVERE_KIND_RANK = severityRank('high');

/** Compares an incident with what was last notified of it (`undefined`: never notified). */
export function describeChange(prev: NotifiedSnapshot | undefined, inc: Incident): IncidentChange {
  if (!prev) {
    return {
      kind: inc.status === 'resolved' ? 'resolved' : 'opened',
      newSources: [...inc.sources],
      newKinds: Object.keys(inc.countsByKind) as SignalKind[],
      newCorrelations: inc.correlations.map((c) => ({ ruleId: c.ruleId, title: c.title })),
      newRemediations: inc.remediations.map((r) => r.title),
      rootCauseChanged: true,
      addedSignals: inc.signalCount,
      // A resolved incident never announced has nothing to say that anyone acted on.
      material: inc.status !== 'resolved',
      significant: false,
    };
  }
  const known = <T>(list: readonly T[]) => new Set<T>(list);
  const sources = known(prev.sources);
  const kinds = known(prev.kinds);
  const correlations = known(prev.correlations);
  const remediations = known(prev.remediations);
  const newSources = inc.sources.filter((s) => !sources.has(s));
  const newKinds = (Object.keys(inc.countsByKind) as SignalKind[]).filter((k) => !kinds.has(k));
  const newCorrelations = inc.correlations.filter((c) => !correlations.has(c.ruleId)).map((c) => ({ ruleId: c.ruleId, title: c.title }));
  const newRemediations = inc.remediations.map((r) => r.title).filter((t) => !remediations.has(t));
  const severity = prev.severity !== inc.severity ? { from: prev.severity, to: inc.severity } : undefined;
  const status = prev.status !== inc.status ? { from: prev.status, to: inc.status } : undefined;
  const rootCauseChanged = prev.rootCause !== inc.rootCause.summary;
  const addedSignals = Math.max(0, inc.signalCount - prev.signalCount);
  const escalated = severity !== undefined && severityRank(severity.to) > severityRank(severity.from);
  const severeNewKind = inc.timeline.some((e) => e.time > prev.lastSeen && newKinds.includes(e.kind) && severityRank(e.severity) >= SEVERE_KIND_RANK);
  const material =
    severity !== undefined ||
    status !== undefined ||
    prev.assignee !== inc.assignee ||
    newSources.length > 0 ||
    newKinds.length > 0 ||
    newCorrelations.length > 0 ||
    newRemediations.length > 0 ||
    rootCauseChanged ||
    // Repeats of known signals are only news once they have at least doubled.
    inc.signalCount >= 2 * Math.max(1, prev.signalCount);
  return {
    kind: inc.status === 'resolved' ? 'resolved' : 'updated',
    fromVersion: prev.version,
    ...(severity ? { severity } : {}),
    ...(status ? { status } : {}),
    newSources,
    newKinds,
    newCorrelations,
    newRemediations,
    rootCauseChanged,
    addedSignals,
    since: prev.lastSeen,
    material,
    significant: inc.status !== 'resolved' && (escalated || newSources.length > 0 || newCorrelations.length > 0 || severeNewKind),
  };
}

/** Two changes as one (versions superseded before they were delivered still count as evidence). */
export function mergeChanges(older: IncidentChange, newer: IncidentChange): IncidentChange {
  const union = <T>(a: T[], b: T[], key: (x: T) => string = String) => {
    const seen = new Set(a.map(key));
    return [...a, ...b.filter((x) => !seen.has(key(x)))];
  };
  const severity = older.severity && newer.severity ? { from: older.severity.from, to: newer.severity.to } : (newer.severity ?? older.severity);
  const status = older.status && newer.status ? { from: older.status.from, to: newer.status.to } : (newer.status ?? older.status);
  return {
    ...newer,
    kind: newer.kind === 'updated' && older.kind === 'opened' ? 'opened' : newer.kind,
    ...(older.fromVersion !== undefined ? { fromVersion: older.fromVersion } : {}),
    ...(severity && severity.from !== severity.to ? { severity } : { severity: undefined }),
    ...(status && status.from !== status.to ? { status } : { status: undefined }),
    newSources: union(older.newSources, newer.newSources),
    newKinds: union(older.newKinds, newer.newKinds),
    newCorrelations: union(older.newCorrelations, newer.newCorrelations, (c) => c.ruleId),
    newRemediations: union(older.newRemediations, newer.newRemediations),
    rootCauseChanged: older.rootCauseChanged || newer.rootCauseChanged,
    addedSignals: older.addedSignals + newer.addedSignals,
    ...(older.since !== undefined ? { since: older.since } : {}),
    material: older.material || newer.material,
    significant: newer.kind !== 'resolved' && (older.significant || newer.significant),
  };
}
