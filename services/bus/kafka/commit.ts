/** Offset commits after a handled batch: retried briefly, and given up when the partition went to another consumer. */
import type { EachBatchPayload } from 'kafkajs';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../../logging.js';
import type { KafkaBusStats } from './options.js';
import type { BusState } from './state.js';

/** Commits the offset after a handled message of a fetched batch's partition. */
export class OffsetCommitter {
  constructor(
    private readonly deps: {
      state: BusState;
      stats: KafkaBusStats;
      log: Logger;
    },
  ) {}

  /**
   * Commits the offset after `offset` (with `metadata`, when given), in three attempts; it works
   * while the consumer stops, so a drained batch is not redelivered. Rejects if all failed while the
   * partition is still this consumer's; resolves without a commit once it is not.
   */
  async commit(p: EachBatchPayload, offset: string, metadata?: string): Promise<void> {
    const { state, stats, log } = this.deps;
    const next = (BigInt(offset) + 1n).toString();
    // kafkajs passes each partition's metadata on to the OffsetCommit request.
    const partition = { partition: p.batch.partition, offset: next, ...(metadata === undefined ? {} : { metadata }) };
    const offsets = { topics: [{ topic: p.batch.topic, partitions: [partition] }] };
    for (let attempt = 1; ; attempt++) {
      try {
        await p.commitOffsetsIfNecessary(offsets);
        state.connected = true;
        return;
      } catch (e) {
        stats.commitFailures++;
        if (attempt >= 3 || p.isStale()) {
          // Handled but not committed: whoever owns the partition next gets these again (at least once).
          log.warn({ err: e, topic: p.batch.topic, partition: p.batch.partition, offset: next }, 'offset commit failed');
          if (!p.isRunning() || p.isStale()) return;
          throw e;
        }
        await delay(100 * attempt);
      }
    }
  }
}
