/**
 * The audit receiver's dedup store. Keys in the form kube-apiserver writes are kept as six words
 * each ({@link writeAuditKey}) in a {@link WordKeys}: 24 bytes a key and no heap object, against
 * ≈ 130 bytes and two objects for the ≈ 80-character string in a Set, which the event loop looked up
 * at ≈ 0.6 µs a key (a tenth of its work on a busy audit stream, 14 MB of heap per 100,000 keys).
 * Other keys keep their string form ({@link auditDedupKey}) in a {@link Dedup}. The two forms never
 * meet: a key has one form or the other, decided by its own fields.
 */
import { WordKeys } from '../../correlator/word-keys.js';
import { Dedup } from '../kit/dedup.js';
import { AUDIT_KEY_WORDS as W, writeAuditKey } from './audit-key.js';
import type { AuditEvent } from './parse.js';

/** The dedup keys of a batch's events, as computed where the batch was decoded (a detection worker). */
export interface AuditKeys {
  /** Events in the batch. */
  count: number;
  /** {@link W} words per event (see audit-key.ts); unused for the events in {@link strings}. */
  words: Uint32Array;
  /** [event index, its key as {@link auditDedupKey} writes it] for the events whose key has no compact form. */
  strings: [number, string][];
}

/**
 * The key the apiserver's re-sends share: the same event at the same stage, received at the same
 * instant. The auditID alone is not enough: any client may set it (the Audit-ID request header),
 * and one that reused the ID of an earlier request would have its next requests dropped as
 * re-sends, unseen. A re-send repeats the whole event, receive time (microseconds) included.
 */
export const auditDedupKey = (ev: AuditEvent): string => `${ev.auditID}/${ev.stage}/${ev.requestReceivedTimestamp ?? ''}`;

/** The keys of `events`. */
export function auditKeys(events: readonly AuditEvent[]): AuditKeys {
  const words = new Uint32Array(W * events.length);
  const strings: [number, string][] = [];
  for (let i = 0; i < events.length; i++) if (!writeAuditKey(events[i]!, words, i * W)) strings.push([i, auditDedupKey(events[i]!)]);
  return { count: events.length, words, strings };
}

/** A batch split into its first events of each key not seen before, and a count of the rest. */
export interface AuditSplit {
  /** Indices of the fresh events, in order. */
  fresh: number[];
  duplicates: number;
  /** Remembers the fresh events' keys: call it once the batch was acknowledged. */
  remember(): void;
}

/** The audit keys a receiver has handed on, remembered up to a bound (per form). */
export class AuditDedup {
  private readonly compact: WordKeys;
  /** The compact keys of the batch being split: duplicates within one batch count too. */
  private readonly batch: WordKeys;
  private readonly strings: Dedup;

  constructor(capacity: number) {
    this.compact = new WordKeys(W, capacity);
    // As many as one body holds (the body limit bounds it): a batch larger than the store's bound
    // must still find its own repeats. It grows with the largest batch seen.
    this.batch = new WordKeys(W, 2 ** 30);
    this.strings = new Dedup(capacity);
  }

  split(keys: AuditKeys): AuditSplit {
    const stringKey = new Uint8Array(keys.count);
    for (const [i] of keys.strings) stringKey[i] = 1;
    const fresh: number[] = [];
    let duplicates = 0;
    const { compact, batch, strings } = this;
    const key = compact.key;
    const words = keys.words;
    batch.clear();
    for (let i = 0; i < keys.count; i++) {
      if (stringKey[i]) continue;
      for (let k = 0; k < W; k++) key[k] = batch.key[k] = words[i * W + k]!;
      if (compact.has() || !batch.add()) duplicates++;
      else fresh.push(i);
    }
    const s = strings.split(keys.strings, (e) => e[1]);
    duplicates += s.duplicates;
    if (s.fresh.length) {
      for (const [i] of s.fresh) fresh.push(i);
      fresh.sort((a, b) => a - b);
    }
    return {
      fresh,
      duplicates,
      remember: () => {
        for (const i of fresh) {
          if (stringKey[i]) continue;
          for (let k = 0; k < W; k++) key[k] = words[i * W + k]!;
          compact.add();
        }
        strings.remember(s.keys);
      },
    };
  }
}
