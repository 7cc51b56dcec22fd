/** Bus topic names, built here and nowhere else (Kafka topics in distributed mode, queues in memory). */
import type { Incident, IncidentStatus } from '../../correlator/incident.js';
import { parseWithoutEvidence, signalJson, type Signal } from '../../correlator/signal.js';
import type { MessageParser } from './bus.js';
import { readSignal } from './signal-reader.js';

/** A lifecycle change requested through the API, routed to the partition that owns the incident. */
export interface TransitionCommand {
  command: 'transition';
  incidentId: string;
  to: IncidentStatus;
  note: string;
  by?: string;
}

/** Names who works on an incident; routed like {@link TransitionCommand}. */
export interface AssignCommand {
  command: 'assign';
  incidentId: string;
  assignee: string;
}

/** A command the API sends to the correlator that owns the incident. */
export type IncidentCommand = TransitionCommand | AssignCommand;

/** What the signals topic carries. */
export type SignalsMessage = Signal | IncidentCommand;

/** Distinguishes commands from signals on the signals topic. */
export function isCommand(m: SignalsMessage): m is IncidentCommand {
  // Asked own first: reading a member that signals lack is slow once this has seen objects of
  // many shapes (a megamorphic miss), and most messages are signals.
  if (!Object.hasOwn(m, 'command')) return false;
  const command = (m as IncidentCommand).command;
  return command === 'transition' || command === 'assign';
}

/** A topic and the type of the values it carries. */
export interface Topic<T> {
  readonly name: string;
  /** Phantom field: ties the value type to the topic at compile time. */
  readonly _value?: T;
  /** Kafka only: how a value is written when not as plain JSON, with headers that say how to read it cheaply. */
  readonly encode?: (value: T) => { json: string; headers?: Record<string, string> };
}

/** Header of a signal message: where its evidence starts in the JSON (see {@link signalJson}). */
export const EVIDENCE_AT_HEADER = 'x-kubevigil-evidence-at';

/**
 * Header of a signal message: where the members it shares with other signals start in the JSON
 * and their text's hash, as `at:hash` (see {@link signalJson}); readers that parsed the same text
 * before reuse what they parsed.
 */
export const SHARED_HEADER = 'x-kubevigil-shared';

/** Writes a signals-topic message: a signal with its evidence last and where it and its shared members start in headers; a command as JSON. */
export function encodeSignalsMessage(m: SignalsMessage): { json: string; headers?: Record<string, string> } {
  if (isCommand(m)) return { json: JSON.stringify(m) };
  const { json, evidenceAt, shared } = signalJson(m as Signal);
  if (evidenceAt === undefined) return { json };
  const headers: Record<string, string> = { [EVIDENCE_AT_HEADER]: String(evidenceAt) };
  if (shared) headers[SHARED_HEADER] = `${shared.at}:${shared.hash}`;
  return { json, headers };
}

/**
 * Reads a signals-topic message without the signal's evidence, for consumers that do not keep it
 * (the correlator): less than half of each message is parsed when the producer said where the
 * evidence starts, and all of it otherwise.
 */
export const parseSignalsMessageWithoutEvidence: MessageParser = Object.assign(
  (json: string, header: (name: string) => string | undefined): unknown => {
    const at = header(EVIDENCE_AT_HEADER);
    return parseWithoutEvidence(json, at === undefined ? undefined : Number(at));
  },
  { bytes: parseSignalBytesWithoutEvidence },
);

/**
 * The unsigned decimal integer in `b[start, end)`, or NaN for anything else (an empty range, other
 * characters, more than 15 digits). Read from the header's bytes: no string made for it.
 */
function decimal(b: Uint8Array, start: number, end: number): number {
  if (end <= start || end - start > 15) return NaN;
  let x = 0;
  for (let i = start; i < end; i++) {
    const d = b[i]! - 48;
    if (d < 0 || d > 9) return NaN;
    x = x * 10 + d;
  }
  return x;
}

/** A header's value as Kafka gave it (bytes), if it is one. */
function headerBytes(headers: Readonly<Record<string, unknown>> | undefined, name: string): Buffer | undefined {
  const v = headers?.[name];
  return Buffer.isBuffer(v) ? v : undefined;
}

/** Where a signal message's parts are, as its headers say (NaN for what they do not say). */
export interface SignalPositions {
  /** See {@link EVIDENCE_AT_HEADER}. */
  evidenceAt: number;
  /** See {@link SHARED_HEADER}. */
  sharedAt: number;
  sharedHash: number;
}

/**
 * A signal message's {@link SignalPositions}, read from the headers' bytes (`headers`, as Kafka
 * gave them) when they are plain numbers, else from their text (`header`).
 */
export function signalPositions(header: (name: string) => string | undefined, headers?: Readonly<Record<string, unknown>>): SignalPositions {
  const atBytes = headerBytes(headers, EVIDENCE_AT_HEADER);
  let evidenceAt = atBytes ? decimal(atBytes, 0, atBytes.length) : NaN;
  if (Number.isNaN(evidenceAt)) {
    const text = header(EVIDENCE_AT_HEADER);
    evidenceAt = text === undefined ? NaN : Number(text);
  }
  // `at:hash`
  const sharedBytes = headerBytes(headers, SHARED_HEADER);
  let colon = sharedBytes ? sharedBytes.indexOf(0x3a) : -1;
  let sharedAt = colon > 0 ? decimal(sharedBytes!, 0, colon) : NaN;
  let sharedHash = colon > 0 ? decimal(sharedBytes!, colon + 1, sharedBytes!.length) : NaN;
  if (Number.isNaN(sharedAt) || Number.isNaN(sharedHash)) {
    const text = header(SHARED_HEADER);
    colon = text === undefined ? -1 : text.indexOf(':');
    sharedAt = colon < 0 ? NaN : Number(text!.slice(0, colon));
    sharedHash = colon < 0 ? NaN : Number(text!.slice(colon + 1));
  }
  return { evidenceAt, sharedAt, sharedHash };
}

/** {@link parseSignalsMessageWithoutEvidence} from the message's bytes (see services/bus/signal-reader.ts). */
function parseSignalBytesWithoutEvidence(value: Buffer, header: (name: string) => string | undefined, headers?: Readonly<Record<string, unknown>>): unknown {
  const { evidenceAt, sharedAt, sharedHash } = signalPositions(header, headers);
  return readSignal(value, evidenceAt, sharedAt, sharedHash);
}

/** Topic names with an optional prefix (tests give each run its own). */
export function topics(prefix = 'kubevigil') {
  return {
    signals: { name: `${prefix}.signals`, encode: encodeSignalsMessage } as Topic<SignalsMessage>,
    incidents: { name: `${prefix}.incidents` } as Topic<Incident>,
    /** Kafka only: the raw bytes of messages that could not be decoded, with `x-kubevigil-dlq-*` headers. */
    deadLetter: { name: `${prefix}.dead-letter` } as Topic<unknown>,
  };
}

/** The Kafka consumer group id of a role's group, scoped by the same prefix as the topics. */
export function consumerGroupId(prefix: string, group: string): string {
  return `${prefix}.${group}`;
}
