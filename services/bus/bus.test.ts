import { AsyncLocalStorage } from 'node:async_hooks';
import { createServer } from 'node:net';
import {
  context,
  propagation,
  ROOT_CONTEXT,
  trace,
  TraceFlags,
  type Context,
  type ContextManager,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
} from '@opentelemetry/api';
import { Kafka, logLevel, type Admin, type IHeaders, type KafkaMessage } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { KubevigilError } from '../../correlator/errors.js';
import { busContract, Received, testPrefix, type TestValue } from './bus.contract.js';
import { createKafkaBus, DLQ_HEADERS, SIGNALS_RETENTION_MS, type KafkaBus, type KafkaBusOptions } from './kafka.js';
import { INCIDENTS_MAX_MESSAGE_BYTES } from './kafka/provision.js';
import { BUS_MAX_MESSAGE_BYTES } from '../../correlator/budget.js';
import { MemoryBus } from './memory.js';
import { EVIDENCE_AT_HEADER, parseSignalsMessageWithoutEvidence, topics, type SignalsMessage, type Topic } from './topics.js';
import { withoutEvidence } from '../../correlator/signal.js';
import { makeSignal, T0 } from '../store/store.contract.js';

const brokers = process.env.KAFKA_BROKERS?.split(',').filter(Boolean) ?? [];

function kafkaBus(prefix: string, extra: Partial<KafkaBusOptions> = {}): KafkaBus {
  return createKafkaBus({ brokers, clientId: 'kubevigil-test', topicPrefix: prefix, partitions: 4, retryBackoffMs: { initial: 50, max: 500 }, ...extra });
}

busContract('MemoryBus', async () => new MemoryBus());

describe('MemoryBus deliveries', () => {
  const topic = { name: 'deliveries' } as Topic<TestValue>;
  const msgs = (...ns: number[]) => ns.map((seq) => ({ key: 'k', value: { k: 'k', seq } }));
  const numbers = (batch: { value: TestValue }[]) => batch.map((m) => m.value.seq);

  it('hands a busy consumer what queued meanwhile in one delivery, whole published batches up to maxBatch, in order', async () => {
    const bus = new MemoryBus({ maxBatch: 4 });
    const deliveries: number[][] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    bus.subscribe(topic, 'g', async (batch) => {
      deliveries.push(numbers(batch));
      if (deliveries.length === 1) await held;
    });
    await bus.publish(topic, msgs(1));
    await bus.publish(topic, msgs(2, 3));
    await bus.publish(topic, msgs(4));
    await bus.publish(topic, msgs(5, 6));
    await bus.publish(topic, msgs(7));
    release();
    await bus.drained();
    // [2,3]+[4] fit in 4; [5,6] would make 5, so it starts the next delivery.
    expect(deliveries).toEqual([[1], [2, 3, 4], [5, 6, 7]]);
    expect(bus.lag()[0]!.queued).toBe(0);
  });

  it('with lingerMs, delivers at once when idle and gathers a busy stream into one delivery per lingerMs', async () => {
    vi.useFakeTimers({ now: 0 });
    try {
      const bus = new MemoryBus({ lingerMs: 50 });
      const deliveries: [number, number[]][] = [];
      bus.subscribe(topic, 'g', async (batch) => {
        deliveries.push([Date.now(), numbers(batch)]);
      });
      await bus.publish(topic, msgs(1));
      await vi.advanceTimersByTimeAsync(0);
      expect(deliveries).toEqual([[0, [1]]]);
      await vi.advanceTimersByTimeAsync(10);
      await bus.publish(topic, msgs(2));
      await vi.advanceTimersByTimeAsync(10);
      await bus.publish(topic, msgs(3, 4));
      await vi.advanceTimersByTimeAsync(29);
      expect(deliveries).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(deliveries).toEqual([
        [0, [1]],
        [50, [2, 3, 4]],
      ]);
      // Quiet for longer than lingerMs: the next message goes at once again.
      await vi.advanceTimersByTimeAsync(200);
      await bus.publish(topic, msgs(5));
      await vi.advanceTimersByTimeAsync(0);
      expect(deliveries.at(-1)).toEqual([250, [5]]);
      await bus.close();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe.skipIf(brokers.length === 0)('KafkaBus (needs KAFKA_BROKERS; scripts/with-services.sh sets it)', () => {
  busContract('KafkaBus', async (prefix) => {
    // Small chunks, so that close stops between chunks of one fetched batch and the rest goes to the next consumer.
    const bus = kafkaBus(prefix, { maxBatchMessages: 8 });
    await bus.start();
    return bus;
  });

  const client = new Kafka({ clientId: 'kubevigil-test-raw', brokers: brokers.length ? brokers : ['127.0.0.1:9'], logLevel: logLevel.NOTHING });
  let admin: Admin;
  const open: KafkaBus[] = [];
  const cleanups: (() => Promise<void>)[] = [];

  // kafkajs 2.2.4 passes negative timer delays that Node 23+ warns about (kafkajs-timers.ts fixes it).
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  beforeAll(async () => {
    process.on('warning', onWarning);
    admin = client.admin();
    await admin.connect();
  });
  afterAll(async () => {
    await admin.disconnect();
    process.off('warning', onWarning);
    expect(warnings.filter((w) => w.startsWith('TimeoutNegativeWarning'))).toEqual([]);
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((b) => b.close()));
    for (const c of cleanups.splice(0)) await c();
  });

  /** Reads `count` raw messages of a topic from the beginning with a plain kafkajs consumer. */
  async function readRaw(topic: string, count: number): Promise<KafkaMessage[]> {
    const consumer = client.consumer({ groupId: `${topic}.raw-reader`, maxWaitTimeInMs: 200 });
    cleanups.push(() => consumer.disconnect());
    const got: KafkaMessage[] = [];
    let done!: () => void;
    const enough = new Promise<void>((r) => (done = r));
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        got.push(message);
        if (got.length >= count) done();
      },
    });
    await Promise.race([
      enough,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`read ${got.length} of ${count} messages of ${topic}`)), 20_000)),
    ]);
    return got;
  }

  const header = (h: IHeaders | undefined, name: string) => h?.[name]?.toString();

  /** A bus on the topics of `prefix`, started, and closed after the test. */
  async function startedBus(prefix: string, extra: Partial<KafkaBusOptions> = {}): Promise<KafkaBus> {
    const bus = kafkaBus(prefix, extra);
    open.push(bus);
    await bus.start();
    return bus;
  }

  it('start() creates the topics: partitions as configured, incidents compacted', async () => {
    const prefix = testPrefix('topics');
    const bus = await startedBus(prefix);
    await bus.start(); // starting again changes nothing
    expect(bus.isConnected()).toBe(true);
    expect(await bus.checkReady()).toBe(true);

    const names = [bus.topics.signals.name, bus.topics.incidents.name, bus.topics.deadLetter.name];
    const meta = await admin.fetchTopicMetadata({ topics: names });
    expect(Object.fromEntries(meta.topics.map((t) => [t.name, t.partitions.length]))).toEqual(Object.fromEntries(names.map((n) => [n, 4])));
    const configs = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [bus.topics.incidents.name, bus.topics.signals.name].map((name) => ({
        type: 2 /* TOPIC */,
        name,
        configNames: ['cleanup.policy', 'retention.ms', 'max.message.bytes'],
      })),
    });
    const config = (topic: string, name: string) =>
      configs.resources.find((r) => r.resourceName === topic)?.configEntries.find((e) => e.configName === name)?.configValue;
    expect(config(bus.topics.incidents.name, 'cleanup.policy')).toBe('compact');
    expect(config(bus.topics.signals.name, 'cleanup.policy')).toBe('delete');
    // Checkpoints refer to signals by offset: the topic keeps them a week whatever the broker default.
    expect(config(bus.topics.signals.name, 'retention.ms')).toBe(String(SIGNALS_RETENTION_MS));
    // The message limits are ours, not the broker's default (issue #19).
    expect(config(bus.topics.signals.name, 'max.message.bytes')).toBe(String(BUS_MAX_MESSAGE_BYTES));
    expect(config(bus.topics.incidents.name, 'max.message.bytes')).toBe(String(INCIDENTS_MAX_MESSAGE_BYTES));
  });

  it('publishes a batch far larger than the message limit into one partition: split into requests, nothing refused', async () => {
    const prefix = testPrefix('big-batch');
    const bus = await startedBus(prefix);
    // 2,000 signals of about 20 KB under one key (one partition): 40 MB in one publish call.
    const many = Array.from({ length: 2000 }, (_, i) => makeSignal(`big-${i}`, T0 + i, { excerpt: { requestURI: `/api?${'q'.repeat(20_000)}` } }));
    expect(many.reduce((n, s) => n + JSON.stringify(s).length, 0)).toBeGreaterThan(20 * BUS_MAX_MESSAGE_BYTES);
    await bus.publish(
      bus.topics.signals,
      many.map((s) => ({ key: 'one-actor', value: s })),
    );
    const got = new Received<SignalsMessage>();
    bus.subscribe(bus.topics.signals, 'big', got.handler, { parse: parseSignalsMessageWithoutEvidence });
    await got.until((r) => r.messages.length >= many.length, 'all 2000 signals', 60_000);
    expect(new Set(got.messages.map((m) => (m.value as { id: string }).id)).size).toBe(many.length);
  });

  it('moves an undecodable message to the dead-letter topic and keeps the partition flowing', async () => {
    const prefix = testPrefix('dlq');
    const bus = await startedBus(prefix);
    const signals = bus.topics.signals.name;
    const got = new Received<{ n: number }>();
    bus.subscribe(bus.topics.signals as unknown as Topic<{ n: number }>, 'dlq', got.handler);

    const producer = client.producer();
    cleanups.push(() => producer.disconnect());
    await producer.connect();
    const [sent] = await producer.send({
      topic: signals,
      acks: -1,
      messages: [
        { key: 'sa:p/poison', value: Buffer.from([0x7b, 0xff, 0x00, 0x6e]), headers: { 'x-origin': 'test' } },
        { key: 'sa:p/poison', value: '42' },
        { key: 'sa:p/poison', value: '{"n":1}', headers: { 'content-type': 'application/json' } },
      ],
    });
    await got.count(1);
    expect(got.messages).toEqual([{ key: 'sa:p/poison', value: { n: 1 }, partition: expect.any(Number), offset: '2' }]);

    const dead = await readRaw(bus.topics.deadLetter.name, 2);
    const base = BigInt(sent!.baseOffset!);
    expect(dead.map((m) => m.key?.toString())).toEqual(['sa:p/poison', 'sa:p/poison']);
    expect(dead[0]!.value).toEqual(Buffer.from([0x7b, 0xff, 0x00, 0x6e]));
    expect(header(dead[0]!.headers, DLQ_HEADERS.reason)).toMatch(/not JSON/);
    expect(header(dead[0]!.headers, 'x-origin')).toBe('test');
    expect(header(dead[1]!.headers, DLQ_HEADERS.reason)).toMatch(/JSON number, not an object/);
    for (const [i, m] of dead.entries()) {
      expect(header(m.headers, DLQ_HEADERS.topic)).toBe(signals);
      expect(header(m.headers, DLQ_HEADERS.partition)).toBe(String(sent!.partition));
      expect(header(m.headers, DLQ_HEADERS.offset)).toBe(String(base + BigInt(i)));
    }
    // The dead letters are readable before the bus has their acknowledgement and counts them; the
    // partition is handled in order, so once a later message is handled, that batch is done.
    await producer.send({ topic: signals, acks: -1, messages: [{ key: 'sa:p/poison', value: '{"n":2}', headers: { 'content-type': 'application/json' } }] });
    await got.count(2);
    expect(bus.stats.deadLettered).toBe(2);
  });

  it('carries W3C trace context and the content type in headers, and handles in the producer trace', async () => {
    const als = new AsyncLocalStorage<Context>();
    const manager: ContextManager = {
      active: () => als.getStore() ?? ROOT_CONTEXT,
      with: (ctx, fn, thisArg, ...args) => als.run(ctx, () => fn.call(thisArg, ...args)),
      bind: (_ctx, target) => target,
      enable() {
        return this;
      },
      disable() {
        return this;
      },
    };
    expect(context.setGlobalContextManager(manager)).toBe(true);
    expect(propagation.setGlobalPropagator(new TraceparentPropagator())).toBe(true);
    cleanups.push(async () => {
      context.disable();
      propagation.disable();
    });

    const prefix = testPrefix('trace');
    const bus = await startedBus(prefix);
    const topic = bus.topics.signals as unknown as Topic<TestValue>;
    const seen: (string | undefined)[] = [];
    const got = new Received<TestValue>();
    bus.subscribe(topic, 'trace', async (batch) => {
      seen.push(trace.getSpanContext(context.active())?.traceId);
      got.record(batch);
    });
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const parent = trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId: 'b7ad6b7169203331', traceFlags: TraceFlags.SAMPLED, isRemote: true });
    await context.with(parent, () => bus.publish(topic, [{ key: 'sa:t/trace', value: { k: 'sa:t/trace', seq: 0 } }]));
    await got.count(1);
    expect(seen).toEqual([traceId]);

    const [raw] = await readRaw(topic.name, 1);
    expect(header(raw!.headers, 'content-type')).toBe('application/json');
    expect(header(raw!.headers, 'traceparent')).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
  });

  it('checkpointed: commits nothing whose flush never succeeded, so the next consumer gets it all again', async () => {
    const prefix = testPrefix('unflushed');
    const first = await startedBus(prefix, { maxBatchMessages: 4, closeTimeoutMs: 3000 });
    const topic = first.topics.signals as unknown as Topic<TestValue>;
    const got = new Received<TestValue>();
    let flushes = 0;
    first.subscribe(topic, 'unflushed', got.handler, {
      checkpointing: {
        flush: async () => {
          flushes++;
          got.poke();
          throw new Error('state store down (test)');
        },
      },
    });
    const sent = Array.from({ length: 10 }, (_, seq) => ({ key: 'sa:u/one', value: { k: 'sa:u/one', seq } }));
    await first.publish(topic, sent);
    await got.until(() => got.messages.length === sent.length && flushes >= 2, 'every message handled and flushes failing');
    await first.close();

    const second = await startedBus(prefix);
    const again = new Received<TestValue>();
    second.subscribe(topic, 'unflushed', again.handler, { checkpointing: { flush: async () => {} } });
    await again.count(sent.length);
    expect(again.messages.map((m) => m.value.seq)).toEqual(sent.map((m) => m.value.seq));
  });

  it('writes a signal with its evidence last, so that a subscriber that does not keep it parses only the rest', async () => {
    const prefix = testPrefix('lean');
    const bus = await startedBus(prefix);
    const signal = makeSignal('lean-1', T0, { excerpt: { verb: 'get', note: ',"matched":[]}' } });
    await bus.publish(bus.topics.signals, [{ key: signal.actor.key, value: signal }]);
    const [raw] = await readRaw(bus.topics.signals.name, 1);
    const json = raw!.value!.toString();
    const at = Number(header(raw!.headers, EVIDENCE_AT_HEADER));
    expect(JSON.parse(json)).toEqual(signal);
    expect(json.slice(at)).toMatch(/^,"matched":.*,"excerpt":/);

    const lean = new Received<SignalsMessage>();
    const full = new Received<SignalsMessage>();
    bus.subscribe(bus.topics.signals, 'lean', lean.handler, { parse: parseSignalsMessageWithoutEvidence });
    bus.subscribe(bus.topics.signals, 'full', full.handler);
    await Promise.all([lean.count(1), full.count(1)]);
    expect(full.messages[0]!.value).toEqual(signal);
    expect(lean.messages[0]!.value).toEqual(withoutEvidence(signal));
  });

  it('reads messages of one partition back by offset, leaving no consumer group behind', async () => {
    const prefix = testPrefix('read');
    const bus = await startedBus(prefix);
    const topic = bus.topics.signals as unknown as Topic<TestValue>;
    await bus.publish(
      topic,
      Array.from({ length: 40 }, (_, seq) => ({ key: 'sa:r/one', value: { k: 'sa:r/one', seq } })),
    );
    // Other partitions have messages too: the read must not mix them in.
    await bus.publish(
      topic,
      Array.from({ length: 40 }, (_, seq) => ({ key: `sa:r/other-${seq}`, value: { k: `sa:r/other-${seq}`, seq: 1000 + seq } })),
    );
    const offsets = await admin.fetchTopicOffsets(topic.name);
    // The partition of 'sa:r/one' is the one whose first 40 messages are those: find it by reading it back.
    let found: Map<string, TestValue> | undefined;
    let partition = -1;
    for (const o of offsets) {
      const got = await bus.read(topic, o.partition, ['0']);
      if (got.get('0')?.k === 'sa:r/one') {
        partition = o.partition;
        found = await bus.read(topic, o.partition, ['17', '3', '39', '100000']);
      }
    }
    expect(partition).toBeGreaterThanOrEqual(0);
    expect([...found!].sort(([a], [b]) => Number(a) - Number(b))).toEqual([
      ['3', { k: 'sa:r/one', seq: 3 }],
      ['17', { k: 'sa:r/one', seq: 17 }],
      ['39', { k: 'sa:r/one', seq: 39 }],
    ]);
    // Offsets past the end: nothing to read.
    expect((await bus.read(topic, partition, ['100000', '100001'])).size).toBe(0);
    // While the partition keeps growing (a takeover in a live cluster), the read still returns the range asked for.
    let writing = true;
    const writer = (async () => {
      for (let seq = 100; writing; seq++) await bus.publish(topic, [{ key: 'sa:r/one', value: { k: 'sa:r/one', seq } }]);
    })();
    for (let round = 0; round < 3; round++)
      expect([...(await bus.read(topic, partition, ['5', '38'])).values()].map((v) => v.seq).sort((a, b) => a - b)).toEqual([5, 38]);
    writing = false;
    await writer;
    const left = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(`${prefix}.read-`));
    expect(left).toEqual([]);
  });

  it('deletes an ephemeral consumer group when its subscription stops, and keeps the others', async () => {
    const prefix = testPrefix('ephemeral');
    const bus = await startedBus(prefix);
    const topic = bus.topics.signals as unknown as Topic<TestValue>;
    const mine = new Received<TestValue>();
    const shared = new Received<TestValue>();
    const stop = bus.subscribe(topic, 'replica-1', mine.handler, { ephemeral: true });
    bus.subscribe(topic, 'shared', shared.handler);
    await bus.publish(topic, [{ key: 'sa:e/one', value: { k: 'sa:e/one', seq: 0 } }]);
    await Promise.all([mine.count(1), shared.count(1)]);
    const groupIds = async () => (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(prefix));
    expect((await groupIds()).sort()).toEqual([`${prefix}.replica-1`, `${prefix}.shared`]);
    await stop();
    expect(await groupIds()).toEqual([`${prefix}.shared`]);
  });

  it('fails a publish fast with a retryable BUS_UNAVAILABLE when no broker answers', async () => {
    const port = await closedPort();
    const bus = createKafkaBus({ brokers: [`127.0.0.1:${port}`], clientId: 'kubevigil-test', topicPrefix: testPrefix('down'), publishTimeoutMs: 2000 });
    open.push(bus);
    const err = await bus.publish(topics('x').signals as unknown as Topic<TestValue>, [{ key: 'k', value: { k: 'k', seq: 0 } }]).then(
      () => undefined,
      (e: unknown) => e,
    );

    expect(err).toBeInstanceOf(KubevigilError);
    expect(err).toMatchObject({ code: 'BUS_UNAVAILABLE', retryable: true });
    expect((err as KubevigilError).retryAfterSeconds).toBeGreaterThan(0);
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
    // Failed by its own deadline, not by kafkajs retrying for as long as it likes.
    expect((err as Error).message).toContain('within 2000 ms');
    expect(bus.isConnected()).toBe(false);
    expect(await bus.checkReady(1000)).toBe(false);
    await expect(bus.start()).rejects.toMatchObject({ code: 'BUS_UNAVAILABLE', retryable: true });
  });
});

/** A port nothing listens on: bound once to get a free number, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The W3C `traceparent` header, enough of it for the test (the SDK's propagator is not a dependency). */
class TraceparentPropagator implements TextMapPropagator {
  inject(ctx: Context, carrier: unknown, setter: TextMapSetter): void {
    const sc = trace.getSpanContext(ctx);
    if (sc && trace.isSpanContextValid(sc)) setter.set(carrier, 'traceparent', `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & 1}`);
  }
  extract(ctx: Context, carrier: unknown, getter: TextMapGetter): Context {
    const raw = getter.get(carrier, 'traceparent');
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(Array.isArray(raw) ? (raw[0] ?? '') : (raw ?? ''));
    if (!m) return ctx;
    return trace.setSpanContext(ctx, { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16), isRemote: true });
  }
  fields(): string[] {
    return ['traceparent'];
  }
}
