/**
 * `kubevigil export`: incidents and/or signals of a time range from the local store, as NDJSON on
 * stdout (one JSON object a line, as the API sends them, with `type` "incident" or "signal"), for
 * archiving before retention prunes them or for another tool. It reads the SQLite file in the data
 * directory, which a running kubevigil may keep writing (WAL: readers do not block it).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { apiIncident, apiSignal } from '../api/schemas.js';
import { openSqliteStore } from '../store/sqlite.js';
import { MAX_LIST_LIMIT } from '../store/store.js';
import { CliError } from './errors.js';

/** What `export` writes. */
export type ExportWhat = 'incidents' | 'signals' | 'both';

export interface ExportOptions {
  dataDir: string;
  /** The range, ms since epoch: incidents active in it, signals whose event time is in it (`until` excluded). */
  since: number;
  until: number;
  what: ExportWhat;
  out: (line: string) => void;
}

// Far more than an incident holds (its signals are bounded by the correlator's budgets).
const SIGNALS_PER_INCIDENT = 10_000_000;

/** Writes the records; resolves with how many of each were written. */
export async function exportRecords(o: ExportOptions): Promise<{ incidents: number; signals: number }> {
  const file = join(o.dataDir, 'kubevigil.db');
  // Opening a missing file would create an empty store and export nothing without a word.
  if (!existsSync(file)) throw new CliError(`no store at ${file}; give --data-dir (or KUBEVIGIL_DATA_DIR) of the kubevigil whose store to export`);
  const store = openSqliteStore(file);
  const counts = { incidents: 0, signals: 0 };
  const seenSignals = new Set<string>();
  try {
    let cursor: string | undefined;
    do {
      // Most recently active first; those that ended before `since` are not listed at all.
      const page = await store.list({ since: o.since, limit: MAX_LIST_LIMIT, ...(cursor ? { cursor } : {}) });
      for (const inc of page.items) {
        if (inc.firstSeen >= o.until) continue;
        if (o.what !== 'signals') {
          o.out(JSON.stringify({ type: 'incident', ...apiIncident(inc) }));
          counts.incidents++;
        }
        if (o.what === 'incidents') continue;
        for (const s of await store.signals(inc.id, SIGNALS_PER_INCIDENT)) {
          // A signal can belong to two incidents (one merged into the other): written once, with the first.
          if (s.eventTime < o.since || s.eventTime >= o.until || seenSignals.has(s.id)) continue;
          seenSignals.add(s.id);
          o.out(JSON.stringify({ type: 'signal', incidentId: inc.id, ...apiSignal(s) }));
          counts.signals++;
        }
      }
      cursor = page.nextCursor;
    } while (cursor);
  } finally {
    await store.close();
  }
  return counts;
}
