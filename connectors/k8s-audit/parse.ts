/**
 * Decoding and validation of Kubernetes audit payloads: what kube-apiserver's webhook backend POSTs
 * (an `audit.k8s.io/v1` EventList whose items carry no kind/apiVersion), a single Event, a JSON
 * array of events, or JSON lines from the log backend. Pure: bytes or values in, events and a list
 * of what was wrong out. One bad event never costs the good ones beside it.
 */

import { KubevigilError } from '../../correlator/errors.js';
import { describeValue } from '../../platform/describe.js';
import { parseTimestamp } from '../../platform/timestamp.js';
import { isObj } from '../../correlator/json-guards.js';

/** The fields of an audit Event that kubevigil reads (audit.k8s.io/v1, v1beta1 tolerated). */
export interface AuditEvent {
  kind?: string;
  apiVersion?: string;
  level?: string;
  auditID: string;
  stage: string;
  requestURI?: string;
  verb: string;
  user: UserInfo;
  impersonatedUser?: UserInfo;
  sourceIPs?: string[];
  userAgent?: string;
  objectRef?: ObjectReference;
  responseStatus?: { metadata?: unknown; code?: number; status?: string; reason?: string; message?: string; details?: unknown };
  requestObject?: unknown;
  responseObject?: unknown;
  requestReceivedTimestamp?: string;
  stageTimestamp?: string;
  /** v1beta1 only. */
  timestamp?: string;
  annotations?: Record<string, string>;
}

/** `user` / `impersonatedUser` of an audit event. */
export interface UserInfo {
  username?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

/** `objectRef` of an audit event. */
export interface ObjectReference {
  resource?: string;
  namespace?: string;
  name?: string;
  uid?: string;
  apiGroup?: string;
  apiVersion?: string;
  resourceVersion?: string;
  subresource?: string;
}

/** The stages kube-apiserver emits. */
export const AUDIT_STAGES = new Set(['RequestReceived', 'ResponseStarted', 'ResponseComplete', 'Panic']);

/** One event that could not be used, and why; `index` is its position in the batch. */
export interface InvalidEvent {
  index: number;
  auditID?: string;
  reason: string;
}

/** A decoded batch: the usable events and the rejected ones. */
export interface DecodedBatch {
  events: AuditEvent[];
  invalid: InvalidEvent[];
}

/** The body as a whole is unusable (not JSON, or not an event, list or array). */
export class AuditPayloadError extends KubevigilError {
  constructor(message: string) {
    super('AUDIT_PAYLOAD_INVALID', message, false);
  }
}

function checkUser(u: unknown, field: string): string | undefined {
  if (!isObj(u)) return `${field} must be an object with username`;
  if (u.username !== undefined && typeof u.username !== 'string') return `${field}.username must be a string`;
  if (u.groups !== undefined && (!Array.isArray(u.groups) || !u.groups.every((g) => typeof g === 'string'))) return `${field}.groups must be a list of strings`;
  if (u.extra !== undefined && !isObj(u.extra)) return `${field}.extra must be an object of string lists`;
  return undefined;
}

/** Why a value is not a usable audit event, or undefined when it is one. */
export function auditEventProblem(v: unknown): string | undefined {
  if (!isObj(v)) return `expected an audit Event object, got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}`;
  if (typeof v.auditID !== 'string' || v.auditID === '') return 'auditID is required and must be a non-empty string';
  if (typeof v.stage !== 'string' || !AUDIT_STAGES.has(v.stage)) return `stage must be one of ${[...AUDIT_STAGES].join(', ')} (got ${describeValue(v.stage)})`;
  if (typeof v.verb !== 'string') return 'verb is required and must be a string';
  const u = checkUser(v.user, 'user');
  if (u) return u;
  if (v.impersonatedUser !== undefined && v.impersonatedUser !== null) {
    const iu = checkUser(v.impersonatedUser, 'impersonatedUser');
    if (iu) return iu;
  }
  if (v.requestURI !== undefined && typeof v.requestURI !== 'string') return 'requestURI must be a string';
  if (v.userAgent !== undefined && typeof v.userAgent !== 'string') return 'userAgent must be a string';
  if (v.sourceIPs !== undefined && (!Array.isArray(v.sourceIPs) || !v.sourceIPs.every((s) => typeof s === 'string')))
    return 'sourceIPs must be a list of strings';
  if (v.objectRef !== undefined && v.objectRef !== null) {
    if (!isObj(v.objectRef)) return 'objectRef must be an object';
    for (const k of ['resource', 'namespace', 'name', 'apiGroup', 'subresource'] as const)
      if (v.objectRef[k] !== undefined && typeof v.objectRef[k] !== 'string') return `objectRef.${k} must be a string`;
  }
  if (v.responseStatus !== undefined && v.responseStatus !== null) {
    if (!isObj(v.responseStatus)) return 'responseStatus must be an object';
    if (v.responseStatus.code !== undefined && typeof v.responseStatus.code !== 'number') return 'responseStatus.code must be a number';
  }
  if (v.annotations !== undefined && v.annotations !== null) {
    if (!isObj(v.annotations) || !Object.values(v.annotations).every((a) => typeof a === 'string')) return 'annotations must be an object of strings';
  }
  for (const k of ['stageTimestamp', 'requestReceivedTimestamp', 'timestamp'] as const) {
    const t = v[k];
    if (t === undefined) continue;
    if (typeof t !== 'string') return `${k} must be an RFC 3339 timestamp string`;
    const ms = parseTimestamp(t);
    if (!Number.isFinite(ms)) return `${k} (${describeValue(t)}) is not an RFC 3339 timestamp such as 2026-12-06T09:00:00.123456Z`;
    // Correlation windows and retention run on these times: a year -1 or 3000 would pin an actor's
    // windows or evade them. Kubernetes audit did not exist before 2000; a clock a year ahead is broken.
    if (ms < EARLIEST_TIMESTAMP || ms > Date.now() + MAX_FUTURE_MS)
      return `${k} ${t.slice(0, 40)} is outside the accepted range (from 2000-01-01 to a year from now): fix the sender's clock`;
  }
  return undefined;
}

const EARLIEST_TIMESTAMP = Date.UTC(2000, 0, 1);
const MAX_FUTURE_MS = 366 * 86_400_000;

/** Splits a decoded JSON value (EventList, Event or array of either) into valid and invalid events. */
export function decodeAuditValue(value: unknown, out: DecodedBatch = { events: [], invalid: [] }): DecodedBatch {
  let items: unknown[];
  if (Array.isArray(value)) items = value;
  else if (isObj(value) && (value.kind === 'EventList' || (Array.isArray(value.items) && value.auditID === undefined))) {
    if (!Array.isArray(value.items)) throw new AuditPayloadError('EventList.items must be an array of audit events');
    items = value.items;
  } else if (isObj(value)) items = [value];
  else throw new AuditPayloadError(`expected an audit EventList, an Event or an array of events, got ${value === null ? 'null' : typeof value}`);
  for (const item of items) {
    const index = out.events.length + out.invalid.length;
    // A nested EventList inside an array (several webhook bodies concatenated) is unwrapped.
    if (isObj(item) && item.kind === 'EventList' && Array.isArray(item.items)) {
      decodeAuditValue(item, out);
      continue;
    }
    const problem = auditEventProblem(item);
    if (problem) {
      const auditID = isObj(item) && typeof item.auditID === 'string' ? item.auditID.slice(0, 64) : undefined;
      out.invalid.push(auditID ? { index, auditID, reason: problem } : { index, reason: problem });
    } else out.events.push(item as unknown as AuditEvent);
  }
  return out;
}

/** Where JSON.parse failed, as a short message that names the position. */
function jsonError(e: unknown, text: string): string {
  const msg = e instanceof Error ? e.message : String(e);
  if (text.trim() === '') return 'the body is empty; send an audit EventList, an Event or an array of events as JSON';
  return `malformed JSON: ${msg.slice(0, 200)}`;
}

/** Decodes a JSON body (EventList, Event or array). Throws {@link AuditPayloadError} when the body as a whole is unusable. */
export function decodeAuditJson(text: string): DecodedBatch {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new AuditPayloadError(jsonError(e, text));
  }
  return decodeAuditValue(value);
}

/**
 * Decodes JSON lines (what `--audit-log-path` writes; each line an Event, or an EventList). A bad
 * line is an invalid event, not a failed batch; blank lines are skipped.
 */
export function decodeAuditLines(text: string, out: DecodedBatch = { events: [], invalid: [] }, lineOffset = 0): DecodedBatch {
  let start = 0;
  let line = lineOffset;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const s = text.slice(start, end).trim();
    line++;
    start = end + 1;
    if (s === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(s);
    } catch (e) {
      out.invalid.push({ index: out.events.length + out.invalid.length, reason: `line ${line}: ${jsonError(e, s)}` });
      continue;
    }
    try {
      decodeAuditValue(value, out);
    } catch (e) {
      out.invalid.push({ index: out.events.length + out.invalid.length, reason: `line ${line}: ${(e as Error).message}` });
    }
  }
  return out;
}
