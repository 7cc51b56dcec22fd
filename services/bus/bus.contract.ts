/**
 * The behaviour every {@link Bus} promises, as one suite run against each implementation (memory,
 * Kafka): per-key order, batches, redelivery after a handler rejection, a close that finishes the
 * batch in flight and loses nothing, and independent consumer groups.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RewindError, type Bus, type BusMessage } from './bus.js';
import { topics, type Topic } from './topics.js';

/** Values the contract sends: which key, which position in that key's sequence. */
export interface TestValue {
  k: string;
  seq: number;
}

/**
 * Makes a started bus whose topics use `prefix`. Two buses made with the same prefix share their
 * messages and consumer groups where the implementation has shared state (Kafka), like two processes.
 */
export type MakeBus = (prefix: string) => Promise<Bus>;

/** Collects what a handler received and lets a test await a condition on it (no sleeps). */
export class Received<T> {
  readonly batches: BusMessage<T>[][] = [];
  private waiters: { check: () => boolean; resolve: () => void }[] = [];

  /** The handler to subscribe: records the batch, then wakes the waiters whose condition now holds. */
  readonly handler = async (batch: BusMessage<T>[]): Promise<void> => {
    this.record(batch);
  };

  get messages(): BusMessage<T>[] {
    return this.batches.flat();
  }

  record(batch: BusMessage<T>[]): void {
    this.batches.push(batch);
    this.poke();
  }

  /** Re-checks the waiters' conditions, for conditions on more than the messages (e.g. flushes). */
  poke(): void {
    this.waiters = this.waiters.filter((w) => {
      if (!w.check()) return true;
      w.resolve();
      return false;
    });
  }

  /** Resolves once `check` holds; rejects after `timeoutMs` saying what was received. */
  until(check: (r: Received<T>) => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    if (check(this)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(
          new Error(`timed out after ${timeoutMs} ms waiting for ${what}; received ${this.messages.length} message(s) in ${this.batches.length} batch(es)`),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push({ check: () => check(this), resolve: done });
    });
  }

  /** Resolves once at least `n` messages arrived. */
  count(n: number, timeoutMs?: number): Promise<void> {
    return this.until((r) => r.messages.length >= n, `${n} message(s)`, timeoutMs);
  }
}

/** A unique prefix per test, so tests never see each other's messages or groups. */
export function testPrefix(name: string): string {
  return `kvtest-${name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

function messagesFor(keys: string[], perKey: number, from = 0): BusMessage<TestValue>[] {
  const out: BusMessage<TestValue>[] = [];
  for (let seq = from; seq < from + perKey; seq++) for (const k of keys) out.push({ key: k, value: { k, seq } });
  return out;
}

function ids(messages: BusMessage<TestValue>[]): string[] {
  return messages.map((m) => `${m.value.k}#${m.value.seq}`).sort();
}

/** Runs the bus contract against the implementation `make` builds. */
export function busContract(name: string, make: MakeBus): void {
  describe(`${name} (bus contract)`, () => {
    const open: Bus[] = [];
    const bus = async (prefix: string): Promise<Bus> => {
      const b = await make(prefix);
      open.push(b);
      return b;
    };
    const topicOf = (prefix: string) => topics(prefix).signals as unknown as Topic<TestValue>;

    afterEach(async () => {
      await Promise.all(open.splice(0).map((b) => b.close()));
    });

    it('keeps the messages of each key in publish order', async () => {
      const prefix = testPrefix('order');
      const b = await bus(prefix);
      const topic = topicOf(prefix);
      const got = new Received<TestValue>();
      b.subscribe(topic, 'order', got.handler);
      const keys = ['sa:a/one', 'sa:b/two', 'user:carol', 'node:n1', 'sa:c/three'];
      for (let round = 0; round < 4; round++) await b.publish(topic, messagesFor(keys, 5, round * 5));
      await got.count(keys.length * 20);

      expect(got.messages).toHaveLength(keys.length * 20);
      for (const k of keys) {
        const seqs = got.messages.filter((m) => m.key === k).map((m) => m.value.seq);
        expect(seqs, `order of ${k}`).toEqual([...Array(20).keys()]);
      }
    });

    it('delivers messages in batches, keys and values intact', async () => {
      const prefix = testPrefix('batch');
      const b = await bus(prefix);
      const topic = topicOf(prefix);
      const got = new Received<TestValue>();
      b.subscribe(topic, 'batch', got.handler);
      const sent = messagesFor(['sa:x/batch', 'sa:y/batch'], 25);
      await b.publish(topic, sent);
      await got.count(sent.length);

      expect(ids(got.messages)).toEqual(ids(sent));
      expect(Math.max(...got.batches.map((x) => x.length))).toBeGreaterThan(1);
      for (const m of got.messages) expect(m.value.k).toBe(m.key);
    });

    it('offers the same messages again after the handler rejects', async () => {
      const prefix = testPrefix('redeliver');
      const b = await bus(prefix);
      const topic = topicOf(prefix);
      const attempts: BusMessage<TestValue>[][] = [];
      const handled = new Received<TestValue>();
      b.subscribe(topic, 'redeliver', async (batch) => {
        attempts.push(structuredClone(batch));
        if (attempts.length === 1) throw new Error('store unavailable (test)');
        handled.record(batch);
      });
      const sent = messagesFor(['sa:r/one'], 10);
      await b.publish(topic, sent);
      await handled.count(sent.length);

      expect(attempts.length).toBeGreaterThanOrEqual(2);
      expect(attempts[1]).toEqual(attempts[0]);
      expect(ids(handled.messages)).toEqual(ids(sent));
    });

    it('close finishes the batch in flight, and nothing is lost or handled twice', async () => {
      const prefix = testPrefix('drain');
      const first = await bus(prefix);
      const topic = topicOf(prefix);
      const before = new Received<TestValue>();
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let inFlightDone = false;
      first.subscribe(topic, 'drain', async (batch) => {
        before.record(batch);
        await gate;
        inFlightDone = true;
      });
      // One key: one partition, so the sentinel below arrives after anything offered again.
      await first.publish(topic, messagesFor(['sa:d/drain'], 10));
      await first.publish(topic, messagesFor(['sa:d/drain'], 10, 10));
      await before.count(1);

      const closing = first.close();
      release();
      await closing;
      expect(inFlightDone).toBe(true);

      const second = await bus(prefix);
      const after = new Received<TestValue>();
      second.subscribe(topic, 'drain', after.handler);
      await second.publish(topic, [{ key: 'sa:d/drain', value: { k: 'sa:d/drain', seq: -1 } }]);
      await after.until((r) => r.messages.some((m) => m.value.seq === -1), 'the sentinel');

      const handled = [...before.messages, ...after.messages.filter((m) => m.value.seq !== -1)];
      expect(ids(handled)).toEqual(ids(messagesFor(['sa:d/drain'], 20)));
    });

    it('checkpointed: flushes what it handled before committing, so a restart gets nothing again', async () => {
      const prefix = testPrefix('flush');
      const first = await bus(prefix);
      const topic = topicOf(prefix);
      const got = new Received<TestValue>();
      const flushedAt: number[] = [];
      first.subscribe(topic, 'flush', got.handler, {
        checkpointing: {
          flush: async () => {
            flushedAt.push(got.messages.length);
            got.poke();
          },
        },
      });
      const sent = messagesFor(['sa:f/one'], 30);
      await first.publish(topic, sent);
      await got.count(sent.length);
      await got.until(() => flushedAt.includes(sent.length), 'a flush after the last message');
      expect(ids(got.messages)).toEqual(ids(sent));
      await first.close();

      const second = await bus(prefix);
      const after = new Received<TestValue>();
      second.subscribe(topic, 'flush', after.handler, { checkpointing: { flush: async () => {} } });
      await second.publish(topic, [{ key: 'sa:f/one', value: { k: 'sa:f/one', seq: -1 } }]);
      await after.until((r) => r.messages.some((m) => m.value.seq === -1), 'the sentinel');
      expect(after.messages.map((m) => m.value.seq)).toEqual([-1]);
    });

    it('checkpointed: retries a failing flush without offering the messages again', async () => {
      const prefix = testPrefix('flush-retry');
      const b = await bus(prefix);
      const topic = topicOf(prefix);
      const got = new Received<TestValue>();
      let failures = 0;
      let flushed = 0;
      b.subscribe(topic, 'flush-retry', got.handler, {
        checkpointing: {
          flush: async () => {
            if (failures < 2) {
              failures++;
              throw new Error('state store unavailable (test)');
            }
            flushed = got.messages.length;
            got.poke();
          },
        },
      });
      const sent = messagesFor(['sa:f/two'], 12);
      await b.publish(topic, sent);
      await got.until(() => flushed === sent.length, 'a successful flush of every message');
      expect(failures).toBe(2);
      expect(ids(got.messages)).toEqual(ids(sent));
    });

    it('checkpointed: a rewind offers everything since the last flush again', async () => {
      const prefix = testPrefix('rewind');
      const b = await bus(prefix);
      const topic = topicOf(prefix);
      const got = new Received<TestValue>();
      let rewound = false;
      let flushed = false;
      b.subscribe(topic, 'rewind', got.handler, {
        checkpointing: {
          flush: async () => {
            if (!rewound) {
              rewound = true;
              throw new RewindError('state moved on (test)');
            }
            flushed = true;
            got.poke();
          },
        },
      });
      const sent = messagesFor(['sa:f/three'], 10);
      await b.publish(topic, sent);
      await got.until(() => flushed, 'a flush after the rewind');
      // Every message was handled before the rewind and once more after it.
      const seqs = got.messages.map((m) => m.value.seq);
      for (let seq = 0; seq < 10; seq++) expect(seqs.filter((x) => x === seq).length, `deliveries of #${seq}`).toBeGreaterThanOrEqual(2);
      const last = got.messages.slice(-10).map((m) => m.value.seq);
      expect(last).toEqual([...Array(10).keys()]);
    });

    it('gives every consumer group all the messages', async () => {
      const prefix = testPrefix('groups');
      const b = await bus(prefix);
      const topic = topicOf(prefix);
      const one = new Received<TestValue>();
      const two = new Received<TestValue>();
      b.subscribe(topic, 'group-one', one.handler);
      b.subscribe(topic, 'group-two', two.handler);
      const sent = messagesFor(['sa:g/a', 'sa:g/b', 'sa:g/c', 'sa:g/d'], 5);
      await b.publish(topic, sent);
      await Promise.all([one.count(sent.length), two.count(sent.length)]);

      expect(ids(one.messages)).toEqual(ids(sent));
      expect(ids(two.messages)).toEqual(ids(sent));
    });
  });
}
