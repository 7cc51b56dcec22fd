/** Bus topic names, built here and nowhere else (Kafka topics in distributed mode, queues in memory). */
import { isAscii } from 'node:buffer';
import type { Incident, IncidentStatus } from '../../correlator/incident.js';
import { EVIDENCE_MEMBER, parseSignalCore, parseWithoutEvidence, signalJson, type Signal } from '../../correlator/signal.js';
import type { MessageParser } from './bus.js';

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

/** Writes a signals-topic message: a signal with its evidence last and where it starts in a header; a command as JSON. */
export function encodeSignalsMessage(m: SignalsMessage): { json: string; headers?: Record<string, string> } {
  if (isCommand(m)) return { json: JSON.stringify(m) };
  const { json, evidenceAt } = signalJson(m as Signal);
  return evidenceAt === undefined ? { json } : { json, headers: { [EVIDENCE_AT_HEADER]: String(evidenceAt) } };
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

const EVIDENCE_BYTES = Buffer.from(EVIDENCE_MEMBER, 'latin1');
const CLOSING_BRACE = 0x7d;
/**
 * Where a message's part before the evidence is closed with a brace and read as one string: the
 * bytes copied, not a decoded string concatenated (which JSON.parse would flatten, a copy more).
 * Cores longer than it (signals are bounded far below) take a concatenation.
 */
const core = Buffer.allocUnsafe(64 * 1024);

/**
 * {@link parseSignalsMessageWithoutEvidence} from the message's bytes: when everything before the
 * evidence is ASCII (so that the header's character index is also a byte index), only that part is
 * decoded, as Latin-1 (the same characters, without UTF-8 validation); otherwise, or when the cut
 * is not where the evidence starts, the whole message is.
 */
function parseSignalBytesWithoutEvidence(value: Buffer, header: (name: string) => string | undefined): unknown {
  const raw = header(EVIDENCE_AT_HEADER);
  const at = raw === undefined ? NaN : Number(raw);
  const end = at + EVIDENCE_BYTES.length;
  if (
    Number.isInteger(at) &&
    at > 1 &&
    value.length > end &&
    value[value.length - 1] === CLOSING_BRACE &&
    value.compare(EVIDENCE_BYTES, 0, EVIDENCE_BYTES.length, at, end) === 0 &&
    isAscii(value.subarray(0, at))
  ) {
    let json: string;
    if (at < core.length) {
      value.copy(core, 0, 0, at);
      core[at] = CLOSING_BRACE;
      json = core.toString('latin1', 0, at + 1);
    } else json = `${value.toString('latin1', 0, at)}}`;
    // Undefined when the cut is not at a top-level member: read it all, as below.
    const signal = parseSignalCore(json);
    if (signal) return signal;
  }
  return parseSignalsMessageWithoutEvidence(value.toString('utf8'), header);
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
