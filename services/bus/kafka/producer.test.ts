import type { Kafka, Producer } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { BusErrors } from './errors.js';
import { BusProducer } from './producer.js';
import { BusState } from './state.js';

/** A kafkajs client whose producers count their connects and sends; the first `failConnects` connects fail. */
function fakeKafka(failConnects = 0) {
  const calls = { producers: 0, connects: 0, sends: 0 };
  let failures = failConnects;
  const kafka = {
    producer: () => {
      calls.producers++;
      return {
        connect: async () => {
          calls.connects++;
          if (failures-- > 0) throw new Error('connect refused (test)');
        },
        send: async () => {
          calls.sends++;
          return [];
        },
        disconnect: async () => {},
      } as unknown as Producer;
    },
  } as unknown as Kafka;
  return { kafka, calls };
}

function producerOf(kafka: Kafka, state = new BusState()) {
  const stats = { published: 0, publishFailed: 0, handled: 0, batchFailures: 0, deadLettered: 0, commitFailures: 0 };
  return new BusProducer({ kafka, state, stats, errors: new BusErrors(['broker:9092'], 1), publishTimeoutMs: 1000 });
}

describe('BusProducer.warm', () => {
  it('connects ahead of the first send, which then uses that connection', async () => {
    const { kafka, calls } = fakeKafka();
    const p = producerOf(kafka);
    p.warm();
    p.warm(); // once only
    expect([calls.producers, calls.connects]).toEqual([1, 1]);
    await p.send('t', [{ value: 'x' }]);
    expect([calls.producers, calls.connects, calls.sends]).toEqual([1, 1, 1]);
  });

  it('forgets a connect that failed: the next send connects again', async () => {
    const { kafka, calls } = fakeKafka(1);
    const p = producerOf(kafka);
    p.warm();
    await new Promise((r) => setImmediate(r));
    await p.send('t', [{ value: 'x' }]);
    expect([calls.producers, calls.connects, calls.sends]).toEqual([2, 2, 1]);
  });

  it('does nothing on a closed bus', () => {
    const { kafka, calls } = fakeKafka();
    const state = new BusState();
    state.closed = true;
    producerOf(kafka, state).warm();
    expect(calls.producers).toBe(0);
  });
});
