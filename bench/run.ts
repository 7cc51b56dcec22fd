/**
 * `npm run bench`: throughput figures, each reported as a ratio to a baseline measured in the same
 * run on the same bytes, because these machines are shared and noisy.
 *
 * Case "detection": realistic audit JSON lines → parse + validate + normalize + detect, against plain
 * JSON.parse of the same lines.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { decodeAuditLines } from '../connectors/k8s-audit/parse.js';
import { normalizeAuditEvent } from '../connectors/k8s-audit/normalize.js';
import { syntheticAuditEvents } from '../connectors/k8s-audit/synth.js';
import { loadDetector } from '../services/rules.js';
import { drainSignalMessages, median } from './shared.js';

const N = Number(process.env.BENCH_EVENTS ?? 50_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);

function timeIt(fn: () => number): { seconds: number; result: number } {
  const t0 = process.hrtime.bigint();
  const result = fn();
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, result };
}

function detectionCase(): void {
  const detector = loadDetector();
  const events = syntheticAuditEvents(N, { suspiciousShare: 0.01 });
  const lines = events.map((e) => JSON.stringify(e));
  const bytes = lines.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
  // Batches of 400 lines, as the apiserver webhook batches them.
  const batches: string[] = [];
  for (let i = 0; i < lines.length; i += 400) batches.push(lines.slice(i, i + 400).join('\n'));

  const baseline = () => {
    let n = 0;
    for (const b of batches) for (const l of b.split('\n')) if (JSON.parse(l)) n++;
    return n;
  };
  let signals = 0;
  const ours = () => {
    let n = 0;
    signals = 0;
    for (const b of batches) {
      const batch = decodeAuditLines(b);
      for (const ev of batch.events) {
        signals += detector.detect(normalizeAuditEvent(ev, 0)).length;
        n++;
      }
    }
    return n;
  };
  // Warm up both paths so the JIT has compiled them before measuring.
  baseline();
  ours();
  const base: number[] = [];
  const mine: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    // Interleave rounds so background noise hits both sides alike.
    base.push(timeIt(baseline).seconds);
    mine.push(timeIt(ours).seconds);
  }
  const baseRate = N / median(base);
  const ourRate = N / median(mine);
  console.log(`detection: ${N} audit events, ${(bytes / N).toFixed(0)} B/event on average, ${detector.rules.length} rules, ${signals} signals`);
  console.log(
    `  JSON.parse only           ${Math.round(baseRate).toLocaleString('en-US').padStart(12)} events/s  (${(bytes / median(base) / 1e6).toFixed(1)} MB/s)`,
  );
  console.log(
    `  parse+validate+detect     ${Math.round(ourRate).toLocaleString('en-US').padStart(12)} events/s  (${(bytes / median(mine) / 1e6).toFixed(1)} MB/s)`,
  );
  console.log(`  ratio (ours / JSON.parse) ${(ourRate / baseRate).toFixed(2).padStart(12)}   target ≥ 0.50`);
}

/**
 * Case "correlation": signals from 20k actors through the correlation engine alone and through the
 * incident manager (engine + incidents + root cause), against a baseline that only counts signals
 * per actor in a Map (the least any per-actor stateful step must do). The stream is
 * `correlationSignals` of bench/esper.ts, shared with case "esper" (the same rules in Esper).
 */
async function correlationCase(): Promise<void> {
  const { CorrelationEngine } = await import('../correlator/correlation/engine.js');
  const { IncidentManager } = await import('../correlator/incidents.js');
  const { correlationSignals } = await import('./esper.js');
  const { loadRules } = await import('../services/rules.js');
  const rules = loadRules();
  const ACTORS = 20_000;
  const signals = await correlationSignals(undefined, ACTORS);
  const M = signals.length;
  const baseline = () => {
    const m = new Map<string, number>();
    for (const s of signals) m.set(s.actor.key, (m.get(s.actor.key) ?? 0) + 1);
    return m.size;
  };
  let firings = 0;
  const engineOnly = () => {
    const e = new CorrelationEngine(rules.correlations);
    firings = 0;
    for (const s of signals) firings += e.process(s).length;
    return e.size;
  };
  let incidents = 0;
  const manager = () => {
    let now = 0;
    const m = new IncidentManager(new CorrelationEngine(rules.correlations), { now: () => now }, {});
    for (let i = 0; i < signals.length; i += 500) {
      now = signals[i]!.eventTime;
      m.process(signals.slice(i, i + 500));
    }
    incidents = m.stats.opened;
    return incidents;
  };
  baseline();
  engineOnly();
  const b: number[] = [];
  const e: number[] = [];
  const mg: number[] = [];
  for (let i = 0; i < Math.max(3, Math.floor(ROUNDS / 2)); i++) {
    b.push(timeIt(baseline).seconds);
    e.push(timeIt(engineOnly).seconds);
    mg.push(timeIt(manager).seconds);
  }
  const rate = (xs: number[]) => M / median(xs);
  console.log(`correlation: ${M} signals from ${ACTORS} actors, ${rules.correlations.length} correlation rules, ${firings} firings, ${incidents} incidents`);
  console.log(`  Map count per actor (baseline) ${Math.round(rate(b)).toLocaleString('en-US').padStart(12)} signals/s`);
  console.log(
    `  correlation engine             ${Math.round(rate(e)).toLocaleString('en-US').padStart(12)} signals/s   ratio ${(rate(e) / rate(b)).toFixed(3)}   target ≥ 500,000/s`,
  );
  console.log(
    `  engine + incidents + root cause ${Math.round(rate(mg)).toLocaleString('en-US').padStart(11)} signals/s   ratio ${(rate(mg) / rate(b)).toFixed(3)}`,
  );
}

/** KUBEVIGIL_* settings of the bench's own environment, passed on to the kubevigils it starts (e.g. KUBEVIGIL_BUS_LINGER_MS). */
function benchEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith('KUBEVIGIL_') && e[1] !== undefined));
}

/** A kubevigil of its own for a bench case (temp data dir, silent, no sweeper); `stop` removes everything. */
async function startKubevigil(env: Record<string, string | undefined>) {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { loadConfig } = await import('../services/config.js');
  const { createLogger } = await import('../services/logging.js');
  const { serve } = await import('../services/main.js');
  const dir = mkdtempSync(join(tmpdir(), 'kv-bench-'));
  const kv = await serve(
    loadConfig({ KUBEVIGIL_PORT: '0', KUBEVIGIL_DATA_DIR: dir, KUBEVIGIL_DEDUP_ENTRIES: '1000000', ...benchEnv(), ...env }),
    createLogger('silent'),
    {
      processMetrics: false,
      sweepSchedule: false,
    },
  );
  const stopServer = kv.stop;
  return Object.assign(kv, {
    stop: async () => {
      await stopServer();
      rmSync(dir, { recursive: true, force: true });
    },
  });
}

/** Audit batches of 400 events as the apiserver webhook sends them. */
function eventListBodies(events: import('../connectors/k8s-audit/parse.js').AuditEvent[]): string[] {
  const bodies: string[] = [];
  for (let i = 0; i < events.length; i += 400)
    bodies.push(JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items: events.slice(i, i + 400) }));
  return bodies;
}

/** Counts the event loop's full garbage collections (mark-compact) from now until `stop()`. */
async function countFullCollections(): Promise<{ stop: () => number }> {
  const { PerformanceObserver, constants } = await import('node:perf_hooks');
  let n = 0;
  const major = (e: import('node:perf_hooks').PerformanceEntry) =>
    (e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR;
  const obs = new PerformanceObserver((list) => {
    n += list.getEntries().filter(major).length;
  });
  obs.observe({ entryTypes: ['gc'] });
  return {
    stop: () => {
      // Entries are delivered asynchronously: take those still buffered.
      n += obs.takeRecords().filter(major).length;
      obs.disconnect();
      return n;
    },
  };
}

/** POSTs every body with `concurrency` requests in flight; resolves with the seconds it took. */
async function postAll(url: string, bodies: string[], concurrency = 4): Promise<number> {
  let next = 0;
  const worker = async () => {
    while (next < bodies.length) {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: bodies[next++] });
      if (res.status >= 300) throw new Error(`${url} answered ${res.status}`);
      await res.arrayBuffer();
    }
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/**
 * Receipt → incident update latency: remembers each signal's receive time from the signals topic and
 * measures when an incident version first contains it.
 */
function trackLatency(bus: import('../services/bus/bus.js').Bus, t: ReturnType<typeof import('../services/bus/topics.js').topics>) {
  const observed = new Map<string, number>();
  const latencies: number[] = [];
  const seen = new Set<string>();
  const state = { lastUpdate: 0, updates: 0 };
  const stops = [
    bus.subscribe(t.signals, 'bench-observed', async (batch) => {
      for (const m of batch) if ('observedTime' in m.value) observed.set(m.value.id, m.value.observedTime);
    }),
    bus.subscribe(t.incidents, 'bench-latency', async (batch) => {
      const now = Date.now();
      state.lastUpdate = now;
      state.updates += batch.length;
      for (const m of batch)
        for (const e of m.value.timeline)
          if (!seen.has(e.signalId)) {
            seen.add(e.signalId);
            const o = observed.get(e.signalId);
            if (o !== undefined) latencies.push(now - o);
          }
    }),
  ];
  return {
    state,
    stop: async () => {
      for (const s of stops) await s();
    },
    percentile(p: number): number {
      const sorted = [...latencies].sort((a, b) => a - b);
      return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
    },
    /** Signals whose latency was measured: those that showed in a stored incident update. */
    get count() {
      return latencies.length;
    },
    /** Signals published on the signals topic. */
    get published() {
      return observed.size;
    },
  };
}

/**
 * Case "e2e": audit batches of 400 events over HTTP into an embedded kubevigil (SQLite store), 4
 * requests in flight; latency from receipt of a suspicious event to the stored incident update that
 * contains its signal. Baseline: the same batches POSTed to a bare express server that only parses.
 * The client runs in this process too, as it does for the baseline. kubevigil runs with 0 detection
 * workers, then 1 and 2 (KUBEVIGIL_WORKERS; BENCH_E2E_WORKERS picks others), each a fresh kubevigil
 * warmed up first with other events (re-sent ones would be deduplicated). Rounds interleave the
 * baseline and every kubevigil (BENCH_E2E_ROUNDS, 5), so that what else the machine runs hits all
 * of them alike; each ratio is the median over the rounds of baseline seconds / kubevigil seconds
 * in the same round. The headline is kubevigil's default worker count.
 */
async function e2eCase(): Promise<void> {
  const express = (await import('express')).default;
  const { topics } = await import('../services/bus/topics.js');
  const { loadConfig } = await import('../services/config.js');
  /** User + system seconds of a `process.threadCpuUsage` difference. */
  const cpuSeconds = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1e6;
  const E = Number(process.env.BENCH_E2E_EVENTS ?? 100_000);
  const ROUNDS_E2E = Number(process.env.BENCH_E2E_ROUNDS ?? 5);
  const bodies = eventListBodies(syntheticAuditEvents(E, { suspiciousShare: 0.01, seed: 11, stepMs: 2 }));
  const warmup = eventListBodies(
    syntheticAuditEvents(Math.max(400, E / 10), { suspiciousShare: 0.01, seed: 12, stepMs: 2, start: Date.UTC(2026, 10, 28, 12, 0, 0) }),
  );

  // Baseline: bare express + JSON parsing of the same bodies.
  const app = express();
  app.post('/ingest', express.json({ limit: '16mb' }), (req, res) => {
    res.json({ n: (req.body as { items: unknown[] }).items.length });
  });
  const server = await new Promise<import('node:http').Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const port = (server.address() as import('node:net').AddressInfo).port;
  await postAll(`http://127.0.0.1:${port}/ingest`, bodies);
  // The event loop's own CPU time (client included, as for kubevigil): unlike wall time, it does not
  // depend on what else the machine runs, and it is what the detection workers take off the loop.
  const baseline = async () => {
    const cpu = process.threadCpuUsage();
    const all = process.cpuUsage();
    const full = await countFullCollections();
    const seconds = await postAll(`http://127.0.0.1:${port}/ingest`, bodies);
    return { seconds, loopSeconds: cpuSeconds(process.threadCpuUsage(cpu)), processSeconds: cpuSeconds(process.cpuUsage(all)), fullGcs: full.stop() };
  };

  /** One kubevigil with `workers` detection workers: seconds to acknowledge every batch, and to correlate them all. */
  const run = async (workers: number) => {
    const kv = await startKubevigil({ KUBEVIGIL_WORKERS: String(workers) });
    await postAll(`${kv.url}/ingest/k8s-audit`, warmup);
    await kv.drained();
    const latency = trackLatency(kv.bus, topics());
    const t0 = process.hrtime.bigint();
    const cpu0 = process.threadCpuUsage();
    const all0 = process.cpuUsage();
    const full = await countFullCollections();
    const seconds = await postAll(`${kv.url}/ingest/k8s-audit`, bodies);
    await kv.drained();
    const fullGcs = full.stop();
    const loopSeconds = cpuSeconds(process.threadCpuUsage(cpu0));
    // Every thread of the process: detection workers and the garbage collector's helpers too.
    const processSeconds = cpuSeconds(process.cpuUsage(all0));
    const drainedSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await latency.stop();
    await kv.stop();
    return { seconds, drainedSeconds, loopSeconds, processSeconds, fullGcs, latency };
  };
  type Run = Awaited<ReturnType<typeof run>>;
  const defaultWorkers = loadConfig({}).workers;
  const counts = (process.env.BENCH_E2E_WORKERS ?? '0,1,2').split(',').map(Number);
  if (!counts.includes(defaultWorkers)) counts.unshift(defaultWorkers);
  const configs = counts.map((w) => ({ label: `KUBEVIGIL_WORKERS=${w}${w === defaultWorkers ? ' (default)' : ''}`, workers: w }));
  const headline = configs.findIndex((c) => c.workers === defaultWorkers);
  const rounds: { base: Awaited<ReturnType<typeof baseline>>; runs: Run[] }[] = [];
  for (let r = 0; r < ROUNDS_E2E; r++) {
    const base = await baseline();
    const runs: Run[] = [];
    for (const c of configs) runs.push(await run(c.workers));
    rounds.push({ base, runs });
  }
  server.close();
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US').padStart(10);
  /** Median over the rounds of `f(round)`. */
  const med = (f: (r: (typeof rounds)[number]) => number) => median(rounds.map(f));
  const ratioOf = (i: number) => med((r) => r.base.seconds / r.runs[i]!.seconds);
  const baseSeconds = med((r) => r.base.seconds);
  const baseLoop = med((r) => r.base.loopSeconds);
  console.log(
    `e2e (embedded, HTTP → detect → bus → correlate → SQLite): ${E} audit events in batches of 400, 4 in flight, ${ROUNDS_E2E} interleaved rounds (medians)`,
  );
  console.log(
    `  bare express + JSON.parse (baseline)    ${fmt(E / baseSeconds)} events/s   event loop CPU ${baseLoop.toFixed(2)} s, all threads ${med((r) => r.base.processSeconds).toFixed(2)} s, full GCs ${med((r) => r.base.fullGcs)}`,
  );
  configs.forEach((c, i) => {
    const seconds = med((r) => r.runs[i]!.seconds);
    // Every signal published: an incident's timeline keeps 200 entries, so not all show in an update.
    const signals = med((r) => r.runs[i]!.latency.published / r.runs[i]!.seconds);
    console.log(
      `  ${c.label.padEnd(38)} ${fmt(E / seconds)} events/s ${fmt(signals)} signals/s   ratio ${ratioOf(i).toFixed(2)} (rounds ${rounds.map((r) => (r.base.seconds / r.runs[i]!.seconds).toFixed(2)).join(', ')})   all correlated at ${fmt(E / med((r) => r.runs[i]!.drainedSeconds)).trim()} events/s   event loop CPU ${med((r) => r.runs[i]!.loopSeconds).toFixed(2)} s, all threads ${med((r) => r.runs[i]!.processSeconds).toFixed(2)} s, full GCs ${med((r) => r.runs[i]!.fullGcs)}`,
    );
  });
  const last = rounds[rounds.length - 1]!.runs[headline]!;
  console.log(
    `  receipt → stored incident update (defaults, last round): p50 ${last.latency.percentile(50)} ms, p99 ${last.latency.percentile(99)} ms over ${last.latency.count} signals; ${last.latency.state.updates} incident updates written`,
  );
  const at = (w: number) => configs.findIndex((c) => c.workers === w);
  if (at(1) >= 0 && at(2) >= 0 && at(0) >= 0) {
    const secs = (i: number) => med((r) => r.runs[i]!.seconds);
    console.log(`  2 workers vs 1: ratio ${(secs(at(1)) / secs(at(2))).toFixed(2)}; 1 worker vs none: ratio ${(secs(at(0)) / secs(at(1))).toFixed(2)}`);
  }
  console.log(`e2e vs express: ratio ${ratioOf(headline).toFixed(2)}`);
}

/**
 * Case "kafka" (needs KAFKA_BROKERS and REDIS_URL; `npm run bench:kafka` starts both): audit
 * batches over HTTP through Kafka to the partitioned correlator with Redis checkpoints, events/s and
 * receipt → incident-update latency. Then the correlator's capacity: a correlator-only process
 * draining a pre-filled signals topic, against raw kafkajs produce + consume of the same messages
 * measured in the same run, for two shapes of stream: one noisy attacker (one partition, one hot
 * incident) and 200 compromised workloads (every partition, 200 incidents).
 */
async function kafkaCase(): Promise<void> {
  const brokers = process.env.KAFKA_BROKERS;
  if (!brokers || !process.env.REDIS_URL) {
    console.log('kafka: skipped (set KAFKA_BROKERS and REDIS_URL, or run npm run bench:kafka)');
    return;
  }
  const { Kafka, logLevel } = await import('kafkajs');
  // The schedule kafkajs meant, without Node's negative-timeout warning (as kubevigil runs it).
  await import('../services/bus/kafkajs-timers.js');
  const { topics } = await import('../services/bus/topics.js');
  const E = Number(process.env.BENCH_KAFKA_EVENTS ?? 100_000);
  const prefix = `bench${Date.now()}`;
  const kafka = new Kafka({ clientId: 'bench', brokers: brokers.split(','), logLevel: logLevel.NOTHING });
  // BENCH_KAFKA_ONLY=drain runs only the drain shapes (BENCH_KAFKA_ATTACKERS, default "1,200").
  const shapes = (process.env.BENCH_KAFKA_ATTACKERS ?? '1,200').split(',').map(Number);
  if (process.env.BENCH_KAFKA_ONLY === 'drain') {
    for (const attackers of shapes) await drainCase(kafka, `${prefix}a${attackers}`, E, attackers);
    return;
  }

  const events = syntheticAuditEvents(E, { suspiciousShare: 0.05, seed: 21, stepMs: 2 });
  // kubevigil through Kafka and Redis, every role in this process.
  const kv = await startKubevigil({ KAFKA_BROKERS: brokers, REDIS_URL: process.env.REDIS_URL, KUBEVIGIL_TOPIC_PREFIX: prefix, KUBEVIGIL_PARTITIONS: '4' });
  const latency = trackLatency(kv.bus, topics(prefix));
  const bodies = eventListBodies(events);
  const wallStart = Date.now();
  const ingestSeconds = await postAll(`${kv.url}/ingest/k8s-audit`, bodies);
  // Wait for the correlator to catch up: until incident updates stop for two seconds.
  while (Date.now() - latency.state.lastUpdate < 2000 || latency.state.lastUpdate === 0) await new Promise((r) => setTimeout(r, 200));
  const endToEnd = (latency.state.lastUpdate - wallStart) / 1000;
  await latency.stop();
  await kv.stop();
  console.log(`kafka (ingest → Kafka → partitioned correlator + Redis → incidents topic): ${E} audit events, 4 partitions`);
  console.log(
    `  kubevigil ingest (HTTP → Kafka acked)       ${Math.round(E / ingestSeconds)
      .toLocaleString('en-US')
      .padStart(10)} events/s   target ≥ 10,000/s`,
  );
  console.log(
    `  kubevigil end to end (last incident update) ${Math.round(E / endToEnd)
      .toLocaleString('en-US')
      .padStart(10)} events/s`,
  );
  console.log(
    `  receipt → incident update: p50 ${latency.percentile(50)} ms, p99 ${latency.percentile(99)} ms over ${latency.count} signals   target p99 < 1000 ms`,
  );

  // A denser stream (30% suspicious, ~44k signals), so that a drain spans many fetches.
  for (const attackers of shapes) await drainCase(kafka, `${prefix}a${attackers}`, E, attackers);
}

/** CPU seconds of the Kafka broker's JVM so far, when it runs on this machine (Linux /proc), else undefined. */
function brokerCpuSeconds(): number | undefined {
  try {
    brokerPid ??= readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .find((d) => {
        try {
          return readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('kafka.Kafka');
        } catch {
          return false;
        }
      });
    if (!brokerPid) return undefined;
    // utime and stime, fields 14 and 15, in clock ticks (100 a second on Linux).
    const fields = readFileSync(`/proc/${brokerPid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}
let brokerPid: string | undefined;

/**
 * The highest resident size sampled since it was made, above the resident size then (bytes).
 * Sampled at most every 20 ms: reading it (from /proc) took 40–60 µs, 1% of a drain when sampled
 * at every poll.
 */
function rssMeter(): { sample(): void; growth(): number } {
  const start = process.memoryUsage.rss();
  let peak = start;
  let last = performance.now();
  return {
    sample: () => {
      const now = performance.now();
      if (now - last < 20) return;
      last = now;
      peak = Math.max(peak, process.memoryUsage.rss());
    },
    growth: () => Math.max(peak, process.memoryUsage.rss()) - start,
  };
}

/** CPU seconds taken between start and stop: this thread (the event loop), this process (all threads), the broker. */
function cpuMeter(): () => { loop: number; process: number; broker: number | undefined } {
  const loop = process.threadCpuUsage();
  const all = process.cpuUsage();
  const broker = brokerCpuSeconds();
  return () => {
    const b = brokerCpuSeconds();
    const seconds = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;
    return {
      loop: seconds(process.threadCpuUsage(loop)),
      process: seconds(process.cpuUsage(all)),
      broker: broker === undefined || b === undefined ? undefined : b - broker,
    };
  };
}
type CpuUse = ReturnType<ReturnType<typeof cpuMeter>>;

/**
 * Raw kafkajs produce + consume of one stream's signal messages, and a correlator-only kubevigil
 * draining the same messages from a fresh topic; consume and drain alternate for several rounds
 * and the medians are compared, so that noise on a shared machine hits both alike.
 */
async function drainCase(kafka: import('kafkajs').Kafka, prefix: string, events: number, attackers: number): Promise<void> {
  const rounds = Number(process.env.BENCH_KAFKA_ROUNDS ?? 3);
  // Correlation worker threads of the drains (BENCH_KAFKA_WORKERS, default "0,1,2": on the event loop, one, two).
  const workerCounts = (process.env.BENCH_KAFKA_WORKERS ?? '0,1,2').split(',').map(Number);
  const messages = drainSignalMessages(events, attackers);
  const admin = kafka.admin();
  await admin.connect();
  const streams = (r: number, w: number) => [
    { topic: `${prefix}r${r}w${w}.signals`, numPartitions: 4 },
    { topic: `${prefix}r${r}w${w}.incidents`, numPartitions: 4, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] },
    { topic: `${prefix}r${r}w${w}.dead-letter`, numPartitions: 1 },
  ];
  const runs = Array.from({ length: rounds }, (_, r) => workerCounts.map((w) => [r, w] as const)).flat();
  // The warm-up drain's topics: round -1, on the event loop.
  await admin.createTopics({ topics: [{ topic: `${prefix}.raw`, numPartitions: 4 }, ...streams(-1, 0), ...runs.flatMap(([r, w]) => streams(r, w))] });
  await admin.disconnect();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const send = async (topic: string, count = messages.length) => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < count; i += 500) await producer.send({ topic, acks: -1, messages: messages.slice(i, Math.min(i + 500, count)) });
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  const produceSeconds = await send(`${prefix}.raw`);
  for (const [r, w] of runs) await send(`${prefix}r${r}w${w}.signals`);
  const warmUpCount = Math.ceil(messages.length / 4);
  await send(`${prefix}r-1w0.signals`, warmUpCount);
  await producer.disconnect();
  // The messages are on the topics now: dropped here, so that the bench's own data (≈ 2 KB a
  // message, hundreds of MB) does not weigh on the garbage collections of what it measures.
  const total = messages.length;
  const averageBytes = Math.round(messages.reduce((n, m) => n + m.value.length, 0) / total);
  messages.length = 0;
  // Finds the broker's process now, not inside the first timed batch.
  brokerCpuSeconds();

  type Run = { rate: number; cpu: CpuUse; rssGrowth: number };
  /**
   * Baseline: one plain kafkajs consumer of the raw topic (a new group each round), parsing each
   * message; without `parse`, it only fetches them (shown for reference: no consumer of signals
   * can do less).
   */
  const rawConsume = async (r: number, parse = true): Promise<Run> => {
    const consumer = kafka.consumer({ groupId: `${prefix}.raw-consumer-${r}-${parse ? 'parse' : 'fetch'}` });
    await consumer.connect();
    await consumer.subscribe({ topics: [`${prefix}.raw`], fromBeginning: true });
    let consumed = 0;
    let firstBatch: bigint | undefined;
    let meter: ReturnType<typeof cpuMeter> | undefined;
    const rss = rssMeter();
    const profile = await profileInto(process.env.BENCH_KAFKA_PROFILE, `raw-r${r}-${parse ? 'parse' : 'fetch'}`);
    const { seconds, cpu } = await new Promise<{ seconds: number; cpu: CpuUse }>((resolve) => {
      void consumer.run({
        eachBatch: async ({ batch }) => {
          // Timed from the first batch: the group join before it is not consumption.
          firstBatch ??= process.hrtime.bigint();
          meter ??= cpuMeter();
          if (parse) for (const m of batch.messages) JSON.parse(m.value!.toString());
          consumed += batch.messages.length;
          rss.sample();
          if (consumed >= total) resolve({ seconds: Number(process.hrtime.bigint() - firstBatch) / 1e9, cpu: meter() });
        },
      });
    });
    await profile();
    await consumer.disconnect();
    return { rate: total / seconds, cpu, rssGrowth: rss.growth() };
  };
  /**
   * The correlator alone, until every signal's effects are checkpointed (the counter counts them
   * then), correlating on the event loop (`workers` 0) or on that many worker threads.
   */
  const drain = async (r: number, workers: number, expected = total): Promise<Run> => {
    const c = await startKubevigil({
      KAFKA_BROKERS: process.env.KAFKA_BROKERS,
      REDIS_URL: process.env.REDIS_URL,
      KUBEVIGIL_TOPIC_PREFIX: `${prefix}r${r}w${workers}`,
      KUBEVIGIL_ROLES: 'correlator',
      KUBEVIGIL_CORRELATOR_WORKERS: String(workers),
    });
    // Worker threads' counters included (Metrics.total merges their registries).
    const correlatedCount = () => c.metrics.total('kubevigil_correlator_signals_total');
    // Timed like the baseline: from the first fetched batch, not from the group join. The bus sets
    // the consumer's lag gauge first thing for each batch: the time of that call, recorded as it is
    // made (polling for the gauge noticed it 25–100 ms late, behind the batches the event loop was
    // busy with).
    let first: bigint | undefined;
    const gauge = c.metrics.busLag;
    const set = gauge.set.bind(gauge) as (...a: unknown[]) => void;
    gauge.set = ((...a: unknown[]) => {
      first ??= process.hrtime.bigint();
      set(...a);
    }) as typeof gauge.set;
    // A batch fetched before the hook (the group joins in the background): timed from now.
    if ((await gauge.get()).values.length > 0) first ??= process.hrtime.bigint();
    while (first === undefined) await new Promise((res) => setTimeout(res, 1));
    const profile = await profileInto(process.env.BENCH_KAFKA_PROFILE, `drain-r${r}-w${workers}`);
    const meter = cpuMeter();
    const rss = rssMeter();
    const t0 = first;
    while ((await correlatedCount()) < expected) {
      rss.sample();
      await new Promise((res) => setTimeout(res, 5));
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = meter();
    await profile();
    await c.stop();
    return { rate: expected / seconds, cpu, rssGrowth: rss.growth() };
  };
  const raw: Run[] = [];
  const fetchOnly: Run[] = [];
  const ours = new Map<number, Run[]>(workerCounts.map((w) => [w, []]));
  // BENCH_KAFKA_RAW=0 skips the baselines (to profile the drain alone: no ratio then).
  const baseline = process.env.BENCH_KAFKA_RAW !== '0';
  // An untimed warm-up first, as the other cases have: a raw consume of the whole stream and a drain
  // on the event loop of its first quarter, so that the rounds compare code V8 has compiled (the
  // first drain in a process ran 20–35% slower than the next ones, the raw consumer's first round
  // 5–25%). Worker threads start fresh isolates at every drain: their rounds include the JIT.
  if (baseline) await rawConsume(-1);
  await drain(-1, 0, warmUpCount);
  for (let r = 0; r < rounds; r++) {
    if (baseline) {
      raw.push(await rawConsume(r));
      fetchOnly.push(await rawConsume(r, false));
    }
    for (const w of workerCounts) ours.get(w)!.push(await drain(r, w));
  }
  const shape = attackers === 1 ? 'one noisy attacker' : `${attackers} compromised workloads`;
  const fmt = (x: number) => Math.round(x).toLocaleString('en-US').padStart(10);
  const rates = (runs: Run[]) => runs.map((x) => x.rate);
  const listed = (runs: Run[]) =>
    rates(runs)
      .map((x) => Math.round(x))
      .join(', ');
  // Where the time went: CPU milliseconds per 1,000 messages (medians), on the event loop, in this
  // whole process (worker threads, GC, I/O threads included) and in the broker. Two cores share it all.
  const perK = (runs: Run[], pick: (c: CpuUse) => number | undefined) => {
    const xs = runs.map((x) => pick(x.cpu)).filter((x): x is number => x !== undefined);
    return xs.length ? ((1e6 * median(xs)) / total).toFixed(1) : 'n/a';
  };
  // How far the resident size rose above its level at the start of a round (median, MB): the
  // memory each side's garbage takes before a collection frees it, with the V8 flags in effect.
  const rssLine = (runs: Run[]) => `RSS +${Math.round(median(runs.map((x) => x.rssGrowth)) / 2 ** 20)} MB`;
  const cpuLine = (runs: Run[]) =>
    `CPU ms per 1,000: event loop ${perK(runs, (c) => c.loop)}, process ${perK(runs, (c) => c.process)}, broker ${perK(runs, (c) => c.broker)}   ${rssLine(runs)}`;
  console.log(
    `kafka drain, ${shape}: ${total} signal messages of ${averageBytes} B on 4 partitions, median of ${rounds} alternating rounds after an untimed warm-up`,
  );
  // V8's flags are the process's: set by the warm-up drain's kubevigil, they hold for every timed round, the raw consumer's too.
  const { loadConfig } = await import('../services/config.js');
  const flags = loadConfig({
    ...benchEnv(),
    KAFKA_BROKERS: process.env.KAFKA_BROKERS,
    REDIS_URL: process.env.REDIS_URL,
    KUBEVIGIL_ROLES: 'correlator',
  }).v8Flags;
  console.log(`  V8 flags of a correlator-only kubevigil (KUBEVIGIL_V8_FLAGS), so of every round: ${flags.join(' ') || 'none'}`);
  console.log(`  raw kafkajs produce (acks=all, idempotent) ${fmt(total / produceSeconds)} msgs/s`);
  if (baseline) {
    console.log(
      `  raw kafkajs consume, no parsing            ${fmt(median(rates(fetchOnly)))} msgs/s      (rounds: ${listed(fetchOnly)})   ${cpuLine(fetchOnly)}`,
    );
    console.log(`  raw kafkajs consume + JSON.parse           ${fmt(median(rates(raw)))} msgs/s      (rounds: ${listed(raw)})   ${cpuLine(raw)}`);
  }
  for (const [w, xs] of ours) {
    const label = w === 0 ? 'correlator on the event loop' : `correlator on ${w} worker thread${w > 1 ? 's' : ''}`;
    console.log(
      `  ${label.padEnd(42)} ${fmt(median(rates(xs)))} signals/s   (rounds: ${listed(xs)})${baseline ? `   ratio ${(median(rates(xs)) / median(rates(raw))).toFixed(2)}` : ''}   ${cpuLine(xs)}`,
    );
  }
  if (!baseline) return;
  // Drain / raw consume + JSON.parse, read by scripts (issue #18's target: ≥ 0.8), for the
  // default setting (on the event loop) when it ran.
  const headline = rates(ours.get(0) ?? ours.get(workerCounts[0]!)!);
  console.log(`  ratio (drain / raw consume, no parsing)    ${(median(headline) / median(rates(fetchOnly))).toFixed(2).padStart(10)}`);
  console.log(`kafka drain vs raw consume: ratio ${(median(headline) / median(rates(raw))).toFixed(2)}`);
}

/**
 * With `dir` set (BENCH_KAFKA_PROFILE), profiles this thread's CPU from now until the returned
 * function is called, into `dir/NAME.cpuprofile` (open it in Chrome DevTools): a drain or a raw
 * consume alone, without the data generation and the produce before it.
 */
async function profileInto(dir: string | undefined, name: string): Promise<() => Promise<void>> {
  if (!dir) return async () => {};
  const { Session } = await import('node:inspector/promises');
  const { mkdirSync, writeFileSync } = await import('node:fs');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/${name}.cpuprofile`, JSON.stringify(profile));
    console.log(`  profile of the drain: ${dir}/${name}.cpuprofile`);
  };
}

/**
 * Case "receivers": the Alertmanager, Loki and OTLP receivers of an embedded kubevigil over HTTP
 * (4 requests in flight), each against the same bodies POSTed to a bare express server that only
 * parses them (the baseline).
 */
async function receiversCase(): Promise<void> {
  const express = (await import('express')).default;
  const { alertWebhook, meshPush, spans } = await import('../services/cli/scenario.js');
  const { SEED_SCENARIO } = await import('../connectors/k8s-audit/scenario.js');
  const N = Number(process.env.BENCH_RECEIVER_REQUESTS ?? 400);
  // Each request carries 100 items: alerts, log lines or spans, all distinct so none is deduplicated.
  const alerts = (i: number) => {
    const body = JSON.parse(alertWebhook({ ...SEED_SCENARIO, start: SEED_SCENARIO.start + i * 1000 }).body) as { alerts: Record<string, unknown>[] };
    const a = body.alerts[0]!;
    body.alerts = Array.from({ length: 100 }, (_, j) => ({
      ...a,
      fingerprint: `${i.toString(16)}f${j.toString(16)}`.padStart(16, '0'),
      startsAt: new Date(SEED_SCENARIO.start + i * 1000 + j).toISOString(),
    }));
    return JSON.stringify(body);
  };
  const lines = (i: number) => {
    const body = JSON.parse(meshPush({ ...SEED_SCENARIO, start: SEED_SCENARIO.start + i * 1000 }).body) as { streams: { values: string[][] }[] };
    const v = body.streams[0]!.values[0]!;
    body.streams[0]!.values = Array.from({ length: 100 }, (_, j) => [String(BigInt(v[0]!) + BigInt(i * 1000 + j)), v[1]!]);
    return JSON.stringify(body);
  };
  const spanBodies = (i: number) => {
    const body = JSON.parse(spans({ ...SEED_SCENARIO, start: SEED_SCENARIO.start + i * 1000 }).body) as {
      resourceSpans: { scopeSpans: { spans: Record<string, unknown>[] }[] }[];
    };
    const sp = body.resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
    body.resourceSpans[0]!.scopeSpans[0]!.spans = Array.from({ length: 100 }, (_, j) => ({ ...sp, spanId: (i * 100 + j).toString(16).padStart(16, '0') }));
    return JSON.stringify(body);
  };
  const cases: [string, string, (i: number) => string, string][] = [
    ['alertmanager', '/ingest/alertmanager', alerts, 'alerts'],
    ['loki', '/loki/api/v1/push', lines, 'lines'],
    ['otlp', '/v1/traces', spanBodies, 'spans'],
  ];
  const app = express();
  app.post('/any', express.json({ limit: '16mb' }), (_req, res) => {
    res.status(204).end();
  });
  const server = await new Promise<import('node:http').Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const base = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}/any`;
  const kv = await startKubevigil({});
  console.log(`receivers: ${N} requests of 100 items each per receiver, 4 in flight, detection on`);
  for (const [name, path, make, unit] of cases) {
    const bodies = Array.from({ length: N }, (_, i) => make(i));
    const baseSeconds = await postAll(base, bodies);
    const seconds = await postAll(`${kv.url}${path}`, bodies);
    await kv.drained();
    console.log(
      `  ${name.padEnd(13)} ${Math.round((N * 100) / seconds)
        .toLocaleString('en-US')
        .padStart(10)} ${unit}/s   bare express + JSON.parse ${Math.round((N * 100) / baseSeconds)
        .toLocaleString('en-US')
        .padStart(10)}/s   ratio ${(baseSeconds / seconds).toFixed(2)}`,
    );
  }
  server.close();
  await kv.stop();
}

/**
 * Case "pathological": 64 KB strings built to make regexes backtrack ("eyJ-" repeated for the JWT
 * redaction pattern, "cert" for certificate alert rules) in the fields that reach redaction, titles
 * and rule regexes; decode + normalize + detect of one such event against JSON.parse of the same
 * bytes. Linear work keeps the ratio near the ordinary one; a quadratic regex (one once stalled the
 * process for 37 s) would make it thousands.
 */
async function pathologicalCase(): Promise<void> {
  const { attackEvents, SEED_SCENARIO } = await import('../connectors/k8s-audit/scenario.js');
  const { alertWebhook } = await import('../services/cli/scenario.js');
  const { decodeForTests } = await import('../services/rules.js');
  const detector = loadDetector();
  const n = 64 * 1024;
  const jwtish = 'eyJ-'.repeat(n / 4);
  const cert = 'cert'.repeat(n / 4);
  const exec = attackEvents(SEED_SCENARIO).find((e) => e.objectRef?.subresource === 'exec')!;
  const alert = JSON.parse(alertWebhook(SEED_SCENARIO).body) as { alerts: { labels: Record<string, string>; annotations: Record<string, string> }[] };
  const withAlert = (f: (a: { labels: Record<string, string>; annotations: Record<string, string> }) => void) => {
    const body = structuredClone(alert);
    f(body.alerts[0]!);
    return body;
  };
  const cases: [string, string, unknown][] = [
    ['audit userAgent "eyJ-" × 16k', 'k8s-audit', { ...exec, userAgent: jwtish }],
    ['audit requestURI "eyJ-" × 16k', 'k8s-audit', { ...exec, requestURI: `${exec.requestURI}&command=${jwtish}` }],
    ['alert summary "eyJ-" × 16k', 'alertmanager', withAlert((a) => (a.annotations.summary = jwtish))],
    ['alertname "cert" × 16k', 'alertmanager', withAlert((a) => (a.labels.alertname = cert))],
  ];
  console.log(`pathological: one event with a 64 KB adversarial string, decode + normalize + detect (median of ${ROUNDS}) vs JSON.parse of the same bytes`);
  for (const [name, source, value] of cases) {
    const text = JSON.stringify(value);
    const parse = () => (JSON.parse(text) ? 1 : 0);
    const ours = () => {
      const { events } = decodeForTests(source, JSON.parse(text));
      let signals = 0;
      for (const e of events) signals += detector.detect(e).length;
      return signals;
    };
    parse();
    const signals = ours();
    const base: number[] = [];
    const mine: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      base.push(timeIt(parse).seconds);
      mine.push(timeIt(ours).seconds);
    }
    console.log(
      `  ${name.padEnd(32)} ${(median(mine) * 1000).toFixed(2).padStart(8)} ms  JSON.parse ${(median(base) * 1000).toFixed(3).padStart(7)} ms  ratio ${(median(mine) / median(base)).toFixed(0).padStart(5)}×  (${signals} signal(s))`,
    );
  }
}

/**
 * Memory of the cluster inventory: 10,000 pods (each with the status and spec size of a real one,
 * owned through ReplicaSets by 500 Deployments) listed from a stand-in API server; the heap after a
 * GC, against the same pods held as parsed JSON (what a plain informer cache keeps).
 */
async function inventoryCase(): Promise<void> {
  const { CORE_PATHS, KubeStandIn, standInKubeConfig } = await import('../test/helpers/kube-standin.js');
  const { KubeInventory } = await import('../services/inventory/inventory.js');
  const { createLogger } = await import('../services/logging.js');
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    console.log('inventory: run with --expose-gc (npm run bench does) to measure memory');
    return;
  }
  const PODS = 10_000;
  const api = new KubeStandIn(CORE_PATHS);
  const pods: unknown[] = [];
  for (let i = 0; i < PODS; i++) {
    const ns = `team-${i % 50}`;
    const dep = `app-${i % 500}`;
    const p = {
      metadata: {
        name: `${dep}-7d9c4b5f6-${i.toString(36).padStart(5, '0')}`,
        namespace: ns,
        uid: `0d8f${i.toString(16).padStart(8, '0')}-1c2b-4a5e-9f00-5e6d7c8b9a01`,
        labels: { app: dep, 'pod-template-hash': '7d9c4b5f6', 'app.kubernetes.io/name': dep, 'app.kubernetes.io/part-of': 'shop' },
        annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-12-01T10:00:00Z', 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9090' },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${dep}-7d9c4b5f6`, uid: 'rs-uid', controller: true, blockOwnerDeletion: true }],
      },
      spec: {
        serviceAccountName: dep,
        nodeName: `worker-${i % 40}`,
        volumes: [
          { name: 'token', projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3607 } }] } },
          { name: 'tls', secret: { secretName: `${dep}-tls` } },
        ],
        containers: [
          {
            name: 'app',
            image: `registry.example.com/shop/${dep}:1.4.2`,
            ports: [{ containerPort: 8080, protocol: 'TCP' }],
            env: [
              { name: 'DB_PASSWORD', valueFrom: { secretKeyRef: { name: `${dep}-db`, key: 'password' } } },
              { name: 'LOG_LEVEL', value: 'info' },
            ],
            resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
            securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          },
        ],
      },
      status: {
        phase: 'Running',
        podIP: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
        podIPs: [{ ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` }],
        hostIP: '192.168.10.21',
        conditions: [
          { type: 'Ready', status: 'True', lastTransitionTime: '2026-12-01T10:00:05Z' },
          { type: 'ContainersReady', status: 'True', lastTransitionTime: '2026-12-01T10:00:05Z' },
        ],
        containerStatuses: [
          {
            name: 'app',
            ready: true,
            restartCount: 0,
            image: `registry.example.com/shop/${dep}:1.4.2`,
            imageID: 'sha256:0123456789abcdef',
            containerID: 'containerd://0123456789abcdef',
            started: true,
          },
        ],
      },
    };
    api.put('/api/v1/pods', p as never);
    pods.push(p);
  }
  for (let d = 0; d < 500; d++) {
    const ns = `team-${d % 50}`;
    api.put('/apis/apps/v1/deployments', {
      metadata: { name: `app-${d}`, namespace: ns, labels: { app: `app-${d}` } },
      spec: { template: { spec: { serviceAccountName: `app-${d}`, containers: [] } } },
    });
    api.put('/apis/apps/v1/replicasets', {
      metadata: { name: `app-${d}-7d9c4b5f6`, namespace: ns, ownerReferences: [{ kind: 'Deployment', name: `app-${d}`, controller: true }] },
      spec: {},
    });
  }
  const rawBytes = Buffer.byteLength(JSON.stringify(pods));
  await api.start();
  gc();
  const before = process.memoryUsage().heapUsed;
  const inv = new KubeInventory(standInKubeConfig(api.url), { logger: createLogger('silent') });
  while (!inv.status().synced) await new Promise((r) => setTimeout(r, 20));
  gc();
  const after = process.memoryUsage().heapUsed;
  // The baseline: the same pods kept as parsed objects, as an informer's cache keeps them.
  const kept = JSON.parse(JSON.stringify(pods)) as unknown[];
  gc();
  const withRaw = process.memoryUsage().heapUsed;
  const perPod = (after - before) / PODS;
  const rawPerPod = (withRaw - after) / PODS;
  console.log(`inventory: ${PODS} pods (${(rawBytes / PODS).toFixed(0)} B of JSON each), 500 Deployments and ReplicaSets`);
  console.log(`  inventory heap per pod          ${perPod.toFixed(0).padStart(8)} B  (${((after - before) / 1e6).toFixed(1)} MB in all)`);
  console.log(`  parsed pod objects per pod      ${rawPerPod.toFixed(0).padStart(8)} B  (what an informer cache holds)`);
  console.log(`  ratio (inventory / parsed)        ${(perPod / rawPerPod).toFixed(2)}`);
  console.log(
    `  resolve IP → service account    ${inv.podByIP('10.0.1.2')?.serviceAccount ?? 'missing'} via ${inv.podByIP('10.0.1.2')?.workload?.kind ?? 'missing'}`,
  );
  await inv.stop();
  await api.stop();
  void kept.length;
}

/** The embedded kubevigil of bench/admission-server.ts in a child process, with `env` on top of the bench's own. */
async function forkKubevigil(env: Record<string, string>) {
  const { fork } = await import('node:child_process');
  const child = fork(new URL('./admission-server.ts', import.meta.url), [], { execArgv: ['--import', 'tsx'], env: { ...process.env, ...env } });
  const next = () =>
    new Promise<unknown>((resolve, reject) => {
      const exited = (code: number | null) => reject(new Error(`bench kubevigil exited (${code})`));
      child.once('exit', exited);
      child.once('message', (m) => {
        child.off('exit', exited);
        resolve(m);
      });
    });
  const { url } = (await next()) as { url: string };
  return {
    url,
    drained: async () => {
      child.send('drain');
      await next();
    },
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.send('stop');
      }),
  };
}

const SENDER_CONNECTIONS = 512;

/** One answer of an open-loop run: status, Retry-After and ms from the request's scheduled time. */
interface Answer {
  status: number;
  retryAfter: string | undefined;
  ms: number;
}

/** POSTs `n` bodies, 8 at a time, over kept-alive connections; throws on an answer other than 2xx. */
async function closedLoop(url: string, n: number, body: () => Buffer): Promise<void> {
  const http = await import('node:http');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  let left = n;
  const worker = async () => {
    while (left-- > 0) {
      const data = body();
      const status = await new Promise<number>((resolve, reject) =>
        http
          .request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': data.length } }, (res) =>
            res.resume().on('end', () => resolve(res.statusCode ?? 0)),
          )
          .on('error', reject)
          .end(data),
      );
      if (status >= 300) throw new Error(`${url} answered ${status}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  agent.destroy();
}

/**
 * Sends `rate` requests per second for `seconds` on a fixed schedule, whatever the answers (open
 * loop), over node:http (fetch costs the client more than the server's shedding does). Latency
 * counts from the scheduled send time, so a late client cannot hide a slow server; `late` says how
 * late the client itself was (p99, ms).
 */
async function openLoop(url: string, rate: number, seconds: number, body: () => Buffer): Promise<{ answers: Answer[]; late: number }> {
  const http = await import('node:http');
  // A sender with a pool of connections, all open as if it had been sending all along: Node accepts
  // one connection per event-loop turn, so connections opened under load measure the kernel's
  // accept queue, not admission. Requests beyond the pool wait in the sender (and count as latency).
  const agent = new http.Agent({ keepAlive: true, maxSockets: SENDER_CONNECTIONS, maxFreeSockets: SENDER_CONNECTIONS });
  await Promise.all(
    Array.from(
      { length: SENDER_CONNECTIONS },
      () =>
        new Promise<void>((resolve, reject) =>
          http.get(new URL('/healthz', url), { agent }, (res) => res.resume().on('end', () => resolve())).on('error', reject),
        ),
    ),
  );
  const n = Math.round(rate * seconds);
  const answers: Answer[] = [];
  const lateness: number[] = [];
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait >= 1) await new Promise((r) => setTimeout(r, wait));
    lateness.push(performance.now() - due);
    const data = body();
    pending.push(
      new Promise<void>((resolve) => {
        const done = (status: number, retryAfter?: string) => {
          answers.push({ status, retryAfter, ms: performance.now() - due });
          resolve();
        };
        const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': data.length } }, (res) => {
          res.resume();
          res.on('end', () => done(res.statusCode ?? 0, res.headers['retry-after']));
          res.on('error', () => done(0));
        });
        req.on('error', () => done(0));
        req.end(data);
      }),
    );
  }
  await Promise.all(pending);
  agent.destroy();
  lateness.sort((a, b) => a - b);
  return { answers, late: lateness[Math.floor(lateness.length * 0.99)] ?? 0 };
}

/**
 * Case "admission": audit batches of 400 events offered open-loop at 3× the rate an embedded
 * kubevigil sustains (measured first in the same run: closed loop, 8 in flight, until the bus has
 * drained), once with queue-delay admission off (the baseline: only the in-flight bound sheds) and
 * once with it on; p50/p99 latency of the accepted requests and the share shed. The service runs in
 * a child process so the load generator does not share its event loop.
 */
async function admissionCase(): Promise<void> {
  const SECONDS = Number(process.env.BENCH_ADMISSION_SECONDS ?? 15);
  const FACTOR = Number(process.env.BENCH_ADMISSION_FACTOR ?? 3);
  const { SETTINGS } = await import('../services/config.js');
  const DELAY = process.env.KUBEVIGIL_INGEST_MAX_QUEUE_DELAY || SETTINGS.find((s) => s.env === 'KUBEVIGIL_INGEST_MAX_QUEUE_DELAY')!.default;
  const pool = eventListBodies(syntheticAuditEvents(200 * 400, { suspiciousShare: 0.01, seed: 31, stepMs: 2 })).map((b) => Buffer.from(b));
  // Every request distinct, or the receiver's dedup would skip the pool's repeats without detecting:
  // the first 8 hex digits of each auditID (a UUID) become the request's number. Patching a copy
  // keeps the load generator cheap next to the server.
  const marker = Buffer.from('"auditID":"');
  const offsets = pool.map((b) => {
    const at: number[] = [];
    for (let i = b.indexOf(marker); i >= 0; i = b.indexOf(marker, i + 1)) at.push(i + marker.length);
    return at;
  });
  let sent = 0;
  const body = () => {
    const n = sent++;
    const src = pool[n % pool.length]!;
    const b = Buffer.allocUnsafe(src.length);
    src.copy(b);
    const id = (n % 0x100000000).toString(16).padStart(8, '0');
    for (const at of offsets[n % pool.length]!) b.write(id, at, 'latin1');
    return b;
  };
  const pct = (xs: number[], p: number) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
  };

  // The sustainable rate: the most the server completes, 8 requests in flight so it never waits
  // for the sender, until its bus has drained; admission off so nothing is shed meanwhile.
  const probe = await forkKubevigil({ KUBEVIGIL_INGEST_MAX_QUEUE_DELAY: '0' });
  await closedLoop(`${probe.url}/ingest/k8s-audit`, 60, body);
  await probe.drained();
  const rounds: number[] = [];
  for (let round = 0; round < 3; round++) {
    const t0 = process.hrtime.bigint();
    await closedLoop(`${probe.url}/ingest/k8s-audit`, 150, body);
    await probe.drained();
    rounds.push(150 / (Number(process.hrtime.bigint() - t0) / 1e9));
  }
  await probe.stop();
  const sustainable = median(rounds);
  const offered = sustainable * FACTOR;

  const run = async (delay: string) => {
    const kv = await forkKubevigil({ KUBEVIGIL_INGEST_MAX_QUEUE_DELAY: delay });
    await closedLoop(`${kv.url}/ingest/k8s-audit`, 60, body);
    await kv.drained();
    const t = performance.now();
    const { answers, late } = await openLoop(`${kv.url}/ingest/k8s-audit`, offered, SECONDS, body);
    const wall = (performance.now() - t) / 1000;
    await kv.drained();
    await kv.stop();
    const ok = answers.filter((a) => a.status >= 200 && a.status < 300).map((a) => a.ms);
    const shed = answers.filter((a) => a.status === 503 || a.status === 429);
    return {
      p50: pct(ok, 50),
      p99: pct(ok, 99),
      accepted: ok.length,
      shedShare: shed.length / answers.length,
      withoutRetryAfter: shed.filter((a) => !a.retryAfter).length,
      other: answers.length - ok.length - shed.length,
      total: answers.length,
      wall,
      late,
    };
  };
  const off = await run('0');
  const on = await run(DELAY);
  const fmt = (r: typeof on) =>
    `accepted p50 ${Math.round(r.p50).toString().padStart(6)} ms  p99 ${Math.round(r.p99).toString().padStart(6)} ms   shed ${(r.shedShare * 100).toFixed(0).padStart(3)}%   goodput ${(r.accepted / r.wall).toFixed(1).padStart(5)} requests/s (${(r.accepted / r.wall / sustainable).toFixed(2)}× sustainable, over ${r.wall.toFixed(1)} s)   client late p99 ${Math.round(r.late)} ms${r.withoutRetryAfter ? `   ${r.withoutRetryAfter} refusals without Retry-After` : ''}${r.other ? `   ${r.other} failed requests` : ''}`;
  console.log(
    `admission: audit batches of 400 events; sustainable ${sustainable.toFixed(1)} requests/s (closed loop, 8 in flight, until drained, median of 3); offered ${FACTOR}× = ${offered.toFixed(1)} requests/s open-loop for ${SECONDS} s (${off.total} requests)`,
  );
  console.log(`  queue-delay admission off (baseline)  ${fmt(off)}`);
  console.log(`  queue-delay admission on (${DELAY})${' '.repeat(Math.max(0, 11 - DELAY.length))}${fmt(on)}`);
  console.log(`  ratio p99 (on / off) ${(on.p99 / off.p99).toFixed(2)}   target: p99 < 1000 ms at ${FACTOR}×`);
  console.log(`admission p99 at ${FACTOR}x load: ${Math.round(on.p99)} ms (baseline without queue-delay admission: ${Math.round(off.p99)} ms)`);
}

const CASES: Record<string, () => void | Promise<void>> = {
  detection: detectionCase,
  inventory: inventoryCase,
  correlation: correlationCase,
  e2e: e2eCase,
  receivers: receiversCase,
  kafka: kafkaCase,
  pathological: pathologicalCase,
  admission: admissionCase,
  esper: async () => (await import('./esper.js')).esperCase(),
  memory: async () => (await import('./memory.js')).memoryCase(),
  'drain-work': async () => (await import('./drain-work.js')).drainWorkCase(),
};
// The V8 flags a kubevigil sets when it starts serving (KUBEVIGIL_V8_FLAGS) are the process's: set
// them before any case, so that every baseline runs under the same V8 as the kubevigils next to it.
{
  const { loadConfig } = await import('../services/config.js');
  const { applyV8Flags } = await import('../services/v8-flags.js');
  applyV8Flags(loadConfig({ KUBEVIGIL_V8_FLAGS: process.env.KUBEVIGIL_V8_FLAGS }).v8Flags);
}
const wanted = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(CASES);
for (const name of wanted) {
  const run = CASES[name];
  if (!run) {
    console.error(`unknown bench case ${name}; cases: ${Object.keys(CASES).join(', ')}`);
    process.exit(2);
  }
  await run();
}
