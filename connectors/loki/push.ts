/**
 * Loki push bodies → log entries, for both encodings Loki's `POST /loki/api/v1/push` accepts:
 * JSON (`{"streams":[{"stream":{…},"values":[["<ns>","<line>",{…metadata}]]}]}`) and a raw-snappy
 * block holding a protobuf `logproto.PushRequest`. The protobuf schema is declared here from
 * Loki's documented `pkg/push/push.proto` (fields and numbers), so no generated code is needed.
 *
 * Like Loki, a body that does not decode is refused whole with a message naming the field; lines
 * longer than the limit are truncated (Loki's `max_line_size_truncate`) rather than refused, so one
 * oversized line cannot make a sender drop the rest of its batch.
 */
import { describeValue } from '../../platform/describe.js';
import protobuf from 'protobufjs';
import snappy from 'snappyjs';
import { checkLabels, formatLabelSet, LABEL_LIMITS, parseLabelSet } from './labels.js';
import { isObj } from '../../correlator/json-guards.js';

/** One log line as kubevigil keeps it. */
export interface LokiEntry {
  line: string;
  labels: Readonly<Record<string, string>>;
  /** Structured metadata (Loki 3): per-entry key/value pairs beside the line. */
  metadata: Readonly<Record<string, string>>;
  /** The Loki tenant (`X-Scope-OrgID`); `fake` when none was given, as in single-tenant Loki. */
  tenant: string;
  /** Nanoseconds since the epoch, as a decimal string (Loki's own representation). */
  time: string;
}

/** The outcome of decoding one push body. */
export interface DecodedPush {
  entries: LokiEntry[];
  /** Lines cut to the line limit. */
  truncated: number;
  streams: number;
}

/** A push body that cannot be accepted; `message` names the field. */
export class PushDecodeError extends Error {
  constructor(
    message: string,
    /** 400 for bad input, 413 for a body that decompresses past the limit. */
    readonly status: 400 | 413 = 400,
  ) {
    super(message);
    this.name = 'PushDecodeError';
  }
}

/** Decoding limits. */
export interface PushLimits {
  /** Lines longer than this (in UTF-16 units) are truncated (default 256 KiB, Loki's max_line_size). */
  maxLineLength: number;
  /** Most entries one push may carry (default 100,000). */
  maxEntries: number;
  /** Largest decompressed protobuf, in bytes. */
  maxDecompressedBytes: number;
}

/** Defaults for {@link PushLimits}. */
export const DEFAULT_PUSH_LIMITS: PushLimits = { maxLineLength: 256 * 1024, maxEntries: 100_000, maxDecompressedBytes: 12 * 1024 * 1024 };

/** The tenant Loki uses when multi-tenancy is off. */
export const DEFAULT_TENANT = 'fake';

const NS = /^\d{1,19}$/;
const show = (v: unknown) => describeValue(v);

class Collector {
  entries: LokiEntry[] = [];
  truncated = 0;
  constructor(
    readonly tenant: string,
    readonly limits: PushLimits,
  ) {}

  add(labels: Readonly<Record<string, string>>, time: string, line: string, metadata: Readonly<Record<string, string>>, at: string): void {
    if (this.entries.length >= this.limits.maxEntries)
      throw new PushDecodeError(
        `${at}: the push carries more than ${this.limits.maxEntries} entries; send smaller batches (Promtail batchsize, Alloy max_batch_size)`,
        413,
      );
    let l = line;
    if (l.length > this.limits.maxLineLength) {
      l = l.slice(0, this.limits.maxLineLength);
      this.truncated++;
    }
    this.entries.push({ line: l, labels, metadata, tenant: this.tenant, time });
  }
}

function checkMetadata(meta: Record<string, string>, at: string): void {
  const keys = Object.keys(meta);
  if (keys.length > LABEL_LIMITS.maxMetadataPairs)
    throw new PushDecodeError(`${at}: ${keys.length} structured metadata pairs exceed the limit of ${LABEL_LIMITS.maxMetadataPairs}`);
  let size = 0;
  for (const k of keys) size += k.length + meta[k]!.length;
  if (size > LABEL_LIMITS.maxMetadataBytes)
    throw new PushDecodeError(`${at}: structured metadata of ${size} characters exceeds ${LABEL_LIMITS.maxMetadataBytes}`);
}

const frozen = <T extends object>(o: T): Readonly<T> => Object.freeze(o);
const EMPTY: Readonly<Record<string, string>> = frozen({});

/** Decodes a parsed JSON push body (`{streams:[{stream, values}]}`); throws {@link PushDecodeError}. */
export function decodePushJson(body: unknown, tenant = DEFAULT_TENANT, limits: PushLimits = DEFAULT_PUSH_LIMITS): DecodedPush {
  if (!isObj(body)) throw new PushDecodeError(`expected a JSON object {"streams":[…]}, got ${Array.isArray(body) ? 'an array' : show(body)}`);
  const streams = body.streams;
  if (streams === undefined)
    throw new PushDecodeError('streams is missing: a push body is {"streams":[{"stream":{…labels},"values":[["<unix ns>","<line>"]]}]}');
  if (!Array.isArray(streams)) throw new PushDecodeError(`streams must be an array, got ${show(streams)}`);
  const c = new Collector(tenant, limits);
  streams.forEach((s, i) => {
    const at = `streams[${i}]`;
    if (!isObj(s)) throw new PushDecodeError(`${at} must be an object with stream and values, got ${show(s)}`);
    const labels = s.stream;
    if (!isObj(labels)) throw new PushDecodeError(`${at}.stream must be an object of label names to string values, got ${show(labels)}`);
    for (const [k, v] of Object.entries(labels)) if (typeof v !== 'string') throw new PushDecodeError(`${at}.stream.${k} must be a string, got ${show(v)}`);
    const problem = checkLabels(labels as Record<string, string>);
    if (problem) throw new PushDecodeError(`${at}.stream: ${problem}`);
    const lbl = frozen({ ...(labels as Record<string, string>) });
    const values = s.values;
    if (!Array.isArray(values)) throw new PushDecodeError(`${at}.values must be an array of ["<unix ns>", "<line>"] pairs, got ${show(values)}`);
    values.forEach((v, j) => {
      const vat = `${at}.values[${j}]`;
      if (!Array.isArray(v) || v.length < 2 || v.length > 3)
        throw new PushDecodeError(`${vat} must be ["<unix ns>", "<line>"] or ["<unix ns>", "<line>", {structured metadata}], got ${show(v)}`);
      const [ts, line, meta] = v as unknown[];
      if (typeof ts !== 'string' || !NS.test(ts))
        throw new PushDecodeError(`${vat}[0] (timestamp) must be a string of nanoseconds since the epoch such as "1570818238000000000", got ${show(ts)}`);
      if (typeof line !== 'string') throw new PushDecodeError(`${vat}[1] (line) must be a string, got ${show(line)}`);
      let metadata = EMPTY;
      if (meta !== undefined) {
        if (!isObj(meta)) throw new PushDecodeError(`${vat}[2] (structured metadata) must be an object of string values, got ${show(meta)}`);
        for (const [k, mv] of Object.entries(meta))
          if (typeof mv !== 'string') throw new PushDecodeError(`${vat}[2].${k} (structured metadata) must be a string, got ${show(mv)}`);
        checkMetadata(meta as Record<string, string>, `${vat}[2]`);
        if (Object.keys(meta).length) metadata = frozen({ ...(meta as Record<string, string>) });
      }
      c.add(lbl, ts.replace(/^0+(?=\d)/, ''), line, metadata, vat);
    });
  });
  return { entries: c.entries, truncated: c.truncated, streams: streams.length };
}

/** Loki's `logproto` push messages, from pkg/push/push.proto (field names and numbers). */
const ROOT = protobuf.Root.fromJSON({
  nested: {
    google: { nested: { protobuf: { nested: { Timestamp: { fields: { seconds: { type: 'int64', id: 1 }, nanos: { type: 'int32', id: 2 } } } } } } },
    logproto: {
      nested: {
        PushRequest: { fields: { streams: { rule: 'repeated', type: 'StreamAdapter', id: 1 } } },
        StreamAdapter: {
          fields: {
            labels: { type: 'string', id: 1 },
            entries: { rule: 'repeated', type: 'EntryAdapter', id: 2 },
            hash: { type: 'uint64', id: 3 },
          },
        },
        LabelPairAdapter: { fields: { name: { type: 'string', id: 1 }, value: { type: 'string', id: 2 } } },
        EntryAdapter: {
          fields: {
            timestamp: { type: 'google.protobuf.Timestamp', id: 1 },
            line: { type: 'string', id: 2 },
            structuredMetadata: { rule: 'repeated', type: 'LabelPairAdapter', id: 3 },
            parsed: { rule: 'repeated', type: 'LabelPairAdapter', id: 4 },
          },
        },
      },
    },
  },
});

/** The protobuf `logproto.PushRequest` type (for building bodies in tests and clients). */
export const PushRequestType = ROOT.lookupType('logproto.PushRequest');

/** A PushRequest as protobufjs decodes it. */
interface PbPush {
  streams?: {
    labels?: string;
    entries?: {
      timestamp?: { seconds?: number | { toString(): string }; nanos?: number };
      line?: string;
      structuredMetadata?: { name?: string; value?: string }[];
    }[];
  }[];
}

/** Reads the uncompressed length a raw snappy block starts with (a uvarint), or undefined when malformed. */
export function snappyLength(buf: Uint8Array): number | undefined {
  let len = 0;
  for (let i = 0, shift = 0; i < 5 && i < buf.length; i++, shift += 7) {
    const b = buf[i]!;
    len += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return len;
  }
  return undefined;
}

/** Decodes a snappy-compressed protobuf PushRequest; throws {@link PushDecodeError}. */
export function decodePushProtobuf(body: Uint8Array, tenant = DEFAULT_TENANT, limits: PushLimits = DEFAULT_PUSH_LIMITS): DecodedPush {
  if (body.length === 0) throw new PushDecodeError('the body is empty; send a snappy-compressed protobuf PushRequest');
  const declared = snappyLength(body);
  if (declared === undefined)
    throw new PushDecodeError('the body is not a raw snappy block (bad length header); protobuf pushes are snappy-compressed without framing');
  if (declared > limits.maxDecompressedBytes)
    throw new PushDecodeError(
      `the push decompresses to ${declared} bytes, more than the limit of ${limits.maxDecompressedBytes}; send smaller batches or raise KUBEVIGIL_MAX_BODY_BYTES`,
      413,
    );
  let raw: Uint8Array;
  try {
    raw = snappy.uncompress(body, limits.maxDecompressedBytes);
  } catch (e) {
    throw new PushDecodeError(`the body is not valid snappy-compressed data (${(e as Error).message}); Loki expects a raw snappy block`);
  }
  let msg: PbPush;
  try {
    msg = PushRequestType.decode(raw) as PbPush;
  } catch (e) {
    throw new PushDecodeError(`the body is not a protobuf PushRequest: ${(e as Error).message}`);
  }
  const streams = msg.streams ?? [];
  const c = new Collector(tenant, limits);
  streams.forEach((s, i) => {
    const at = `streams[${i}]`;
    let labels: Record<string, string>;
    try {
      labels = parseLabelSet(s.labels ?? '');
    } catch (e) {
      throw new PushDecodeError(`${at}.labels: ${(e as Error).message.replace(/^labels /, '')}`);
    }
    const problem = checkLabels(labels);
    if (problem) throw new PushDecodeError(`${at}.labels: ${problem}`);
    const lbl = frozen(labels);
    (s.entries ?? []).forEach((e, j) => {
      const eat = `${at}.entries[${j}]`;
      const ts = e.timestamp;
      if (!ts) throw new PushDecodeError(`${eat}.timestamp is missing`);
      const seconds = BigInt(typeof ts.seconds === 'number' ? ts.seconds : (ts.seconds?.toString() ?? '0'));
      const nanos = ts.nanos ?? 0;
      if (seconds < 0n || nanos < 0 || nanos > 999_999_999)
        throw new PushDecodeError(`${eat}.timestamp (${seconds}s ${nanos}ns) is before the epoch or out of range`);
      let metadata = EMPTY;
      const sm = e.structuredMetadata ?? [];
      if (sm.length) {
        const m = Object.create(null) as Record<string, string>;
        for (const p of sm) m[p.name ?? ''] = p.value ?? '';
        checkMetadata(m, `${eat}.structuredMetadata`);
        metadata = frozen({ ...m });
      }
      c.add(lbl, (seconds * 1_000_000_000n + BigInt(nanos)).toString(), e.line ?? '', metadata, eat);
    });
  });
  return { entries: c.entries, truncated: c.truncated, streams: streams.length };
}

/** Builds a snappy-compressed protobuf push body (what Promtail, Alloy and Fluent Bit send). */
export function encodePushProtobuf(
  streams: { labels: Readonly<Record<string, string>>; entries: { time: string; line: string; metadata?: Readonly<Record<string, string>> }[] }[],
): Uint8Array {
  const msg = {
    streams: streams.map((s) => ({
      labels: formatLabelSet(s.labels),
      entries: s.entries.map((e) => {
        const ns = BigInt(e.time);
        return {
          timestamp: { seconds: Number(ns / 1_000_000_000n), nanos: Number(ns % 1_000_000_000n) },
          line: e.line,
          structuredMetadata: Object.entries(e.metadata ?? {}).map(([name, value]) => ({ name, value })),
        };
      }),
    })),
  };
  return snappy.compress(PushRequestType.encode(msg).finish());
}
