/**
 * The incident page's pure data logic: one entry per signal (from the incident's signals when the
 * API sent them, else from its bounded timeline), grouped into one lane per source, and the
 * remediation manifests' file names. No DOM, so unit-tested in node (timeline.test.ts).
 */
import type { Incident, Outcome, Severity, Signal, Target, TimelineEntry } from './types';

/** A signal as the incident page shows and graphs it, whichever shape it came in. */
export interface Entry {
  id: string;
  time: string;
  /** Milliseconds since the epoch (NaN-safe: 0 when the time does not parse). */
  ms: number;
  source: string;
  kind: string;
  severity: Severity;
  outcome: Outcome;
  title: string;
  ruleId: string;
  actor: string;
  target?: Target;
  attributes: Record<string, string>;
  entities: string[];
  mitre: string[];
}

export const LANES: readonly { source: string; label: string }[] = [
  { source: 'k8s-audit', label: 'Audit' },
  { source: 'loki', label: 'Mesh logs' },
  { source: 'alertmanager', label: 'Alerts' },
  { source: 'otlp', label: 'Traces' },
  { source: 'falco', label: 'Runtime' },
];

export function laneLabel(source: string): string {
  return LANES.find((l) => l.source === source)?.label ?? source;
}

const OUTCOMES = new Set(['allowed', 'denied', 'failed', 'unknown']);
const outcomeOf = (o: unknown): Outcome => (typeof o === 'string' && OUTCOMES.has(o) ? (o as Outcome) : 'unknown');
const msOf = (t: string): number => {
  const n = Date.parse(t);
  return Number.isFinite(n) ? n : 0;
};
const stringRecord = (r: unknown): Record<string, string> => {
  const out: Record<string, string> = {};
  if (r && typeof r === 'object') for (const [k, v] of Object.entries(r as Record<string, unknown>)) out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return out;
};

export function entryOfSignal(s: Signal): Entry {
  const time = s.eventTime ?? s.observedTime ?? '';
  return {
    id: s.id,
    time,
    ms: msOf(time),
    source: s.source,
    kind: s.kind,
    severity: s.severity,
    outcome: outcomeOf(s.outcome),
    title: s.title,
    ruleId: s.rule?.id ?? '',
    actor: s.actor?.key ?? '',
    ...(s.target ? { target: s.target } : {}),
    attributes: stringRecord(s.attributes),
    entities: Array.isArray(s.entities) ? s.entities.filter((e): e is string => typeof e === 'string') : [],
    mitre: Array.isArray(s.mitre) ? s.mitre : [],
  };
}

export function entryOfTimeline(t: TimelineEntry): Entry {
  return {
    id: t.signalId,
    time: t.time,
    ms: msOf(t.time),
    source: t.source,
    kind: t.kind,
    severity: t.severity,
    outcome: outcomeOf(t.outcome),
    title: t.title,
    ruleId: t.ruleId,
    actor: t.actor,
    ...(t.target ? { target: t.target } : {}),
    attributes: stringRecord(t.attributes),
    entities: [],
    mitre: [],
  };
}

/**
 * The incident's entries, oldest first: its signals (full, with entities) when given, plus any
 * timeline entry the signal list did not include (the two are bounded differently).
 */
export function incidentEntries(inc: Pick<Incident, 'timeline'>, signals: readonly Signal[] | undefined): Entry[] {
  const byId = new Map<string, Entry>();
  for (const s of signals ?? []) byId.set(s.id, entryOfSignal(s));
  for (const t of inc.timeline ?? []) if (!byId.has(t.signalId)) byId.set(t.signalId, entryOfTimeline(t));
  return [...byId.values()].sort((a, b) => a.ms - b.ms || a.source.localeCompare(b.source) || a.id.localeCompare(b.id));
}

export interface Lane {
  source: string;
  label: string;
  entries: Entry[];
}

/** One lane per source present, in the fixed order of {@link LANES} (unknown sources after them, by name). */
export function lanesOf(entries: readonly Entry[], sources: readonly string[] = []): Lane[] {
  const by = new Map<string, Entry[]>();
  for (const s of sources) by.set(s, []);
  for (const e of entries) {
    const l = by.get(e.source);
    if (l) l.push(e);
    else by.set(e.source, [e]);
  }
  const rank = (s: string) => {
    const i = LANES.findIndex((l) => l.source === s);
    return i < 0 ? LANES.length : i;
  };
  return [...by.entries()]
    .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))
    .map(([source, es]) => ({ source, label: laneLabel(source), entries: es.sort((a, b) => a.ms - b.ms) }));
}

/** The span of the entries' times, for a shared time axis; `pos` maps a time to 0..1. */
export function timeSpan(entries: readonly Entry[]): { start: number; end: number; pos: (ms: number) => number } {
  let start = Infinity;
  let end = -Infinity;
  for (const e of entries) {
    if (!e.ms) continue;
    start = Math.min(start, e.ms);
    end = Math.max(end, e.ms);
  }
  if (!Number.isFinite(start)) start = end = 0;
  const width = end - start;
  return { start, end, pos: (ms) => (width <= 0 ? 0.5 : Math.min(1, Math.max(0, (ms - start) / width))) };
}

/** The entries whose ids are in `ids` (all of them when there is no filter). */
export function filterEntries(entries: readonly Entry[], ids: ReadonlySet<string> | undefined): Entry[] {
  return ids ? entries.filter((e) => ids.has(e.id)) : [...entries];
}

const safeName = (n: string): string =>
  n
    .split(/[\\/]/)
    .pop()!
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .replace(/^\.+/, '')
    .slice(0, 120);

/** The text and the file name of the `n`th (0-based) manifest of a remediation of `kind`: the name its "# save as" line gives, or `<kind>-<n>.yaml`. */
export function manifestFile(m: string, kind: string, n: number): { filename: string; text: string } {
  const fallback = `${safeName(kind) || 'manifest'}-${n + 1}.yaml`;
  const named = /^#\s*save as\s+(\S+)/.exec(m.split('\n', 1)[0] ?? '')?.[1];
  // Whatever the line says, the download is a YAML file: never a .sh or .exe a browser might run.
  const f = named ? safeName(named).replace(/\.(ya?ml)$/i, '') : '';
  return { filename: f ? `${f}.yaml` : fallback, text: m };
}
