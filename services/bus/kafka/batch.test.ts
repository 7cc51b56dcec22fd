/**
 * The batch runner's pipelining of checkpointed subscriptions, against kafkajs's side of
 * `eachBatch` as a fake (the offsets resolved, the seeks, the heartbeats): a batch is given back
 * before it is handled, batches of a partition are handled in order, and a rewind, a rebalance or a
 * failure partway drops the batches fetched before it and fetches from the right offset again.
 * services/bus/bus.test.ts runs the same code against a real broker.
 */
import type { Consumer, EachBatchPayload, KafkaMessage } from 'kafkajs';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { RewindError, type BusMessage } from '../bus.js';
import { Backoff } from './backoff.js';
import { BatchRunner } from './batch.js';
import { CheckpointRunner } from './checkpoint.js';
import { OffsetCommitter } from './commit.js';
import type { DeadLetterWriter } from './dead-letter.js';
import { newStats } from './options.js';
import { BusState } from './state.js';
import { movePosition, newSubscription, type Subscription } from './subscription.js';

const log = pino({ level: 'silent' });

/** What kafkajs saw of the runner: offsets resolved, seeks, commits. */
interface Kafkajs {
  resolved: string[];
  seeks: string[];
  commits: string[];
}

function payload(kafkajs: Kafkajs, first: number, count: number, opts: { heartbeat?: () => Promise<void>; lag?: string } = {}): EachBatchPayload {
  const messages = Array.from(
    { length: count },
    (_, i) =>
      ({ key: Buffer.from('k'), value: Buffer.from(JSON.stringify({ n: first + i })), headers: {}, offset: String(first + i) }) as unknown as KafkaMessage,
  );
  return {
    batch: {
      topic: 't',
      partition: 0,
      messages,
      offsetLag: () => opts.lag ?? '100',
      firstOffset: () => messages[0]?.offset ?? null,
      lastOffset: () => messages[messages.length - 1]!.offset,
    },
    resolveOffset: (o: string) => void kafkajs.resolved.push(o),
    heartbeat: opts.heartbeat ?? (async () => {}),
    isRunning: () => true,
    isStale: () => false,
    commitOffsetsIfNecessary: async (offsets: { topics: { partitions: { offset: string }[] }[] }) =>
      void kafkajs.commits.push(offsets.topics[0]!.partitions[0]!.offset),
  } as unknown as EachBatchPayload;
}

function setup(flush: (partition: number) => Promise<void> = async () => {}) {
  const kafkajs: Kafkajs = { resolved: [], seeks: [], commits: [] };
  const handled: number[][] = [];
  let gate: Promise<void> = Promise.resolve();
  let onEntry: (() => void) | undefined;
  const stats = newStats();
  const backoff = new Backoff({ initial: 1, max: 1 });
  const committer = new OffsetCommitter({ state: new BusState(), stats, log });
  const checkpoints = new CheckpointRunner({ stats, log, backoff, committer, onHandlerError: undefined });
  const runner = new BatchRunner({
    settings: { maxBatchMessages: 2, onLag: undefined, onHandlerError: undefined },
    stats,
    log,
    backoff,
    deadLetters: { park: async () => {} } as unknown as DeadLetterWriter,
    committer,
    checkpoints,
  });
  const sub: Subscription = newSubscription(
    't',
    'g',
    'kubevigil.g',
    async (batch: BusMessage<unknown>[]) => {
      onEntry?.();
      await gate;
      handled.push(batch.map((m) => (m.value as { n: number }).n));
    },
    { checkpointing: { flush, maxMessages: 1_000_000, intervalMs: 1_000_000 } },
  );
  sub.consumer = { seek: ({ offset }: { offset: string }) => void kafkajs.seeks.push(offset) } as unknown as Consumer;
  const hold = () => {
    let release!: () => void;
    gate = new Promise<void>((r) => (release = r));
    return release;
  };
  /** Resolves when the handler is next called. */
  const entered = () => new Promise<void>((r) => (onEntry = r));
  /** Every batch handed over has been handled or dropped. */
  const settled = () => Promise.all(sub.busy.values());
  return { kafkajs, handled, runner, sub, hold, entered, settled };
}

describe('pipelined batches of a checkpointed subscription', () => {
  it('gives a batch back to kafkajs before it is handled, with its offsets resolved, and handles batches in order', async () => {
    const { kafkajs, handled, runner, sub, hold, settled } = setup();
    const release = hold();
    // Returns while the handler still waits: kafkajs may fetch the next batch meanwhile.
    await runner.onBatch(sub, payload(kafkajs, 0, 4));
    expect(kafkajs.resolved).toEqual(['3']);
    expect(handled).toEqual([]);
    // The next batch of the partition is given back only once the one before it was handled.
    let second = false;
    const next = runner.onBatch(sub, payload(kafkajs, 4, 2)).then(() => (second = true));
    await new Promise((r) => setImmediate(r));
    expect(second).toBe(false);
    release();
    await next;
    await settled();
    expect(handled).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
    ]);
    // Resolved once per batch, at its end: never back to an earlier offset (kafkajs would fetch it again).
    expect(kafkajs.resolved).toEqual(['3', '5']);
    // Nothing committed: commits come from flushes.
    expect(kafkajs.commits).toEqual([]);
  });

  it('flushes and commits when a batch caught up', async () => {
    const flushed: number[] = [];
    const { kafkajs, runner, sub, settled } = setup(async (p) => void flushed.push(p));
    await runner.onBatch(sub, payload(kafkajs, 0, 3, { lag: '0' }));
    await settled();
    expect(flushed).toEqual([0]);
    expect(kafkajs.commits).toEqual(['3']);
  });

  it('after a rewind, drops the batches fetched before it and fetches from the first message not flushed', async () => {
    let rewinds = 1;
    const { kafkajs, handled, runner, sub, hold, settled } = setup(async () => {
      if (rewinds-- > 0) throw new RewindError('state dropped (test)');
    });
    const release = hold();
    await runner.onBatch(sub, payload(kafkajs, 10, 2, { lag: '0' }));
    // Fetched while the first is in hand, before its flush rewinds.
    const stale = runner.onBatch(sub, payload(kafkajs, 12, 2, { lag: '0' }));
    release();
    await stale;
    await settled();
    expect(kafkajs.seeks).toEqual(['10']);
    expect(handled).toEqual([[10, 11]]);
    // Fetched again from the seek: handled.
    await runner.onBatch(sub, payload(kafkajs, 10, 4, { lag: '0' }));
    await settled();
    expect(handled).toEqual([
      [10, 11],
      [10, 11],
      [12, 13],
    ]);
    expect(kafkajs.commits).toEqual(['14']);
  });

  it('after a rebalance, handles no batch fetched before it', async () => {
    const { kafkajs, handled, runner, sub, hold, entered, settled } = setup();
    const release = hold();
    const inHand = entered();
    await runner.onBatch(sub, payload(kafkajs, 0, 4));
    const stale = runner.onBatch(sub, payload(kafkajs, 4, 2));
    await inHand;
    // kafkajs is rejoining the group: it fetches every partition from its commit afterwards.
    movePosition(sub);
    release();
    await stale;
    await settled();
    // The batch in hand stopped at its next chunk; the one after it was not handled at all.
    expect(handled).toEqual([[0, 1]]);
    expect(kafkajs.seeks).toEqual([]);
  });

  it('fetches a batch that failed partway again from its first message not handled', async () => {
    const { kafkajs, handled, runner, sub, settled } = setup();
    let heartbeats = 0;
    const heartbeat = async () => {
      if (++heartbeats === 1) throw new Error('The group is rebalancing (test)');
    };
    await runner.onBatch(sub, payload(kafkajs, 20, 5, { heartbeat }));
    const after = runner.onBatch(sub, payload(kafkajs, 25, 2));
    await after;
    await settled();
    // The first chunk was handled, then the heartbeat threw: 22 onwards is fetched again, and the
    // batch fetched before the seek is dropped.
    expect(handled).toEqual([[20, 21]]);
    expect(kafkajs.seeks).toEqual(['22']);
    expect(sub.unflushed.get(0)).toMatchObject({ first: '20', last: '21', count: 2 });
  });
});
