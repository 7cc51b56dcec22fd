/**
 * Case "drain-work": the Kafka drain case's work on each message, without Kafka and its broker, so
 * that it can be measured steadily and profiled alone. The drain case compares a correlator
 * draining a signals topic with a plain kafkajs consumer that parses each message; both also fetch
 * and decode Kafka's record batches, which this case leaves out. Per shape (one noisy attacker, 200
 * compromised workloads: BENCH_KAFKA_ATTACKERS, as the drain case), in alternating rounds:
 *
 * - the baseline: `JSON.parse` of each message's bytes (what the raw consumer does with a message);
 * - decoding as the correlator's subscription does (the bus codec, the signal without its evidence);
 * - decoding and correlating into one partition's state (`PartitionedCorrelator.apply`), signals
 *   referred to by offset as with a Kafka source, then the final checkpoint (into memory).
 *
 * Reported in µs a message and as ratios to the baseline. Were both sides of the drain case busy
 * all the time on one core, its ratio would be (fetch + parse) / (fetch + this work), with kafkajs'
 * fetching ≈ 4 µs a message; the raw consumer also waits for the broker between its fetches (it
 * asks for the next one only once it handled the last), which the drain hides by handling a batch
 * while the next is fetched, so the drain case's ratio runs above that (0.85–0.93 for one attacker
 * and 0.59–0.64 for 200 workloads when this case gave 0.74 and 0.60; 1.11–1.34 and a median of
 * 0.76 when it gave 1.09 and 0.76).
 */
import type { KafkaMessage } from 'kafkajs';
import type { BusMessage } from '../services/bus/bus.js';
import { decode } from '../services/bus/kafka/codec.js';
import { parseSignalsMessageWithoutEvidence, type SignalsMessage } from '../services/bus/topics.js';
import { PartitionedCorrelator } from '../services/correlate-partitioned.js';
import { createLogger } from '../services/logging.js';
import { loadRules } from '../services/rules.js';
import { MemoryCorrelatorState } from '../services/store/correlator-state.js';
import { drainSignalMessages, median } from './shared.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const EVENTS = Number(process.env.BENCH_KAFKA_EVENTS ?? 100_000);
const PARTITION = 0;

/** Seconds `fn` takes (it may be async). */
async function seconds(fn: () => unknown): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** The drain case's signal messages as kafkajs hands them to the bus: bytes, headers, offsets. */
function messagesOf(attackers: number): KafkaMessage[] {
  return drainSignalMessages(EVENTS, attackers).map(
    (m, i) =>
      ({
        key: Buffer.from(m.key),
        value: Buffer.from(m.value),
        headers: Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k, Buffer.from(v)])),
        offset: String(i),
        timestamp: '0',
        attributes: 0,
      }) as KafkaMessage,
  );
}

/** Decodes a chunk as the correlator's subscription does. */
function decoded(chunk: readonly KafkaMessage[]): BusMessage<SignalsMessage>[] {
  const out: BusMessage<SignalsMessage>[] = [];
  for (const m of chunk) {
    const d = decode(m, parseSignalsMessageWithoutEvidence);
    if (d.kind === 'ok') out.push({ key: m.key!.toString('utf8'), value: d.value as SignalsMessage, partition: PARTITION, offset: m.offset });
  }
  return out;
}

export async function drainWorkCase(): Promise<void> {
  const { correlations } = loadRules();
  const shapes = (process.env.BENCH_KAFKA_ATTACKERS ?? '1,200').split(',').map(Number);
  for (const attackers of shapes) {
    const messages = messagesOf(attackers);
    const chunks: KafkaMessage[][] = [];
    // Chunks of the bus's default size (KUBEVIGIL_KAFKA_MAX_BATCH_MESSAGES).
    for (let i = 0; i < messages.length; i += 500) chunks.push(messages.slice(i, i + 500));
    const parse = () => {
      for (const c of chunks) for (const m of c) JSON.parse(m.value!.toString('utf8'));
    };
    const decodeOnly = () => {
      for (const c of chunks) decoded(c);
    };
    let flushSeconds = 0;
    const correlate = async () => {
      const correlator = new PartitionedCorrelator({
        correlations,
        state: new MemoryCorrelatorState(),
        publish: async () => {},
        clock: { now: () => Date.now() },
        logger: createLogger('silent'),
        // Window signals referred to by offset in checkpoints, as with the signals topic behind them.
        source: { read: async () => new Map() },
      });
      for (const c of chunks) await correlator.apply(decoded(c));
      flushSeconds += await seconds(() => correlator.flush(PARTITION));
    };
    // Warm-up, then alternating rounds so that noise hits every side alike.
    parse();
    decodeOnly();
    await correlate();
    const base: number[] = [];
    const dec: number[] = [];
    const all: number[] = [];
    flushSeconds = 0;
    for (let r = 0; r < ROUNDS; r++) {
      base.push(await seconds(parse));
      dec.push(await seconds(decodeOnly));
      all.push(await seconds(correlate));
    }
    const us = (s: number) => (1e6 * s) / messages.length;
    const [b, d, a] = [us(median(base)), us(median(dec)), us(median(all))];
    const shape = attackers === 1 ? 'one noisy attacker' : `${attackers} compromised workloads`;
    console.log(`drain work without Kafka, ${shape}: ${messages.length} signal messages, median of ${ROUNDS} alternating rounds`);
    console.log(`  JSON.parse of each message (the raw consumer)   ${b.toFixed(2).padStart(6)} µs a message`);
    console.log(`  decode as the correlator's subscription         ${d.toFixed(2).padStart(6)} µs   ratio ${(b / d).toFixed(2)}`);
    console.log(
      `  decode + correlate + final checkpoint           ${a.toFixed(2).padStart(6)} µs   ratio ${(b / a).toFixed(2)}   (correlate ≈ ${(a - d).toFixed(2)} µs, of which the checkpoint ≈ ${us(flushSeconds / ROUNDS).toFixed(2)})`,
    );
  }
}
