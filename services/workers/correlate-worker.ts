/**
 * A correlation worker thread (KUBEVIGIL_CORRELATOR_WORKERS): a {@link PartitionedCorrelator} over
 * the signals partitions the main thread routes here. It parses the messages it is given (their
 * bytes, transferred), correlates them, checkpoints in Redis with a connection of its own, reads
 * window signals and lost checkpoints back from Kafka with a client of its own, and asks the main
 * thread to publish the incidents each checkpoint changed (the main thread's producer). Its metrics
 * are a registry the main thread merges into every scrape. See services/correlate-threads.ts.
 */
import { hostname } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { IdentityBaseline } from '../../correlator/baseline.js';
import { systemClock } from '../../correlator/ports.js';
import { incidentJson, type Incident } from '../../correlator/incident.js';
import type { Silence } from '../../correlator/silences.js';
import { writtenJson, type BusMessage } from '../bus/bus.js';
import { notAnObject, notJson } from '../bus/kafka/codec.js';
import { standaloneReadBack } from '../bus/kafka/read-back.js';
import { readSignal } from '../bus/signal-reader.js';
import { consumerGroupId, parseSignalsMessageWithoutEvidence, topics, type SignalsMessage } from '../bus/topics.js';
import type { Config } from '../config.js';
import { PartitionedCorrelator } from '../correlate-partitioned.js';
import { createLogger } from '../logging.js';
import { Metrics } from '../metrics.js';
import { kafkaHistory, loadBaseline, partitionBudget, redisBaselineStore, reportMetrics, saveBaseline } from '../roles/correlator.js';
import { loadRules } from '../rules.js';
import { Silences } from '../silences.js';
import { connectRedis, RedisCorrelatorState } from '../store/correlator-state.js';
import { MemorySilences } from '../store/memory.js';
import { UsageProfiler, type UsageCount } from '../usage.js';
import { describeError, reviveError, type CorrelateAnswer, type CorrelateRequest, type PackedSignals, type Snapshot } from './correlate-protocol.js';

const { config, index, logLevel } = workerData as { config: Config; index: number; logLevel: string };
const port = parentPort!;
const logger = createLogger(logLevel).child({ component: 'correlator', worker: index });
const metrics = new Metrics({ processMetrics: false });
const clock = systemClock;
const t = topics(config.topicPrefix);

/** Incidents a checkpoint changed, published by the main thread: one call per flush. */
let nextCall = 0;
const calls = new Map<number, { resolve(): void; reject(e: Error): void }>();
function publish(incidents: Incident[]): Promise<void> {
  const id = ++nextCall;
  // The JSON the checkpoint saved (written once per checkpoint), else written here (an outbox loaded from Redis).
  const items = incidents.map((i) => ({ id: i.id, json: writtenJson(i) ?? incidentJson(i) }));
  return new Promise<void>((resolve, reject) => {
    calls.set(id, { resolve, reject });
    send({ type: 'publish', call: id, incidents: items });
  });
}

const redis = connectRedis(config.redisUrl!, (err) => logger.debug({ err }, 'redis connection error'));
const { store: baselineStore, close: closeBaselineStore } = await redisBaselineStore(config, logger);
const baseline = new IdentityBaseline();
await loadBaseline(baseline, baselineStore, logger);
metrics.trackDrops('correlation', 'baseline_evicted', () => baseline.evicted);
const usage = new UsageProfiler();
// The silences the main thread holds (from Redis and the file), matched and counted here.
const silences = new Silences(new MemorySilences(), clock, metrics, logger, { pollMs: 0 });
const {
  reader,
  connect: connectReader,
  close: closeReader,
} = standaloneReadBack({
  brokers: config.kafkaBrokers,
  clientId: `kubevigil-${hostname()}-${process.pid}-correlator-${index}`,
  topicPrefix: config.topicPrefix,
  sessionTimeoutMs: config.kafkaSessionTimeoutMs,
  logger,
});
// Connected now: each assignment asks it for the group's commits before the first batches load.
connectReader();
const inventory =
  config.inventory.mode === 'off'
    ? undefined
    : await (async () => {
        const { kubeConfigFor } = await import('../roles/inventory.js');
        const { KubeInventory } = await import('../inventory/inventory.js');
        return new KubeInventory(kubeConfigFor(config.inventory)!, { logger: logger.child({ component: 'inventory' }) });
      })();
const state = new RedisCorrelatorState(redis, config.topicPrefix, () => clock.now());
const correlator = new PartitionedCorrelator({
  correlations: loadRules(config.rulesPaths).correlations,
  state,
  publish,
  clock,
  logger,
  metrics,
  usage,
  ...partitionBudget(config),
  baseline,
  ...(inventory ? { inventory } : {}),
  silencer: silences.silencer,
  source: { read: (partition, offsets) => reader.read(t.signals, partition, offsets, { parse: parseSignalsMessageWithoutEvidence }) },
  history: kafkaHistory(reader, t, consumerGroupId(config.topicPrefix, 'correlator')),
  rebuildWaitMs: Math.max(1000, Math.floor(config.kafkaSessionTimeoutMs / 3)),
});
reportMetrics(correlator, metrics);

function snapshot(): Snapshot {
  return { budget: correlator.budget() };
}

function send(m: CorrelateAnswer): void {
  port.postMessage(m);
}

/**
 * The messages of a packed batch as the bus would have decoded them; those that are not a JSON
 * object are returned by index, for the main thread to park on the dead-letter topic.
 */
function unpack(b: PackedSignals): { batch: BusMessage<SignalsMessage>[]; dead: { index: number; reason: string }[] } {
  const batch: BusMessage<SignalsMessage>[] = [];
  const dead: { index: number; reason: string }[] = [];
  const bytes = Buffer.from(b.bytes.buffer, b.bytes.byteOffset, b.bytes.byteLength);
  let start = 0;
  for (let i = 0; i < b.ends.length; i++) {
    const end = b.ends[i]!;
    let value: unknown;
    try {
      value = readSignal(bytes.subarray(start, end), b.evidenceAt[i]!, b.sharedAt[i]!, b.sharedHash[i]!);
    } catch (e) {
      dead.push({ index: i, reason: notJson(e) });
      start = end;
      continue;
    }
    start = end;
    const problem = notAnObject(value);
    if (problem) {
      dead.push({ index: i, reason: problem });
      continue;
    }
    batch.push({ key: b.keys[i]!, value: value as SignalsMessage, partition: b.partitions[i]!, offset: b.offsets[i]! });
  }
  return { batch, dead };
}

function addUsage(counts: UsageCount[]): void {
  for (const u of counts) usage.record(u, u.count);
}

async function answer(m: Extract<CorrelateRequest, { id: number }>): Promise<void> {
  try {
    let value: unknown;
    switch (m.type) {
      case 'apply': {
        const { batch, dead } = unpack(m.batch);
        await correlator.apply(batch);
        value = dead;
        break;
      }
      case 'flush':
        await correlator.flush(m.partition);
        value = correlator.commitMetadata(m.partition);
        break;
      case 'discard':
        correlator.discard(m.partition);
        break;
      case 'sweep':
        value = await correlator.sweep();
        await saveBaseline(baseline, baselineStore, logger);
        break;
      case 'rules': {
        const next = loadRules(config.rulesPaths);
        // The main thread checked the same files a moment ago; a file changed since keeps the old rules here too.
        value = next.problems.length ? { kept: 0, dropped: 0 } : correlator.replaceCorrelations(next.correlations);
        break;
      }
      case 'metrics':
        value = m.name === undefined ? await metrics.collect() : await metrics.one(m.name);
        break;
      case 'ready':
        value = await state.ready();
        break;
      case 'stop':
        await saveBaseline(baseline, baselineStore, logger);
        await closeReader();
        await inventory?.stop();
        await Promise.allSettled([redis.quit(), closeBaselineStore()]);
        break;
    }
    send({ re: m.id, value, snapshot: snapshot() });
  } catch (e) {
    send({ re: m.id, error: describeError(e), snapshot: snapshot() });
  }
}

port.on('message', (m: CorrelateRequest) => {
  switch (m.type) {
    case 'published': {
      const call = calls.get(m.call);
      calls.delete(m.call);
      if (m.error === undefined) call?.resolve();
      else call?.reject(reviveError(m.error));
      return;
    }
    case 'assigned':
      correlator.assigned(m.partitions);
      return;
    case 'silences':
      silences.setFileSilences(m.silences as Silence[]);
      return;
    case 'usage':
      addUsage(m.usage);
      return;
    default:
      void answer(m);
  }
});
send({ type: 'ready' });
