/** The wire format of bus messages: JSON values with a content type, and what a consumer makes of each fetched message. */
import { propagation, ROOT_CONTEXT, type Context, type TextMapGetter } from '@opentelemetry/api';
import type { IHeaders, KafkaMessage } from 'kafkajs';
import { KubevigilError } from '../../../correlator/errors.js';
import { writtenJson, type BusMessage, type SubscribeOptions } from '../bus.js';
import type { Topic } from '../topics.js';
import { describe } from './errors.js';

/** The content type of every value the bus writes. */
export const CONTENT_TYPE = 'application/json';
const CONTENT_TYPE_BYTES = Buffer.from(CONTENT_TYPE, 'latin1');

/** A fetched message decoded: a value to handle (with its trace context), one for the dead-letter topic, or a tombstone. */
type Decoded = { kind: 'ok'; value: object; ctx: Context } | { kind: 'dead'; reason: string } | { kind: 'skip' };

/** Encodes a value (as its topic says, else as JSON); values JSON cannot represent are a programming error, not a bus outage. */
export function serialize<T>(topic: Topic<T>, m: BusMessage<T>): { json: string; headers?: Record<string, string> } {
  let out: { json: string | undefined; headers?: Record<string, string> };
  try {
    out = topic.encode ? topic.encode(m.value) : { json: writtenJson(m.value) ?? (JSON.stringify(m.value) as string | undefined) };
  } catch (e) {
    throw new KubevigilError('BUS_INVALID_MESSAGE', `message ${JSON.stringify(m.key)} for ${topic.name} cannot be encoded as JSON: ${describe(e)}`, false);
  }
  if (out.json === undefined) throw new KubevigilError('BUS_INVALID_MESSAGE', `message ${JSON.stringify(m.key)} for ${topic.name} has no JSON value`, false);
  return { json: out.json, ...(out.headers ? { headers: out.headers } : {}) };
}

const headerGetter: TextMapGetter<IHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const v = carrier[key];
    if (v === undefined) return undefined;
    return Array.isArray(v) ? v.map((x) => x.toString()) : v.toString();
  },
};

/** A message's headers by name, the first value of each. */
function headerReader(headers: IHeaders): (name: string) => string | undefined {
  return (name) => firstHeader(headers, name);
}

function firstHeader(headers: IHeaders, name: string): string | undefined {
  const v = headerGetter.get(headers, name);
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The reader a `bytes` parser is given: one for every message, pointed at the message's headers
 * for the call (a parser reads headers while it runs, never later), so that the signals topic's
 * messages, read this way, do not each make a closure.
 */
const NO_HEADERS: IHeaders = Object.freeze({});
let readingHeaders = NO_HEADERS;
const readingHeader = (name: string): string | undefined => firstHeader(readingHeaders, name);

/** Why a value that failed to parse goes to the dead-letter topic. */
export function notJson(e: unknown): string {
  return `value is not JSON: ${describe(e).slice(0, 200)}`;
}

/** Why a parsed value goes to the dead-letter topic, if it does: every bus value is a JSON object. */
export function notAnObject(value: unknown): string | undefined {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) return undefined;
  return `value is JSON ${value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value}, not an object`;
}

/** Decodes a fetched message with `parse` (default `JSON.parse`); anything but a JSON object goes to the dead-letter topic. */
export function decode(message: KafkaMessage, parse?: SubscribeOptions['parse']): Decoded {
  // A null value is a tombstone on the compacted incidents topic: nothing to handle, nothing wrong.
  if (message.value === null) return { kind: 'skip' };
  const headers = message.headers ?? {};
  const raw = headers['content-type'];
  // What the bus writes, compared as bytes; any other value is read and judged as text.
  if (!(Buffer.isBuffer(raw) && raw.equals(CONTENT_TYPE_BYTES))) {
    const ct = headerGetter.get(headers, 'content-type');
    const type = Array.isArray(ct) ? ct[0] : ct;
    if (type !== undefined && type.split(';')[0]!.trim().toLowerCase() !== CONTENT_TYPE)
      return { kind: 'dead', reason: `content-type ${JSON.stringify(type.slice(0, 100))} is not ${CONTENT_TYPE}` };
  }
  let value: unknown;
  try {
    if (parse?.bytes) {
      readingHeaders = headers;
      try {
        value = parse.bytes(message.value, readingHeader, headers);
      } finally {
        readingHeaders = NO_HEADERS;
      }
    } else {
      const json = message.value.toString('utf8');
      value = parse ? parse(json, headerReader(headers)) : JSON.parse(json);
    }
  } catch (e) {
    return { kind: 'dead', reason: notJson(e) };
  }
  const problem = notAnObject(value);
  if (problem) return { kind: 'dead', reason: problem };
  return { kind: 'ok', value: value as object, ctx: propagation.extract(ROOT_CONTEXT, headers, headerGetter) };
}
