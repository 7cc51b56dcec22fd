/**
 * Decoding and validation of Falco alerts as Falco's `http_output` (with `json_output: true`) and
 * Falcosidekick's webhook output post them: one JSON object per request, `{uuid, output, priority,
 * rule, time, output_fields, source, tags, hostname}`. A JSON array or JSON lines of such objects
 * (a relay batching them) are read too. Pure: text or values in, alerts out. Each alert is checked
 * on its own, so one bad alert is reported while the others are kept.
 */
import { describeValue } from '../../platform/describe.js';
import { isObj } from '../../correlator/json-guards.js';

/** Falco's priorities, most severe first (falco_common::priority_type). */
export const FALCO_PRIORITIES = ['Emergency', 'Alert', 'Critical', 'Error', 'Warning', 'Notice', 'Informational', 'Debug'] as const;

/** One Falco priority, as Falco spells it in JSON. */
export type FalcoPriority = (typeof FALCO_PRIORITIES)[number];

/** A value of `output_fields`: Falco writes strings, numbers (`evt.time`, `proc.pid`), booleans, null and lists. */
export type FalcoFieldValue = string | number | boolean | null | string[];

/** One Falco alert, validated. */
export interface FalcoEvent {
  /** Falco's id of the alert; absent from older Falco versions. */
  uuid?: string;
  /** The rule's formatted output line ('' when `json_include_output_property` is false). */
  output: string;
  priority: FalcoPriority;
  rule: string;
  /** RFC 3339 with nanoseconds, as sent. */
  time: string;
  output_fields: Record<string, FalcoFieldValue>;
  /** The event source: `syscall`, `k8s_audit`, a plugin's (`aws_cloudtrail`…); `syscall` when absent. */
  source: string;
  tags: string[];
  /** The host Falco runs on (the node, under the Helm chart); '' when absent. */
  hostname: string;
}

/** An alert that could not be used, and why; `index` is its position in the batch. */
export interface InvalidFalcoEvent {
  index: number;
  uuid?: string;
  rule?: string;
  /** The field at fault (`priority`, `time`, `(item)`). */
  field: string;
  reason: string;
}

/** A decoded body: its usable alerts and the rejected ones. */
export interface DecodedFalcoBody {
  events: FalcoEvent[];
  invalid: InvalidFalcoEvent[];
}

/** The body as a whole is not Falco JSON. */
export class FalcoPayloadError extends Error {
  constructor(
    message: string,
    /** The field at fault, `(body)` for the whole body. */
    readonly field: string,
  ) {
    super(message);
  }
}

const kind = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);

// Falco spells them capitalised; its configuration and Falcosidekick lower-case them, and `info` is common.
const PRIORITY_BY_NAME = new Map<string, FalcoPriority>([...FALCO_PRIORITIES.map((p) => [p.toLowerCase(), p] as const), ['info', 'Informational']]);

/** The priority a string names (any case), or undefined. */
export function falcoPriority(v: unknown): FalcoPriority | undefined {
  return typeof v === 'string' ? PRIORITY_BY_NAME.get(v.trim().toLowerCase()) : undefined;
}

const isFieldValue = (v: unknown): v is FalcoFieldValue =>
  v === null || ['string', 'number', 'boolean'].includes(typeof v) || (Array.isArray(v) && v.every((x) => typeof x === 'string'));

type Decoded = { event: FalcoEvent } | { field: string; problem: string; uuid?: string; rule?: string };

/** Validates one alert; returns it normalized or which field is wrong and how to fix it. */
export function decodeFalcoEvent(v: unknown): Decoded {
  if (!isObj(v)) return { field: '(item)', problem: `expected a Falco alert object {"rule", "priority", "time", "output_fields", …}, got ${kind(v)}` };
  const ids = {
    ...(typeof v.uuid === 'string' && v.uuid ? { uuid: v.uuid } : {}),
    ...(typeof v.rule === 'string' && v.rule ? { rule: v.rule } : {}),
  };
  const fail = (field: string, problem: string): Decoded => ({ field, problem, ...ids });
  if (typeof v.rule !== 'string' || v.rule.trim() === '')
    return fail('rule', `rule must be the name of the Falco rule that fired (got ${describeValue(v.rule)}); is json_output: true set in falco.yaml?`);
  const priority = falcoPriority(v.priority);
  if (!priority) return fail('priority', `priority must be one of ${FALCO_PRIORITIES.join(', ')} (got ${describeValue(v.priority)})`);
  if (typeof v.time !== 'string' || !Number.isFinite(Date.parse(v.time)))
    return fail('time', `time must be an RFC 3339 time string such as "2026-11-29T03:13:15.123456789Z" (got ${describeValue(v.time)})`);
  const fields: Record<string, FalcoFieldValue> = {};
  if (v.output_fields !== undefined && v.output_fields !== null) {
    if (!isObj(v.output_fields))
      return fail('output_fields', `output_fields must be an object of Falco fields such as "k8s.pod.name" (got ${kind(v.output_fields)})`);
    for (const [k, x] of Object.entries(v.output_fields)) {
      if (!isFieldValue(x))
        return fail(`output_fields.${k.slice(0, 60)}`, `output_fields["${k.slice(0, 60)}"] must be a string, number, boolean or null (got ${kind(x)})`);
      fields[k] = x;
    }
  }
  for (const k of ['uuid', 'output', 'source', 'hostname'] as const)
    if (v[k] !== undefined && v[k] !== null && typeof v[k] !== 'string') return fail(k, `${k} must be a string (got ${kind(v[k])})`);
  let tags: string[] = [];
  if (v.tags !== undefined && v.tags !== null) {
    if (!Array.isArray(v.tags) || !v.tags.every((t) => typeof t === 'string')) return fail('tags', `tags must be a list of strings (got ${kind(v.tags)})`);
    tags = [...(v.tags as string[])];
  }
  return {
    event: {
      ...(typeof v.uuid === 'string' && v.uuid !== '' ? { uuid: v.uuid } : {}),
      output: typeof v.output === 'string' ? v.output : '',
      priority,
      rule: v.rule,
      time: v.time,
      output_fields: fields,
      source: typeof v.source === 'string' && v.source !== '' ? v.source : 'syscall',
      tags,
      hostname: typeof v.hostname === 'string' ? v.hostname : '',
    },
  };
}

/** Decodes parsed values (one alert, or a list of them); throws {@link FalcoPayloadError} only for a body that holds no alert at all. */
export function decodeFalcoValues(values: readonly unknown[]): DecodedFalcoBody {
  const events: FalcoEvent[] = [];
  const invalid: InvalidFalcoEvent[] = [];
  values.forEach((v, index) => {
    const r = decodeFalcoEvent(v);
    if ('event' in r) events.push(r.event);
    else invalid.push({ index, ...(r.uuid ? { uuid: r.uuid } : {}), ...(r.rule ? { rule: r.rule } : {}), field: r.field, reason: r.problem });
  });
  return { events, invalid };
}

/**
 * Decodes a request body: one JSON alert (what Falco and Falcosidekick send), a JSON array of
 * them, or JSON lines. Throws {@link FalcoPayloadError} for a body that is empty or not JSON.
 */
export function decodeFalcoBody(text: string): DecodedFalcoBody {
  const trimmed = text.trim();
  if (trimmed === '') throw new FalcoPayloadError('the body is empty; Falco posts one JSON alert per request', '(body)');
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch (e) {
    // JSON lines: every non-empty line an alert of its own; `index` is the line's position (from 0).
    if (trimmed.startsWith('{') && trimmed.includes('\n')) {
      const out: DecodedFalcoBody = { events: [], invalid: [] };
      for (const [index, line] of trimmed.split('\n').entries()) {
        if (line.trim() === '') continue;
        let item: unknown;
        try {
          item = JSON.parse(line);
        } catch (le) {
          out.invalid.push({ index, field: '(line)', reason: `line ${index + 1} is not JSON (${(le as Error).message})` });
          continue;
        }
        const r = decodeFalcoValues([item]);
        out.events.push(...r.events);
        for (const i of r.invalid) out.invalid.push({ ...i, index });
      }
      return out;
    }
    const hint = /^\d\d:\d\d:\d\d/.test(trimmed)
      ? 'this looks like Falco’s text output: set json_output: true (and json_include_output_property: true) in falco.yaml'
      : 'Falco’s http_output sends JSON when json_output: true is set in falco.yaml';
    throw new FalcoPayloadError(`the body is not valid JSON (${(e as Error).message}); ${hint}`, '(body)');
  }
  return decodeFalcoValues(Array.isArray(value) ? value : [value]);
}
