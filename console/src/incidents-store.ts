/**
 * The incident list's data: pages from GET /api/v1/incidents and changes from the event stream
 * merged by id (the higher `version` wins, so a late page never undoes a newer stream event —
 * even one that took the incident off the list, thanks to the {@link VersionsSeen} the list keeps),
 * kept only while they match the filters, ordered most recent first. Pure: unit-tested in node.
 */
import { severityRank } from './format';
import type { IncidentSummary } from './types';

/** How many incidents the list loads at most (it follows nextCursor pages up to this). */
export const MAX_INCIDENTS = 10_000;

/** Most recent lastSeen first; the more severe first at the same time; then by id (stable). */
export function compareIncidents(a: IncidentSummary, b: IncidentSummary): number {
  // RFC 3339 times from the API all have the same shape (toISOString), so they compare as strings.
  if (a.lastSeen !== b.lastSeen) return a.lastSeen < b.lastSeen ? 1 : -1;
  const s = severityRank(b.severity) - severityRank(a.severity);
  if (s !== 0) return s;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * The highest version seen of each incident, including those no longer listed: a page loaded
 * before an incident was resolved (and left an "active" list) must not bring it back as open.
 * Bounded: past `max` ids the oldest entries go (an incident that old is long settled).
 */
export class VersionsSeen {
  private readonly versions = new Map<string, number>();
  constructor(private readonly max = 50_000) {}

  /** Records `inc`'s version; false when a newer one was seen before (the caller drops `inc`). */
  admit(inc: IncidentSummary): boolean {
    const v = inc.version ?? 0;
    const seen = this.versions.get(inc.id);
    if (seen !== undefined && v < seen) return false;
    if (seen === undefined && this.versions.size >= this.max) {
      const oldest = this.versions.keys().next().value;
      if (oldest !== undefined) this.versions.delete(oldest);
    }
    if (seen === undefined || v > seen) this.versions.set(inc.id, v);
    return true;
  }
}

/** Whether `next` should replace `prev` (absent, or at least as new). */
export function isNewer(prev: IncidentSummary | undefined, next: IncidentSummary): boolean {
  return !prev || (next.version ?? 0) >= (prev.version ?? 0);
}

/**
 * Merges incidents into a sorted list: each one replaces the one with its id when its version is
 * not older; those `keep` refuses (no longer matching the filters) leave the list. Returns the same
 * array when nothing changed, so a memo downstream does not recompute.
 */
export function mergeIncidents(
  list: readonly IncidentSummary[],
  incoming: readonly IncidentSummary[],
  keep: (inc: IncidentSummary) => boolean = () => true,
  seen?: VersionsSeen,
): readonly IncidentSummary[] {
  if (incoming.length === 0) return list;
  const byId = new Map<string, IncidentSummary>();
  for (const inc of list) byId.set(inc.id, inc);
  let changed = false;
  for (const inc of incoming) {
    if (!inc || typeof inc.id !== 'string') continue;
    if (seen && !seen.admit(inc)) continue;
    const prev = byId.get(inc.id);
    if (!isNewer(prev, inc)) continue;
    if (prev && prev.version === inc.version && prev.updatedAt === inc.updatedAt && prev.status === inc.status) continue;
    if (keep(inc)) {
      byId.set(inc.id, inc);
      changed = true;
    } else if (prev) {
      byId.delete(inc.id);
      changed = true;
    }
  }
  if (!changed) return list;
  return [...byId.values()].sort(compareIncidents);
}

/** Only one incident: the event stream's case, without copying the list into a map. */
export function upsertIncident(
  list: readonly IncidentSummary[],
  inc: IncidentSummary,
  keep: (inc: IncidentSummary) => boolean = () => true,
  seen?: VersionsSeen,
): readonly IncidentSummary[] {
  if (seen && !seen.admit(inc)) return list;
  const i = list.findIndex((x) => x.id === inc.id);
  const prev = i < 0 ? undefined : list[i];
  if (!isNewer(prev, inc)) return list;
  const out = list.slice();
  if (i >= 0) out.splice(i, 1);
  if (!keep(inc)) return i >= 0 ? out : list;
  // Binary search for the place in the order.
  let lo = 0;
  let hi = out.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareIncidents(out[mid]!, inc) <= 0) lo = mid + 1;
    else hi = mid;
  }
  out.splice(lo, 0, inc);
  return out;
}

/** "1 incident", "3 incidents". */
export function countText(n: number, noun = 'incident'): string {
  return `${n.toLocaleString('en-US')} ${noun}${n === 1 ? '' : 's'}`;
}

/** How often each rule fired and when last. */
export interface Fired {
  count: number;
  /** ms */
  last: number;
}

/** Counts per rule id with the last time each fired. Pure. */
export function firedCounts<T>(items: readonly T[], each: (item: T, add: (ruleId: string, time: string) => void) => void): Map<string, Fired> {
  const out = new Map<string, Fired>();
  const add = (id: string, time: string) => {
    const t = Date.parse(time);
    const f = out.get(id);
    if (f) {
      f.count++;
      if (t > f.last) f.last = t;
    } else out.set(id, { count: 1, last: Number.isFinite(t) ? t : 0 });
  };
  for (const it of items) each(it, add);
  return out;
}
