/**
 * OTLP trace payloads → spans kubevigil can reason about. One walker serves every flavour:
 *
 * - OTLP/HTTP JSON (`resourceSpans[].scopeSpans[].spans[]`): hex ids, 64-bit integers as strings or
 *   numbers, enums as integers; lowerCamelCase or the proto's snake_case keys.
 * - OTLP/HTTP protobuf: decoded with the schema in `schema.ts`, then walked like JSON (ids as bytes,
 *   64-bit integers as Longs).
 * - Tempo's JSON (gogo jsonpb): `batches` instead of `resourceSpans`, `{trace: …}` around v2
 *   answers, base64 ids, enum names (`SPAN_KIND_CLIENT`), `instrumentationLibrarySpans` from older SDKs.
 * - For rule tests, a single span as rules see it (attributes and resource as plain maps).
 *
 * Trace ids become 32 and span ids 16 lowercase hex characters whatever the input (Tempo trims
 * leading zeros, so short hex is left-padded). Problems above the span (a body that is not OTLP,
 * `resourceSpans` that is not a list) throw {@link OtlpPayloadError}; a bad span is reported in
 * `invalid` and the rest of the batch still counts, as OTLP partial success expects.
 */
import { cut } from '../../platform/describe.js';
import { ExportTraceServiceRequest } from './schema.js';

/** An attribute value as rules see it: OTLP's AnyValue without the wrapper. */
export type AttrValue = string | number | boolean | null | AttrValue[] | { [key: string]: AttrValue };

/** Span kinds, named as TraceQL names them (`kind = client`). */
export const SPAN_KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'] as const;
/** A span kind. */
export type SpanKindName = (typeof SPAN_KINDS)[number];
/** Status codes, named as TraceQL names them (`status = error`). */
export const STATUS_CODES = ['unset', 'ok', 'error'] as const;
/** A span status code. */
export type StatusCodeName = (typeof STATUS_CODES)[number];

/** A span event (an exception, a log line) with its attributes flattened. */
export interface OtlpSpanEvent {
  name: string;
  timeUnixNano: string;
  attributes: Record<string, AttrValue>;
}

/** One span as kubevigil keeps it: normalized ids, flattened attributes, its resource and scope attached. */
export interface OtlpSpan {
  /** 32 lowercase hex characters. */
  traceId: string;
  /** 16 lowercase hex characters. */
  spanId: string;
  parentSpanId?: string;
  traceState?: string;
  name: string;
  kind: SpanKindName;
  /** Nanoseconds since the epoch, as a decimal string ("0" when the sender left it out). */
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  status: { code: StatusCodeName; message?: string };
  attributes: Record<string, AttrValue>;
  /** The resource's attributes: `resource["k8s.pod.name"]`. */
  resource: Record<string, AttrValue>;
  scope: { name: string; version?: string };
  events?: OtlpSpanEvent[];
}

/** A span that could not be used, and why. */
export interface InvalidSpan {
  /** Where in the payload, e.g. `resourceSpans[0].scopeSpans[1].spans[2]`. */
  path: string;
  reason: string;
}

/** What a payload decoded to. */
export interface SpanBatch {
  spans: OtlpSpan[];
  invalid: InvalidSpan[];
}

/** The payload as a whole is not OTLP (or Tempo) trace data; the message names the problem. */
export class OtlpPayloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OtlpPayloadError';
  }
}

/** Bounds on what one span may keep, so a hostile sender cannot make a span arbitrarily large. */
export interface ParseLimits {
  /** Attributes kept per span, resource, scope or event (the rest are dropped). */
  maxAttributes: number;
  /** Characters kept per string value. */
  maxStringLength: number;
  /** Span events kept per span. */
  maxEvents: number;
  /** Elements kept per array or key-value list value. */
  maxArrayItems: number;
  /** Nesting of array and key-value list values. */
  maxDepth: number;
}

/** Default {@link ParseLimits}. */
export const DEFAULT_LIMITS: ParseLimits = { maxAttributes: 128, maxStringLength: 4096, maxEvents: 32, maxArrayItems: 64, maxDepth: 8 };

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array);
const HEX = /^[0-9a-fA-F]+$/;
const B64 = /^[A-Za-z0-9+/_-]+={0,2}$/;
const INT = /^-?\d+$/;

/**
 * A field under its lowerCamelCase or proto (snake_case) name, as the protobuf JSON mapping allows.
 * Own properties only: decoded protobuf messages keep defaults on their prototype, and a oneof
 * member that was not sent must read as absent.
 */
function field(o: Record<string, unknown>, camel: string, snake: string): unknown {
  if (Object.hasOwn(o, camel)) return o[camel];
  return Object.hasOwn(o, snake) ? o[snake] : undefined;
}

/** A 64-bit integer as decoded by protobufjs (a `Long`). */
interface LongLike {
  low: number;
  high: number;
  unsigned: boolean;
  toNumber(): number;
  toString(): string;
}
const isLong = (v: unknown): v is LongLike =>
  typeof v === 'object' && v !== null && typeof (v as LongLike).low === 'number' && typeof (v as LongLike).high === 'number';

function bytesToId(b: Uint8Array, size: number): string | undefined {
  return b.length === size ? Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex') : undefined;
}

/**
 * Normalizes an id of `size` bytes (16 for traces, 8 for spans) given as hex (any case, leading
 * zeros possibly trimmed, as Tempo does), base64 (Tempo's JSON) or bytes (protobuf) to lowercase
 * hex of `2 * size` characters; undefined when it is none of these or all zeros. Only hex may be
 * short: base64 and bytes carry the whole id.
 */
function normalizeId(v: unknown, size: number): string | undefined {
  let hex: string | undefined;
  if (v instanceof Uint8Array) hex = bytesToId(v, size);
  else if (typeof v === 'string' && v !== '') {
    if (v.length <= size * 2 && HEX.test(v)) hex = v.toLowerCase().padStart(size * 2, '0');
    else if (v.length >= Math.ceil((size * 4) / 3) && v.length <= 4 * Math.ceil(size / 3) && B64.test(v))
      hex = bytesToId(Buffer.from(v, v.includes('-') || v.includes('_') ? 'base64url' : 'base64'), size);
  }
  return hex === undefined || /^0+$/.test(hex) ? undefined : hex;
}

/** A trace id as 32 lowercase hex characters (from hex, Tempo's trimmed hex, base64 or bytes), or undefined. */
export function normalizeTraceId(v: unknown): string | undefined {
  return normalizeId(v, 16);
}

/** A span id as 16 lowercase hex characters (from hex, base64 or bytes), or undefined. */
export function normalizeSpanId(v: unknown): string | undefined {
  return normalizeId(v, 8);
}

const KIND_NAMES: Record<string, SpanKindName> = {
  SPAN_KIND_UNSPECIFIED: 'unspecified',
  SPAN_KIND_INTERNAL: 'internal',
  SPAN_KIND_SERVER: 'server',
  SPAN_KIND_CLIENT: 'client',
  SPAN_KIND_PRODUCER: 'producer',
  SPAN_KIND_CONSUMER: 'consumer',
};
const STATUS_NAMES: Record<string, StatusCodeName> = { STATUS_CODE_UNSET: 'unset', STATUS_CODE_OK: 'ok', STATUS_CODE_ERROR: 'error' };

function enumOf<T extends string>(v: unknown, byNumber: readonly T[], byName: Record<string, T>): T | undefined {
  if (v === undefined || v === null) return byNumber[0];
  if (typeof v === 'number') return Number.isInteger(v) ? byNumber[v] : undefined;
  if (typeof v === 'string') {
    const named = byName[v.toUpperCase()];
    if (named) return named;
    const short = v.toLowerCase();
    if ((byNumber as readonly string[]).includes(short)) return short as T;
    if (INT.test(v)) return byNumber[Number(v)];
  }
  return undefined;
}

/** A 64-bit unsigned integer (string or number in JSON) as a decimal string; undefined when malformed. */
function uint64(v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return '0';
  if (isLong(v)) return v.unsigned || v.high >= 0 ? v.toString() : undefined;
  if (typeof v === 'string') return INT.test(v) && !v.startsWith('-') ? v.replace(/^0+(?=\d)/, '') : undefined;
  // Numbers beyond 2^53 (Tempo's docs send them) have lost precision already; keep what is left.
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return BigInt(Math.round(v)).toString();
  return undefined;
}

class SpanError extends Error {}

/** An AnyValue as a plain value; throws {@link SpanError} naming the field when it has the wrong type. */
function anyValue(v: unknown, at: string, lim: ParseLimits, depth: number): AttrValue {
  if (v === undefined || v === null) return null;
  if (!isObj(v)) throw new SpanError(`${at}: expected an AnyValue object such as {"stringValue": "…"}, got ${describe(v)}`);
  let x: unknown;
  if ((x = field(v, 'stringValue', 'string_value')) !== undefined) {
    if (typeof x !== 'string') throw new SpanError(`${at}.stringValue: expected a string, got ${describe(x)}`);
    return cut(x, lim.maxStringLength);
  }
  if ((x = field(v, 'intValue', 'int_value')) !== undefined) {
    if (typeof x === 'number' && Number.isInteger(x)) return x;
    if (isLong(x)) {
      const n = x.toNumber();
      return Number.isSafeInteger(n) ? n : x.toString();
    }
    if (typeof x === 'string' && INT.test(x)) {
      const n = Number(x);
      return Number.isSafeInteger(n) ? n : x;
    }
    throw new SpanError(`${at}.intValue: expected a 64-bit integer (a number or a decimal string), got ${describe(x)}`);
  }
  if ((x = field(v, 'boolValue', 'bool_value')) !== undefined) {
    if (typeof x !== 'boolean') throw new SpanError(`${at}.boolValue: expected true or false, got ${describe(x)}`);
    return x;
  }
  if ((x = field(v, 'doubleValue', 'double_value')) !== undefined) {
    if (typeof x === 'number') return x;
    if (typeof x === 'string' && (x === 'NaN' || x === 'Infinity' || x === '-Infinity' || Number.isFinite(Number(x)))) return Number(x);
    throw new SpanError(`${at}.doubleValue: expected a number, got ${describe(x)}`);
  }
  if ((x = field(v, 'arrayValue', 'array_value')) !== undefined) {
    if (depth >= lim.maxDepth) return '[…]';
    const values = isObj(x) ? (x.values ?? []) : undefined;
    if (!Array.isArray(values)) throw new SpanError(`${at}.arrayValue: expected {"values": [AnyValue…]}, got ${describe(x)}`);
    return values.slice(0, lim.maxArrayItems).map((e, i) => anyValue(e, `${at}.arrayValue.values[${i}]`, lim, depth + 1));
  }
  if ((x = field(v, 'kvlistValue', 'kvlist_value')) !== undefined) {
    if (depth >= lim.maxDepth) return '[…]';
    const values = isObj(x) ? (x.values ?? []) : undefined;
    if (!Array.isArray(values)) throw new SpanError(`${at}.kvlistValue: expected {"values": [KeyValue…]}, got ${describe(x)}`);
    return keyValues(values, `${at}.kvlistValue.values`, lim, depth + 1);
  }
  if ((x = field(v, 'bytesValue', 'bytes_value')) !== undefined) {
    if (x instanceof Uint8Array) return Buffer.from(x.buffer, x.byteOffset, x.length).toString('base64');
    if (typeof x === 'string' && (x === '' || B64.test(x))) return x;
    throw new SpanError(`${at}.bytesValue: expected base64, got ${describe(x)}`);
  }
  return null;
}

/** `[{key, value}]` as a map; a map given directly (rule tests) is taken as it is. */
function keyValues(list: unknown, at: string, lim: ParseLimits, depth = 0): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = Object.create(null) as Record<string, AttrValue>;
  if (list === undefined || list === null) return out;
  if (isObj(list)) {
    let n = 0;
    for (const [k, v] of Object.entries(list)) {
      if (n++ >= lim.maxAttributes) break;
      out[k] = plain(v, lim, depth);
    }
    return out;
  }
  if (!Array.isArray(list)) throw new SpanError(`${at}: expected a list of {"key", "value"}, got ${describe(list)}`);
  const n = Math.min(list.length, lim.maxAttributes);
  for (let i = 0; i < n; i++) {
    const kv = list[i];
    if (!isObj(kv) || typeof kv.key !== 'string') throw new SpanError(`${at}[${i}]: expected {"key": "<name>", "value": {…}}, got ${describe(kv)}`);
    out[kv.key] = anyValue(kv.value, `${at}[${i}].value`, lim, depth);
  }
  return out;
}

/** A value written as rules see it (rule tests), bounded like decoded values. */
function plain(v: unknown, lim: ParseLimits, depth: number): AttrValue {
  if (v === null || typeof v === 'number' || typeof v === 'boolean') return v;
  if (typeof v === 'string') return cut(v, lim.maxStringLength);
  if (depth >= lim.maxDepth) return '[…]';
  if (Array.isArray(v)) return v.slice(0, lim.maxArrayItems).map((x) => plain(x, lim, depth + 1));
  if (isObj(v)) {
    const out: Record<string, AttrValue> = {};
    for (const [k, x] of Object.entries(v).slice(0, lim.maxArrayItems)) out[k] = plain(x, lim, depth + 1);
    return out;
  }
  return null;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  return `${typeof v} ${String(v)}`;
}

interface Context {
  resource: Record<string, AttrValue>;
  scope: { name: string; version?: string };
}

function idProblem(name: string, v: unknown, size: number): string {
  if (v === undefined || v === null || v === '' || (v instanceof Uint8Array && v.length === 0)) return `${name} is missing; every span needs one`;
  if ((v instanceof Uint8Array && v.length === size && v.every((b) => b === 0)) || (typeof v === 'string' && /^0+$/.test(v)))
    return `${name} is all zeros, which OTLP defines as invalid`;
  if (v instanceof Uint8Array) return `${name}: expected ${size} bytes, got ${v.length}`;
  if (typeof v === 'string') return `${name}: expected ${size * 2} hex characters (or base64 of ${size} bytes), got ${describe(v)}`;
  return `${name}: expected a hex string, got ${describe(v)}`;
}

function parseSpan(s: unknown, at: string, ctx: Context, lim: ParseLimits): OtlpSpan {
  if (!isObj(s)) throw new SpanError(`${at}: expected a span object, got ${describe(s)}`);
  const rawTrace = field(s, 'traceId', 'trace_id');
  const traceId = normalizeTraceId(rawTrace);
  if (!traceId) throw new SpanError(`${at}.${idProblem('traceId', rawTrace, 16)}`);
  const rawSpan = field(s, 'spanId', 'span_id');
  const spanId = normalizeSpanId(rawSpan);
  if (!spanId) throw new SpanError(`${at}.${idProblem('spanId', rawSpan, 8)}`);
  const rawParent = field(s, 'parentSpanId', 'parent_span_id');
  let parentSpanId: string | undefined;
  if (rawParent !== undefined && rawParent !== '' && !(rawParent instanceof Uint8Array && rawParent.length === 0)) {
    parentSpanId = normalizeSpanId(rawParent);
    if (!parentSpanId) throw new SpanError(`${at}.${idProblem('parentSpanId', rawParent, 8)}`);
  }
  const name = s.name ?? '';
  if (typeof name !== 'string') throw new SpanError(`${at}.name: expected a string, got ${describe(name)}`);
  const kind = enumOf(s.kind, SPAN_KINDS, KIND_NAMES);
  if (!kind) throw new SpanError(`${at}.kind: expected a SpanKind (0-5 or a name such as SPAN_KIND_CLIENT), got ${describe(s.kind)}`);
  const start = uint64(field(s, 'startTimeUnixNano', 'start_time_unix_nano'));
  if (start === undefined)
    throw new SpanError(
      `${at}.startTimeUnixNano: expected nanoseconds since the epoch (a decimal string or number), got ${describe(field(s, 'startTimeUnixNano', 'start_time_unix_nano'))}`,
    );
  const end = uint64(field(s, 'endTimeUnixNano', 'end_time_unix_nano'));
  if (end === undefined)
    throw new SpanError(
      `${at}.endTimeUnixNano: expected nanoseconds since the epoch (a decimal string or number), got ${describe(field(s, 'endTimeUnixNano', 'end_time_unix_nano'))}`,
    );
  const st = s.status ?? {};
  if (!isObj(st)) throw new SpanError(`${at}.status: expected {"code", "message"}, got ${describe(st)}`);
  const code = enumOf(st.code, STATUS_CODES, STATUS_NAMES);
  if (!code) throw new SpanError(`${at}.status.code: expected a StatusCode (0-2 or a name such as STATUS_CODE_ERROR), got ${describe(st.code)}`);
  if (st.message !== undefined && typeof st.message !== 'string') throw new SpanError(`${at}.status.message: expected a string, got ${describe(st.message)}`);
  const traceState = field(s, 'traceState', 'trace_state');
  const span: OtlpSpan = {
    traceId,
    spanId,
    name: cut(name, lim.maxStringLength),
    kind,
    startTimeUnixNano: start,
    endTimeUnixNano: end,
    status: st.message ? { code, message: cut(st.message, lim.maxStringLength) } : { code },
    attributes: keyValues(s.attributes, `${at}.attributes`, lim),
    resource: ctx.resource,
    scope: ctx.scope,
  };
  if (parentSpanId) span.parentSpanId = parentSpanId;
  if (typeof traceState === 'string' && traceState !== '') span.traceState = cut(traceState, 512);
  const events = s.events;
  if (events !== undefined && events !== null) {
    if (!Array.isArray(events)) throw new SpanError(`${at}.events: expected a list, got ${describe(events)}`);
    if (events.length) span.events = events.slice(0, lim.maxEvents).map((e, i) => parseEvent(e, `${at}.events[${i}]`, lim));
  }
  return span;
}

function parseEvent(e: unknown, at: string, lim: ParseLimits): OtlpSpanEvent {
  if (!isObj(e)) throw new SpanError(`${at}: expected an event object, got ${describe(e)}`);
  const t = uint64(field(e, 'timeUnixNano', 'time_unix_nano'));
  if (t === undefined)
    throw new SpanError(`${at}.timeUnixNano: expected nanoseconds since the epoch, got ${describe(field(e, 'timeUnixNano', 'time_unix_nano'))}`);
  return {
    name: typeof e.name === 'string' ? e.name.slice(0, lim.maxStringLength) : '',
    timeUnixNano: t,
    attributes: keyValues(e.attributes, `${at}.attributes`, lim),
  };
}

function listAt(o: Record<string, unknown>, at: string, names: [string, string][]): { list: unknown[]; name: string } | undefined {
  for (const [camel, snake] of names) {
    for (const n of [camel, snake]) {
      const v = o[n];
      if (v === undefined || v === null) continue;
      if (!Array.isArray(v)) throw new OtlpPayloadError(`${at}${at ? '.' : ''}${n} must be a list, got ${describe(v)}`);
      return { list: v, name: n };
    }
  }
  return undefined;
}

const RESOURCE_SPANS: [string, string][] = [
  ['resourceSpans', 'resource_spans'],
  ['batches', 'batches'],
];
const SCOPE_SPANS: [string, string][] = [
  ['scopeSpans', 'scope_spans'],
  ['instrumentationLibrarySpans', 'instrumentation_library_spans'],
];

function walkRequest(doc: Record<string, unknown>, lim: ParseLimits, out: SpanBatch, prefix: string): void {
  const rs = listAt(doc, prefix, RESOURCE_SPANS);
  if (!rs) return;
  rs.list.forEach((r, i) => {
    const rAt = `${prefix}${prefix ? '.' : ''}${rs.name}[${i}]`;
    if (!isObj(r)) throw new OtlpPayloadError(`${rAt} must be a ResourceSpans object, got ${describe(r)}`);
    let resource: Record<string, AttrValue>;
    const res = r.resource ?? {};
    try {
      if (!isObj(res)) throw new SpanError(`${rAt}.resource: expected {"attributes": […]}, got ${describe(res)}`);
      resource = keyValues(res.attributes, `${rAt}.resource.attributes`, lim);
    } catch (e) {
      if (!(e instanceof SpanError)) throw e;
      throw new OtlpPayloadError(e.message);
    }
    const ss = listAt(r, rAt, SCOPE_SPANS);
    if (!ss) return;
    ss.list.forEach((sc, j) => {
      const sAt = `${rAt}.${ss.name}[${j}]`;
      if (!isObj(sc)) throw new OtlpPayloadError(`${sAt} must be a ScopeSpans object, got ${describe(sc)}`);
      const scopeRaw = sc.scope ?? field(sc, 'instrumentationLibrary', 'instrumentation_library') ?? {};
      const scope: Context['scope'] = { name: '' };
      if (isObj(scopeRaw)) {
        if (typeof scopeRaw.name === 'string') scope.name = scopeRaw.name.slice(0, 256);
        if (typeof scopeRaw.version === 'string' && scopeRaw.version !== '') scope.version = scopeRaw.version.slice(0, 128);
      }
      const spans = sc.spans ?? [];
      if (!Array.isArray(spans)) throw new OtlpPayloadError(`${sAt}.spans must be a list, got ${describe(spans)}`);
      const ctx: Context = { resource, scope };
      for (let k = 0; k < spans.length; k++) {
        const at = `${sAt}.spans[${k}]`;
        try {
          out.spans.push(parseSpan(spans[k], at, ctx, lim));
        } catch (e) {
          if (!(e instanceof SpanError)) throw e;
          out.invalid.push({ path: at, reason: e.message });
        }
      }
    });
  });
}

/** A single span written as rules see it (rule tests): attributes and resource may be plain maps. */
function flatSpan(v: Record<string, unknown>, lim: ParseLimits, out: SpanBatch, at: string): void {
  const res = v.resource;
  const resource = isObj(res) && Array.isArray(res.attributes) ? res.attributes : res;
  const scope = isObj(v.scope) ? v.scope : {};
  try {
    const ctx: Context = {
      resource: keyValues(resource, `${at}.resource`, lim),
      scope: { name: typeof scope.name === 'string' ? scope.name : '', ...(typeof scope.version === 'string' ? { version: scope.version } : {}) },
    };
    out.spans.push(parseSpan(v, at, ctx, lim));
  } catch (e) {
    if (!(e instanceof SpanError)) throw e;
    out.invalid.push({ path: at, reason: e.message });
  }
}

function walkValue(value: unknown, lim: ParseLimits, out: SpanBatch, at: string, depth: number): void {
  if (Array.isArray(value) && depth === 0) {
    value.forEach((v, i) => walkValue(v, lim, out, `[${i}]`, depth + 1));
    return;
  }
  if (!isObj(value))
    throw new OtlpPayloadError(
      `${at || 'the body'} must be a JSON object (an ExportTraceServiceRequest such as {"resourceSpans": […]}), got ${describe(value)}`,
    );
  if (isObj(value.trace) && depth < 2) {
    walkValue(value.trace, lim, out, `${at}${at ? '.' : ''}trace`, depth + 1);
    return;
  }
  if (value.spanId !== undefined || value.span_id !== undefined) {
    flatSpan(value, lim, out, at || 'span');
    return;
  }
  walkRequest(value, lim, out, at);
}

/** Decodes an already-parsed JSON value: an OTLP request, a Tempo trace answer, a span, or a list of these. */
export function decodeOtlpValue(value: unknown, limits: ParseLimits = DEFAULT_LIMITS): SpanBatch {
  const out: SpanBatch = { spans: [], invalid: [] };
  walkValue(value, limits, out, '', 0);
  return out;
}

/** Decodes an OTLP/HTTP JSON body (or Tempo's JSON); throws {@link OtlpPayloadError} naming what is wrong. */
export function decodeOtlpJson(text: string, limits: ParseLimits = DEFAULT_LIMITS): SpanBatch {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new OtlpPayloadError(`the body is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObj(value))
    throw new OtlpPayloadError(`the body must be a JSON object (an ExportTraceServiceRequest such as {"resourceSpans": […]}), got ${describe(value)}`);
  return decodeOtlpValue(value, limits);
}

/** Decodes an OTLP/HTTP protobuf body (ExportTraceServiceRequest); throws {@link OtlpPayloadError} when it is not one. */
export function decodeOtlpProtobuf(buf: Uint8Array, limits: ParseLimits = DEFAULT_LIMITS): SpanBatch {
  let obj: Record<string, unknown>;
  try {
    // The decoded message is walked as it is (ids as bytes, 64-bit integers as Longs): converting
    // it to a plain object first would cost as much as decoding it.
    obj = ExportTraceServiceRequest.decode(buf) as unknown as Record<string, unknown>;
  } catch (e) {
    throw new OtlpPayloadError(`the body is not a protobuf ExportTraceServiceRequest: ${(e as Error).message}`);
  }
  const out: SpanBatch = { spans: [], invalid: [] };
  walkRequest(obj, limits, out, '');
  return out;
}

/** Span start as milliseconds since the epoch (end when start is missing), or undefined. */
export function spanTimeMs(span: Pick<OtlpSpan, 'startTimeUnixNano' | 'endTimeUnixNano'>): number | undefined {
  for (const ns of [span.startTimeUnixNano, span.endTimeUnixNano]) {
    if (ns.length > 6 && ns !== '0') return Number(ns.slice(0, -6));
  }
  return undefined;
}
