/**
 * The list pages' filters: read from and written to the URL query (so a filtered view is a shareable
 * link and survives a reload), turned into the API's query parameters, and matched client-side for
 * what the server does not filter (the source) and for incidents that arrive over the event stream.
 * Pure: unit-tested in node (filters.test.ts).
 */
import { severityRank } from './format';
import { SEVERITIES, STATUSES, type IncidentStatus, type IncidentSummary, type Severity, type Signal } from './types';

export const SOURCES = ['k8s-audit', 'alertmanager', 'loki', 'otlp', 'falco'] as const;

/** The time ranges the list offers, and their length in ms ('' is all time). */
export const SINCE: Readonly<Record<string, number>> = {
  '15m': 15 * 60_000,
  '1h': 3_600_000,
  '24h': 86_400_000,
  '7d': 7 * 86_400_000,
  '30d': 30 * 86_400_000,
};
export const SINCE_LABELS: Readonly<Record<string, string>> = {
  '15m': 'Last 15 minutes',
  '1h': 'Last hour',
  '24h': 'Last 24 hours',
  '7d': 'Last 7 days',
  '30d': 'Last 30 days',
};

/** `active` is open or acknowledged. */
export type StatusFilter = '' | 'active' | IncidentStatus;

export interface IncidentFilters {
  /** Minimum severity; '' = any. */
  severity: Severity | '';
  status: StatusFilter;
  /** An actor key (exact), e.g. `sa:frontend/frontend`. */
  actor: string;
  /** A namespace in the incident's blast radius. */
  namespace: string;
  source: string;
  /** A key of {@link SINCE}; '' = all time. */
  since: string;
}

export const EMPTY_FILTERS: IncidentFilters = { severity: '', status: '', actor: '', namespace: '', source: '', since: '' };

const oneOf = <T extends string>(v: string | null, allowed: readonly T[]): T | '' => (v !== null && (allowed as readonly string[]).includes(v) ? (v as T) : '');

/** The filters a URL query holds; unknown values are ignored (an old or hand-edited link still opens). */
export function parseFilters(q: URLSearchParams): IncidentFilters {
  return {
    severity: oneOf(q.get('severity'), SEVERITIES),
    status: oneOf(q.get('status'), ['active', ...STATUSES]),
    actor: (q.get('actor') ?? '').trim(),
    namespace: (q.get('namespace') ?? '').trim(),
    source: (q.get('source') ?? '').trim(),
    since: oneOf(q.get('since'), Object.keys(SINCE)),
  };
}

/** The URL query parameters for filters, for setSearch ('' removes a parameter). */
export function filtersToSearch(f: IncidentFilters): Record<string, string> {
  return { severity: f.severity, status: f.status, actor: f.actor, namespace: f.namespace, source: f.source, since: f.since };
}

/** The statuses a status filter lets through; undefined = all. */
export function statusList(s: StatusFilter): readonly IncidentStatus[] | undefined {
  if (s === '') return undefined;
  if (s === 'active') return ['open', 'acknowledged'];
  return [s];
}

/** The earliest lastSeen (ms) the time range lets through, at `now`; undefined = all time. */
export function sinceTime(f: Pick<IncidentFilters, 'since'>, now: number): number | undefined {
  const d = SINCE[f.since];
  return d === undefined ? undefined : now - d;
}

/** GET /api/v1/incidents's query parameters for the filters the server applies (all but the source). */
export function serverQuery(f: IncidentFilters, now: number): Record<string, string> {
  const out: Record<string, string> = {};
  const st = statusList(f.status);
  if (st) out.status = st.join(',');
  if (f.severity) out.severity = f.severity;
  if (f.actor) out.actor = f.actor;
  if (f.namespace) out.namespace = f.namespace;
  const since = sinceTime(f, now);
  if (since !== undefined) out.since = new Date(since).toISOString();
  return out;
}

/** Whether an incident passes every filter (what the server would say, plus the source). */
export function matchesIncident(inc: IncidentSummary, f: IncidentFilters, now: number): boolean {
  const st = statusList(f.status);
  if (st && !st.includes(inc.status)) return false;
  if (f.severity && severityRank(inc.severity) < severityRank(f.severity)) return false;
  if (f.actor && inc.actor?.key !== f.actor) return false;
  if (f.namespace && !(inc.blastRadius?.namespaces ?? []).includes(f.namespace)) return false;
  if (f.source && !(inc.sources ?? []).includes(f.source)) return false;
  const since = sinceTime(f, now);
  if (since !== undefined && !(Date.parse(inc.lastSeen) >= since)) return false;
  return true;
}

/** Only the source is left to the client once the server has filtered. */
export function matchesClientSide(inc: IncidentSummary, f: IncidentFilters): boolean {
  return !f.source || (inc.sources ?? []).includes(f.source);
}

export function hasFilters(f: IncidentFilters): boolean {
  return Object.values(f).some((v) => v !== '');
}

// ---------------------------------------------------------------------------------------------
// The signals explorer.

export const SIGNAL_LIMITS = ['100', '250', '500', '1000'] as const;

export interface SignalFilters {
  severity: Severity | '';
  kind: string;
  actor: string;
  source: string;
  /** Free text, matched case-insensitively against title, rule, kind, actor, target and attributes. */
  q: string;
  limit: string;
}

export function parseSignalFilters(q: URLSearchParams): SignalFilters {
  return {
    severity: oneOf(q.get('severity'), SEVERITIES),
    kind: (q.get('kind') ?? '').trim(),
    actor: (q.get('actor') ?? '').trim(),
    source: (q.get('source') ?? '').trim(),
    q: q.get('q') ?? '',
    limit: oneOf(q.get('limit'), SIGNAL_LIMITS) || '250',
  };
}

export function signalFiltersToSearch(f: SignalFilters): Record<string, string> {
  return { severity: f.severity, kind: f.kind, actor: f.actor, source: f.source, q: f.q, limit: f.limit === '250' ? '' : f.limit };
}

/** GET /api/v1/signals's query (limit, severity, kind, actor). */
export function signalServerQuery(f: SignalFilters): Record<string, string> {
  const out: Record<string, string> = { limit: f.limit };
  if (f.severity) out.severity = f.severity;
  if (f.kind) out.kind = f.kind;
  if (f.actor) out.actor = f.actor;
  return out;
}

/** A signal's rule (tolerates a signal without one: a newer or older server may change the shape). */
export function signalRule(s: Signal): { id: string; title: string } {
  const r = s.rule as Partial<Signal['rule']> | undefined;
  return { id: typeof r?.id === 'string' ? r.id : '', title: typeof r?.title === 'string' ? r.title : '' };
}

/** The text a signal is searched in (lower case). */
export function signalText(s: Signal): string {
  const rule = signalRule(s);
  const parts: string[] = [s.id, s.title, rule.id, rule.title, s.kind, s.source, s.actor?.key ?? '', s.actor?.name ?? '', s.outcome ?? ''];
  for (const v of Object.values(s.target ?? {})) if (typeof v === 'string') parts.push(v);
  for (const [k, v] of Object.entries(s.attributes ?? {})) parts.push(k, String(v));
  for (const e of s.entities ?? []) parts.push(e);
  for (const m of s.mitre ?? []) parts.push(m);
  return parts.join('\n').toLowerCase();
}

/** The client-side part of the signal filters: source and text. */
export function matchesSignal(s: Signal, f: Pick<SignalFilters, 'source' | 'q'>, text: (s: Signal) => string = signalText): boolean {
  if (f.source && s.source !== f.source) return false;
  const q = f.q.trim().toLowerCase();
  if (!q) return true;
  const hay = text(s);
  return q.split(/\s+/).every((w) => hay.includes(w));
}
