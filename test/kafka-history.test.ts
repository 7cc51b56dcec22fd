/**
 * What a correlator rebuilding a lost checkpoint reads from Kafka (services/bus/kafka/read-back.ts),
 * against the real broker (skipped without KAFKA_BROKERS): the messages written since a time, and
 * the offsets a checkpointed consumer group committed with the metadata it asked for.
 */
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { Received, testPrefix, type TestValue } from '../services/bus/bus.contract.js';
import { createKafkaBus, type KafkaBus } from '../services/bus/kafka.js';
import { standaloneReadBack } from '../services/bus/kafka/read-back.js';
import type { KafkaCheckpointing } from '../services/bus/kafka/subscription.js';
import { consumerGroupId, type Topic } from '../services/bus/topics.js';
import '../services/bus/kafkajs-timers.js';
import { waitFor } from './helpers/prometheus.js';

const brokers = process.env.KAFKA_BROKERS?.split(',').filter(Boolean) ?? [];
const closers: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c();
});

async function started(prefix: string): Promise<KafkaBus> {
  const bus = createKafkaBus({ brokers, clientId: 'kubevigil-test', topicPrefix: prefix, partitions: 2, retryBackoffMs: { initial: 50, max: 500 } });
  closers.push(() => bus.close());
  await bus.start();
  return bus;
}

function reader(prefix: string) {
  const r = standaloneReadBack({ brokers, clientId: 'kubevigil-test-read-back', topicPrefix: prefix, sessionTimeoutMs: 6000 });
  closers.push(r.close);
  return r.reader;
}

const message = (key: string, seq: number) => ({ key, value: { k: key, seq } });

describe.skipIf(brokers.length === 0)('Kafka history of a partition (needs KAFKA_BROKERS)', () => {
  it('reads what was written since a time: every partition to its end, or one up to an offset, at most the last few', async () => {
    const prefix = testPrefix('since');
    const bus = await started(prefix);
    const topic = bus.topics.signals as unknown as Topic<TestValue>;
    await bus.publish(topic, [...Array.from({ length: 10 }, (_, i) => message('sa:h/one', i)), message('sa:h/two', 100)]);
    // Messages carry the producer's clock: everything published after this millisecond is newer.
    const since = Date.now() + 1;
    await waitFor('the clock to pass the cut', () => (Date.now() > since ? true : undefined), 1000, 1);
    await bus.publish(topic, [...Array.from({ length: 10 }, (_, i) => message('sa:h/one', 10 + i)), message('sa:h/two', 101)]);
    const r = reader(prefix);

    const all: { key: string; seq: number; partition: number; offset: string }[] = [];
    await r.since(topic, since, (m) => all.push({ key: m.key, seq: m.value.seq, partition: m.partition!, offset: m.offset! }));
    expect(all.map((m) => m.seq).sort((a, b) => a - b)).toEqual([...Array.from({ length: 10 }, (_, i) => 10 + i), 101]);
    const one = all.filter((m) => m.key === 'sa:h/one');
    expect(new Set(one.map((m) => m.partition)).size).toBe(1);
    // In offset order, as the partition holds them.
    expect(one.map((m) => m.seq)).toEqual(Array.from({ length: 10 }, (_, i) => 10 + i));

    // One partition, before an offset, the last three.
    const partition = one[0]!.partition;
    const before = one.find((m) => m.seq === 15)!.offset;
    const some: number[] = [];
    await r.since(topic, 0, (m) => some.push(m.value.seq), { partition, before, max: 3 });
    expect(some).toEqual([12, 13, 14]);
    // Nothing since a time after the last message.
    const none: unknown[] = [];
    await r.since(topic, Date.now() + 60_000, (m) => none.push(m));
    expect(none).toEqual([]);

    const admin = new Kafka({ clientId: 'kv-test-admin', brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    const left = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(`${prefix}.read-`));
    await admin.disconnect();
    expect(left).toEqual([]);
  });

  it('a checkpointed subscription commits the metadata it asks for, and the committed offsets read back with it', async () => {
    const prefix = testPrefix('committed');
    const bus = await started(prefix);
    const topic = bus.topics.signals as unknown as Topic<TestValue>;
    const r = reader(prefix);
    const group = consumerGroupId(prefix, 'meta');
    expect((await r.committed(group, topic.name)).size).toBe(0);

    const got = new Received<TestValue>();
    let flushes = 0;
    const checkpointing: KafkaCheckpointing = {
      flush: async () => void flushes++,
      commitMetadata: (partition) => `kubevigil-checkpoint:${partition + 7}`,
    };
    bus.subscribe(topic, 'meta', got.handler, { checkpointing });
    const keys = ['sa:m/a', 'sa:m/b', 'sa:m/c', 'sa:m/d'];
    await bus.publish(
      topic,
      keys.map((k, i) => message(k, i)),
    );
    await got.count(keys.length);
    const perPartition = new Map<number, number>();
    for (const m of got.messages) perPartition.set(m.partition!, Math.max(perPartition.get(m.partition!) ?? -1, Number(m.offset)));
    const committed = await waitFor(
      'the commits of every partition that had messages',
      async () => {
        const c = await r.committed(group, topic.name);
        return [...perPartition].every(([p, last]) => c.get(p)?.offset === String(last + 1)) ? c : undefined;
      },
      30_000,
      100,
    );
    expect(flushes).toBeGreaterThan(0);
    for (const p of perPartition.keys()) expect(committed.get(p)!.metadata).toBe(`kubevigil-checkpoint:${p + 7}`);
  });
});
