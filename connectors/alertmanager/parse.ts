/**
 * Decoding and validation of Alertmanager webhook payloads (version 4, as `notify/webhook` sends
 * them; Grafana's version 1, which copies the same shape, is tolerated). Pure: a value or JSON text
 * in, alerts with their group context out. Unknown fields are ignored; each alert is checked on its
 * own, so one bad alert is reported while the others are kept. Only a body that is not a webhook
 * payload at all (not an object, no `alerts` list) is refused as a whole.
 */
import { describeValue } from '../../platform/describe.js';
import { KubevigilError } from '../../correlator/errors.js';
import { isObj } from '../../correlator/json-guards.js';

/** One alert of a webhook payload (`template.Alert` in Alertmanager). */
export interface AlertmanagerAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** RFC 3339, as sent (nanosecond precision kept). */
  startsAt: string;
  /** RFC 3339; Go's zero time `0001-01-01T00:00:00Z` while firing. */
  endsAt: string;
  generatorURL: string;
  /** Alertmanager's label-set fingerprint; computed from the labels when the sender omitted it (before 0.19). */
  fingerprint: string;
}

/** What the webhook says about the whole notification group (`template.Data` without the alerts). */
export interface AlertGroup {
  receiver: string;
  status: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  version: string;
  groupKey: string;
  /** Alerts Alertmanager left out because of the receiver's `max_alerts`. */
  truncatedAlerts: number;
}

/** An alert that could not be used, and why; `index` is its position in `alerts`. */
export interface InvalidAlert {
  index: number;
  fingerprint?: string;
  alertname?: string;
  reason: string;
}

/** A decoded payload: the group, its usable alerts, the rejected ones and notes on the envelope. */
export interface DecodedPayload {
  group: AlertGroup;
  alerts: AlertmanagerAlert[];
  invalid: InvalidAlert[];
  /** Problems with group fields that were ignored (wrong type, unknown version, truncation). */
  warnings: string[];
}

/** The body as a whole is not an Alertmanager webhook payload. */
export class AlertmanagerPayloadError extends KubevigilError {
  constructor(
    message: string,
    /** The field at fault (`alerts`, `(body)`). */
    readonly field: string,
  ) {
    super('ALERTMANAGER_PAYLOAD_INVALID', message, false);
  }
}

/** Payload versions kubevigil reads: Alertmanager's 4 and Grafana's 1. */
export const KNOWN_VERSIONS: ReadonlySet<string> = new Set(['4', '1']);

/** Go's zero time, which Alertmanager sends as `endsAt` of a firing alert. */
export const GO_ZERO_TIME = '0001-01-01T00:00:00Z';

const kind = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);
const show = (v: unknown): string => describeValue(v);

/** A map of strings, or why it is not one. */
function stringMap(v: unknown, field: string): { map: Record<string, string> } | { problem: string } {
  if (!isObj(v)) return { problem: `${field} must be an object of strings, got ${kind(v)}` };
  const map: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string') return { problem: `${field}.${k} must be a string, got ${kind(x)}` };
    map[k] = x;
  }
  return { map };
}

/** Milliseconds of an RFC 3339 time, or undefined for Go's zero time and anything unparsable. */
export function alertTime(s: string): number | undefined {
  if (s === '' || s.startsWith('0001-01-01')) return undefined;
  const t = Date.parse(s);
  return Number.isFinite(t) ? t : undefined;
}

// FNV-1a 64 over sorted labels with a 0xff separator, as prometheus/common model.LabelSet.Fingerprint.
// Computed on two 32-bit halves: the 64-bit prime is 2^40 + 0x1b3.
const SEPARATOR = 0xff;

/** Alertmanager's fingerprint of a label set (16 hex digits), for senders that omit `fingerprint`. */
export function labelsFingerprint(labels: Record<string, string>): string {
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  const add = (b: number) => {
    lo = (lo ^ b) >>> 0;
    const loP = lo * 0x1b3;
    const carry = Math.floor(loP / 0x1_0000_0000);
    hi = (hi * 0x1b3 + carry + ((lo << 8) >>> 0)) >>> 0;
    lo = loP >>> 0;
  };
  const enc = new TextEncoder();
  for (const name of Object.keys(labels).sort()) {
    for (const b of enc.encode(name)) add(b);
    add(SEPARATOR);
    for (const b of enc.encode(labels[name]!)) add(b);
    add(SEPARATOR);
  }
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}

/** Validates one alert; returns it normalized or why it cannot be used. */
export function decodeAlert(v: unknown): { alert: AlertmanagerAlert } | { problem: string; fingerprint?: string; alertname?: string } {
  if (!isObj(v)) return { problem: `expected an alert object, got ${kind(v)}` };
  const ids = {
    ...(typeof v.fingerprint === 'string' && v.fingerprint ? { fingerprint: v.fingerprint } : {}),
    ...(isObj(v.labels) && typeof v.labels.alertname === 'string' ? { alertname: v.labels.alertname } : {}),
  };
  const fail = (problem: string) => ({ problem, ...ids });
  if (v.status !== 'firing' && v.status !== 'resolved') return fail(`status must be "firing" or "resolved" (got ${show(v.status)})`);
  if (v.labels === undefined) return fail('labels is required: an object of strings with at least alertname');
  const labels = stringMap(v.labels, 'labels');
  if ('problem' in labels) return fail(labels.problem);
  let annotations: Record<string, string> = {};
  if (v.annotations !== undefined && v.annotations !== null) {
    const a = stringMap(v.annotations, 'annotations');
    if ('problem' in a) return fail(a.problem);
    annotations = a.map;
  }
  if (typeof v.startsAt !== 'string' || !Number.isFinite(Date.parse(v.startsAt)))
    return fail(`startsAt must be an RFC 3339 time string (got ${show(v.startsAt)})`);
  let endsAt = GO_ZERO_TIME;
  if (v.endsAt !== undefined && v.endsAt !== null) {
    if (typeof v.endsAt !== 'string' || !Number.isFinite(Date.parse(v.endsAt))) return fail(`endsAt must be an RFC 3339 time string (got ${show(v.endsAt)})`);
    endsAt = v.endsAt;
  }
  for (const k of ['generatorURL', 'fingerprint'] as const)
    if (v[k] !== undefined && v[k] !== null && typeof v[k] !== 'string') return fail(`${k} must be a string (got ${kind(v[k])})`);
  const fingerprint = typeof v.fingerprint === 'string' && v.fingerprint !== '' ? v.fingerprint : labelsFingerprint(labels.map);
  return {
    alert: {
      status: v.status,
      labels: labels.map,
      annotations,
      startsAt: v.startsAt,
      endsAt,
      generatorURL: typeof v.generatorURL === 'string' ? v.generatorURL : '',
      fingerprint,
    },
  };
}

/** An empty group, for alerts that arrive without a payload around them (rule tests). */
export function emptyGroup(status = ''): AlertGroup {
  return { receiver: '', status, groupLabels: {}, commonLabels: {}, commonAnnotations: {}, externalURL: '', version: '', groupKey: '', truncatedAlerts: 0 };
}

/** Decodes a parsed webhook body; throws {@link AlertmanagerPayloadError} only when it is not a payload at all. */
export function decodeAlertmanagerValue(body: unknown): DecodedPayload {
  if (!isObj(body))
    throw new AlertmanagerPayloadError(`the body must be a JSON object (an Alertmanager webhook payload, version 4), got ${kind(body)}`, '(body)');
  if (body.alerts === undefined || body.alerts === null)
    throw new AlertmanagerPayloadError(
      'alerts is missing: an Alertmanager webhook payload (version 4) carries an "alerts" list; is the sender configured as a webhook receiver?',
      'alerts',
    );
  if (!Array.isArray(body.alerts)) throw new AlertmanagerPayloadError(`alerts must be a list of alerts, got ${kind(body.alerts)}`, 'alerts');

  const warnings: string[] = [];
  const group = emptyGroup();
  for (const k of ['receiver', 'status', 'externalURL', 'groupKey'] as const) {
    const x = body[k];
    if (typeof x === 'string') group[k] = x;
    else if (x !== undefined && x !== null) warnings.push(`${k} must be a string (got ${kind(x)}); ignored`);
  }
  if (typeof body.version === 'string') group.version = body.version;
  else if (typeof body.version === 'number') group.version = String(body.version);
  else if (body.version !== undefined && body.version !== null) warnings.push(`version must be a string such as "4" (got ${kind(body.version)}); ignored`);
  if (group.version !== '' && !KNOWN_VERSIONS.has(group.version))
    warnings.push(`version "${group.version.slice(0, 20)}" is not one kubevigil knows (4 from Alertmanager, 1 from Grafana); alerts were read as version 4`);
  for (const k of ['groupLabels', 'commonLabels', 'commonAnnotations'] as const) {
    const x = body[k];
    if (x === undefined || x === null) continue;
    const m = stringMap(x, k);
    if ('map' in m) group[k] = m.map;
    else warnings.push(`${m.problem}; ignored`);
  }
  const t = body.truncatedAlerts;
  if (typeof t === 'number' && Number.isInteger(t) && t >= 0) group.truncatedAlerts = t;
  else if (t !== undefined && t !== null) warnings.push(`truncatedAlerts must be a non-negative integer (got ${show(t)}); ignored`);
  if (group.truncatedAlerts > 0)
    warnings.push(
      `Alertmanager left out ${group.truncatedAlerts} alert(s) of this group (max_alerts of the webhook receiver); raise or remove max_alerts so kubevigil sees them`,
    );

  const alerts: AlertmanagerAlert[] = [];
  const invalid: InvalidAlert[] = [];
  body.alerts.forEach((a, index) => {
    const r = decodeAlert(a);
    if ('alert' in r) alerts.push(r.alert);
    else
      invalid.push({ index, ...(r.fingerprint ? { fingerprint: r.fingerprint } : {}), ...(r.alertname ? { alertname: r.alertname } : {}), reason: r.problem });
  });
  return { group, alerts, invalid, warnings };
}

/** Decodes webhook JSON text; throws {@link AlertmanagerPayloadError} for text that is not JSON or not a payload. */
export function decodeAlertmanagerJson(text: string): DecodedPayload {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new AlertmanagerPayloadError(
      `the body is not valid JSON (${(e as Error).message}); Alertmanager sends its webhook payload as application/json`,
      '(body)',
    );
  }
  return decodeAlertmanagerValue(value);
}
