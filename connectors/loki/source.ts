/** The Loki source: schema and decoder for detection, rule tests and the CLI. */
import type { SourceDescriptor } from '../kit/source.js';
import { checkLabels } from './labels.js';
import { LOKI_SCHEMA, normalizeLokiEntry } from './normalize.js';
import { decodePushJson, DEFAULT_TENANT, PushDecodeError, type LokiEntry } from './push.js';
import { isObj } from '../../correlator/json-guards.js';

const isStringMap = (v: unknown): v is Record<string, string> => isObj(v) && Object.values(v).every((x) => typeof x === 'string');

/** `"1570818238000000000"` (Loki's nanoseconds) or an RFC 3339 time → nanoseconds; undefined when neither. */
export function toNanos(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  if (/^\d{1,19}$/.test(v)) return v;
  const ms = Date.parse(v);
  if (!Number.isFinite(ms) || ms < 0) return undefined;
  const frac = /\.(\d+)/.exec(v)?.[1] ?? '';
  // Keep sub-millisecond digits Date.parse drops.
  const subMs = frac.length > 3 ? frac.slice(3, 9).padEnd(6, '0') : '000000';
  return `${ms}${subMs}`;
}

/** One `{labels, line, time?, metadata?, tenant?}` object, as rule tests write a log line. */
function decodeSingle(v: Record<string, unknown>, observedTime: number): LokiEntry | string {
  if (typeof v.line !== 'string') return 'line must be a string';
  if (!isStringMap(v.labels)) return 'labels must be an object of string values';
  const problem = checkLabels(v.labels);
  if (problem) return `labels: ${problem}`;
  if (v.metadata !== undefined && !isStringMap(v.metadata)) return 'metadata must be an object of string values';
  if (v.tenant !== undefined && typeof v.tenant !== 'string') return 'tenant must be a string';
  let time = `${Math.max(0, Math.trunc(observedTime))}000000`;
  if (v.time !== undefined) {
    const t = toNanos(v.time);
    if (t === undefined)
      return `time must be nanoseconds since the epoch as a string ("1570818238000000000") or an RFC 3339 time, got ${JSON.stringify(v.time)}`;
    time = t;
  }
  return {
    line: v.line,
    labels: { ...v.labels },
    metadata: { ...((v.metadata as Record<string, string> | undefined) ?? {}) },
    tenant: (v.tenant as string | undefined) ?? DEFAULT_TENANT,
    time,
  };
}

/** Log lines: a Loki push body (`{streams:[…]}`) or one `{labels, line, time}` object. */
export const LOKI_SOURCE: SourceDescriptor = {
  schema: LOKI_SCHEMA,
  decode(value, observedTime) {
    if (isObj(value) && 'streams' in value) {
      try {
        const tenant = typeof value.tenant === 'string' ? value.tenant : DEFAULT_TENANT;
        return { events: decodePushJson(value, tenant).entries.map((e) => normalizeLokiEntry(e, observedTime)), invalid: [] };
      } catch (e) {
        if (e instanceof PushDecodeError) return { events: [], invalid: [e.message] };
        throw e;
      }
    }
    if (!isObj(value))
      return {
        events: [],
        invalid: [`expected a Loki push body {"streams":[…]} or a {labels, line, time} object, got ${JSON.stringify(value)?.slice(0, 60)}`],
      };
    const entry = decodeSingle(value, observedTime);
    return typeof entry === 'string' ? { events: [], invalid: [entry] } : { events: [normalizeLokiEntry(entry, observedTime)], invalid: [] };
  },
};
