/**
 * Signal messages read from their bytes without their evidence, and without parsing again what
 * earlier messages already said (see `signalJson` in correlator/signal.ts for how they are written).
 *
 * An actor's signals repeat most of their members from one to the next (the same actor, target,
 * entities, rule…); only the id and the times are each signal's own. The producer writes the
 * repeated part in one stretch and names it by a hash in a header. The reader keeps the parts it
 * parsed recently by that hash and, when a message's bytes there are the same as a kept part's
 * (compared byte for byte: the hash only finds the candidate), parses the message's own members
 * alone and builds the signal from the kept members (shared by the signals built from them, their
 * objects frozen). Anything else — no header, a hash that finds nothing or other bytes, a part
 * that is not a signal's — is parsed as before, so a wrong header costs time, never a wrong signal.
 */
import { isAscii } from 'node:buffer';
import {
  EVIDENCE_MEMBER,
  isOwnMembers,
  leanSignal,
  parseSignalCore,
  parseWithoutEvidence,
  sharedMembers,
  type OwnMembers,
  type SharedMembers,
} from '../../correlator/signal.js';

const EVIDENCE_BYTES = Buffer.from(EVIDENCE_MEMBER, 'latin1');
const OPEN_BRACE = 0x7b;
const CLOSING_BRACE = 0x7d;
const COMMA = 0x2c;

/**
 * Where a part of a message is wrapped in braces and read as one string: the bytes copied, not a
 * decoded string concatenated (which JSON.parse would flatten, a copy more). Parts longer than it
 * (signals are bounded far below) take a concatenation.
 */
const scratch = Buffer.allocUnsafe(64 * 1024);

/** `value[start, end)` with `open` (a byte) before it, if given, and a closing brace after, as one Latin-1 string (the bytes must be ASCII). */
function braced(value: Buffer, start: number, end: number, open?: number): string {
  const o = open === undefined ? 0 : 1;
  const n = end - start;
  if (n + o + 1 > scratch.length) return `${open === undefined ? '' : String.fromCharCode(open)}${value.toString('latin1', start, end)}}`;
  if (open !== undefined) scratch[0] = open;
  value.copy(scratch, o, start, end);
  scratch[n + o] = CLOSING_BRACE;
  return scratch.toString('latin1', 0, n + o + 1);
}

/** True when `value` holds `what` at `at` (compared here: a few bytes cost less than a call into Buffer.compare). */
function startsWithAt(value: Buffer, at: number, what: Buffer): boolean {
  for (let i = 0; i < what.length; i++) if (value[at + i] !== what[i]) return false;
  return true;
}

/** True when `value[start, end)` is ASCII: a loop here for the few bytes of a signal's own members (a call into isAscii costs more). */
function asciiIn(value: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (value[i]! > 0x7f) return false;
  return true;
}

const ID_START = Buffer.from('{"id":"', 'latin1');
const ID_DIGITS = 32;
const EVENT_TIME = Buffer.from('","eventTime":', 'latin1');
const OBSERVED_TIME = Buffer.from(',"observedTime":', 'latin1');
/** The value of the integer {@link integerEnd} read last. */
let integerValue = 0;

/**
 * Where the JSON integer at `value[start]` ends, at most at `end`, its value in
 * {@link integerValue}; -1 unless it is one this reader takes: 1 to 15 digits (exact as a double),
 * no sign, fraction or exponent, no leading zero (JSON has none).
 */
function integerEnd(value: Buffer, start: number, end: number): number {
  let x = 0;
  let i = start;
  for (; i < end && i - start <= 15; i++) {
    const d = value[i]! - 48;
    if (d < 0 || d > 9) break;
    x = x * 10 + d;
  }
  const n = i - start;
  if (n === 0 || n > 15 || (n > 1 && value[start] === 48)) return -1;
  integerValue = x;
  return i;
}

/**
 * A signal's own members read from `value[0, end)` as the producer writes them
 * (`{"id":"<32 hex digits>","eventTime":N,"observedTime":N`, see `signalJson` in
 * correlator/signal.ts; N an integer of {@link integerEnd}), without JSON.parse; undefined for
 * anything else, which JSON.parse then reads. What it takes, JSON.parse reads the same. (A drain
 * of the signals topic spent ≈ 0.5 µs a signal copying, decoding and parsing those ≈ 85 bytes.)
 */
function ownMembers(value: Buffer, end: number): OwnMembers | undefined {
  const idEnd = ID_START.length + ID_DIGITS;
  const t0 = idEnd + EVENT_TIME.length;
  if (t0 >= end || !startsWithAt(value, 0, ID_START)) return undefined;
  for (let i = ID_START.length; i < idEnd; i++) {
    const c = value[i]!;
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return undefined;
  }
  if (!startsWithAt(value, idEnd, EVENT_TIME)) return undefined;
  const t1 = integerEnd(value, t0, end);
  const eventTime = integerValue;
  const o0 = t1 + OBSERVED_TIME.length;
  if (t1 < 0 || o0 >= end || !startsWithAt(value, t1, OBSERVED_TIME) || integerEnd(value, o0, end) !== end) return undefined;
  return { id: value.toString('latin1', ID_START.length, idEnd), eventTime, observedTime: integerValue };
}

/** A signal's own members in `value[0, end)` parsed as JSON (closed with a brace), if that is what they are. */
function parsedOwnMembers(value: Buffer, end: number): OwnMembers | undefined {
  let own: unknown;
  try {
    own = JSON.parse(braced(value, 0, end));
  } catch {
    return undefined;
  }
  return isOwnMembers(own) ? own : undefined;
}

/** A shared part read before: its bytes, and its members (undefined when they are not a signal's: such messages are parsed whole). */
interface Known {
  bytes: Buffer;
  members: SharedMembers | undefined;
}

/**
 * Shared parts kept per generation. Two generations: when the newer fills, the older is forgotten
 * and the newer takes its place; a part found in the older moves to the newer. At most twice this
 * many are kept, ≈ 2 KB each for a typical signal (its bytes and its parsed members): 16 MB at most.
 */
export const SHARED_PARTS_KEPT = 4096;
let newer = new Map<number, Known>();
let older = new Map<number, Known>();

function keep(hash: number, k: Known): void {
  if (newer.size >= SHARED_PARTS_KEPT) {
    older = newer;
    newer = new Map();
  }
  newer.set(hash, k);
}

/**
 * Hashes of shared parts seen once and not kept: a part is kept the second time it is seen, so
 * that parts no other signal repeats (a title that names a request's command, say) cost a lookup
 * here, not a parse, a copy and a place among the kept ones (14 µs a signal, against 4 parsing
 * it whole, when every message was new). Forgotten all at once when it fills.
 */
const seenOnce = new Set<number>();
const SEEN_ONCE_BOUND = 4 * SHARED_PARTS_KEPT;

/** Reading statistics since the process started (tests and benchmarks read them): parts reused, parts parsed and kept, parts seen for the first time. */
export const sharedPartStats = { reused: 0, parsed: 0, firstSeen: 0 };

/**
 * The shared part `value[start, end)`, named by `hash`: as kept, or parsed now and kept when it was
 * seen before; undefined the first time (the caller parses the whole message then).
 */
function sharedPart(value: Buffer, start: number, end: number, fullHash: number): Known | undefined {
  // 30 bits: a small integer to V8 (no number boxed per message); the bytes are compared anyway.
  const hash = fullHash & 0x3fffffff;
  let k = newer.get(hash);
  if (!k) {
    k = older.get(hash);
    if (k) keep(hash, k);
  }
  if (k && k.bytes.length === end - start && value.compare(k.bytes, 0, k.bytes.length, start, end) === 0) {
    sharedPartStats.reused++;
    return k;
  }
  if (!seenOnce.delete(hash)) {
    if (seenOnce.size >= SEEN_ONCE_BOUND) seenOnce.clear();
    seenOnce.add(hash);
    sharedPartStats.firstSeen++;
    return undefined;
  }
  sharedPartStats.parsed++;
  let members: SharedMembers | undefined;
  // Text that is not ASCII is not read here (its characters are not its bytes): kept as such, so
  // that messages repeating it go to the whole parse at once.
  if (isAscii(value.subarray(start, end)))
    try {
      members = sharedMembers(JSON.parse(braced(value, start, end, OPEN_BRACE)));
    } catch {
      members = undefined;
    }
  k = { bytes: Buffer.from(value.subarray(start, end)), members };
  keep(hash, k);
  return k;
}

/**
 * The signal without its evidence from a message's bytes, given what its headers said: where the
 * evidence starts (`evidenceAt`, NaN when not said) and where its shared part starts and its hash
 * (NaN when not said). When everything before the evidence is ASCII (so that character indexes
 * are byte indexes), only that part is read, as Latin-1 (the same characters, without UTF-8
 * validation), and of it only the signal's own members when its shared part was read before.
 * Otherwise, or when a position is not what it should be, the whole message is parsed. Throws what
 * `JSON.parse` throws for a value that is not JSON.
 */
export function readSignal(value: Buffer, evidenceAt: number, sharedAt: number, sharedHash: number): unknown {
  const at = evidenceAt;
  const end = at + EVIDENCE_BYTES.length;
  if (Number.isInteger(at) && at > 1 && value.length > end && value[value.length - 1] === CLOSING_BRACE && startsWithAt(value, at, EVIDENCE_BYTES)) {
    // The own members end at a top-level comma when they parse as an object closed there (a cut
    // inside a string or a nested value leaves one unterminated); the shared part then runs from
    // that comma to the evidence, and was checked to be ASCII members when it was first read.
    if (
      Number.isInteger(sharedAt) &&
      sharedAt > 1 &&
      sharedAt < at - 1 &&
      value[sharedAt] === COMMA &&
      Number.isInteger(sharedHash) &&
      asciiIn(value, 0, sharedAt)
    ) {
      const shared = sharedPart(value, sharedAt + 1, at, sharedHash)?.members;
      if (shared) {
        const own = ownMembers(value, sharedAt) ?? parsedOwnMembers(value, sharedAt);
        if (own) return leanSignal(own, shared);
      }
    }
    // Undefined when the cut is not at a top-level member: read it all, as below.
    const signal = isAscii(value.subarray(0, at)) ? parseSignalCore(braced(value, 0, at)) : undefined;
    if (signal) return signal;
  }
  return parseWithoutEvidence(value.toString('utf8'), at);
}
