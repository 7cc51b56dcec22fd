/**
 * Case "memory": the correlator's state per active actor at 100,000 actors.
 *
 * The stream is the correlation case's (`correlationSignalStream` of bench/esper.ts: its 400,000
 * signals, 200 a second of event time, 1% of the actors compromised) over 100,000 actors, made one
 * batch at a time and dropped once processed, so what stays alive is only what the correlator
 * retains: engine windows, incidents, prologues and the ids kept to drop redeliveries (signals
 * packed, see correlator/correlation/packed.ts; the engine alone packs as the manager has it do). Every bound
 * is raised so that nothing is evicted, except the redelivery ids (their own bound, which does not
 * depend on the actors: they are measured apart, as a set of as many ids). Heap used is measured
 * after full garbage collections before and after; the engine alone is measured too, on the same
 * stream, and one signal object of the stream, to read the figures by. Heap used counts the memory
 * of array buffers too (typed arrays keep their contents outside the heap).
 *
 * Needs `--expose-gc` (`npm run bench` passes it). Environment: BENCH_MEMORY_ACTORS (100,000),
 * BENCH_SIGNALS (400,000, as the correlation case).
 */
import type { Signal } from '../correlator/signal.js';

const BATCH = 500;

function heapUsed(): number {
  const gc = (globalThis as { gc?: (opts?: unknown) => void }).gc;
  if (!gc) throw new Error('the memory case needs node --expose-gc (npm run bench passes it)');
  // Several rounds: weak maps and finalizers free more on a later one.
  for (let i = 0; i < 4; i++) gc();
  // Typed arrays (the redelivery ids' tables) live outside the heap: counted too.
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

export async function memoryCase(): Promise<void> {
  const { CorrelationEngine } = await import('../correlator/correlation/engine.js');
  const { IncidentManager } = await import('../correlator/incidents.js');
  const { correlationSignalStream } = await import('./esper.js');
  const { loadRules } = await import('../services/rules.js');
  const rules = loadRules();
  const ACTORS = Number(process.env.BENCH_MEMORY_ACTORS ?? 100_000);
  const M = Number(process.env.BENCH_SIGNALS ?? 400_000);
  // Nothing evicted: every bound far above what the stream needs.
  const engineLimits = { maxGroups: 1e9, maxEntries: 1e9, maxPerGroup: 1e6 };
  const policy = { lookbackActors: 1e9, lookbackTotal: 1e9, maxOpenIncidents: 1e9, floodActors: 1e9 };
  const DEDUP = 500_000;

  /** Feeds the stream in batches; `each` sees one batch, which is dropped after. */
  const feed = async (m: number, each: (batch: Signal[]) => void): Promise<void> => {
    const stream = await correlationSignalStream(m, ACTORS);
    let batch: Signal[] = [];
    for (const s of stream) {
      batch.push(s);
      if (batch.length === BATCH) {
        each(batch);
        batch = [];
      }
    }
    if (batch.length) each(batch);
  };
  const seen = new Uint8Array(ACTORS);
  const actorIndex = (s: Signal) => Number(s.actor.key.slice(s.actor.key.lastIndexOf('-') + 1));
  const managerOf = (dedupEntries: number) => {
    let now = 0;
    const m = new IncidentManager(new CorrelationEngine(rules.correlations, engineLimits), { now: () => now }, { ...policy, dedupEntries });
    return {
      m,
      each: (batch: Signal[]) => {
        now = batch[0]!.eventTime;
        m.process(batch);
      },
    };
  };

  // Warm-up (code compiled, lazy module state built) on a short stream, kept nothing.
  {
    const { each } = managerOf(DEDUP);
    await feed(Math.min(M, 20_000), each);
  }

  // The engine alone.
  const before = heapUsed();
  let engine: InstanceType<typeof CorrelationEngine> | undefined = new CorrelationEngine(rules.correlations, engineLimits);
  // As the incident manager runs it: windows keep signals packed.
  engine.packSignals();
  await feed(M, (batch) => {
    for (const s of batch) {
      seen[actorIndex(s)] = 1;
      engine!.process(s);
    }
  });
  const engineBytes = heapUsed() - before;
  const groups = engine.size;
  const entries = engine.entries;
  const engineEvicted = engine.stats.evictedGroups + engine.stats.evictedEntries;
  engine = undefined;
  const active = seen.reduce((a, b) => a + b, 0);

  // The manager: engine + incidents + prologues + redelivery ids.
  const run = async (dedup: number) => {
    const start = heapUsed();
    const mg = managerOf(dedup);
    await feed(M, mg.each);
    const bytes = heapUsed() - start;
    const m = mg.m;
    const b = m.budget();
    const out = {
      bytes,
      open: b.openIncidents.used,
      prologue: b.prologueSignals.used,
      stats: { ...m.stats },
      evicted: m.correlation.stats.evictedGroups + m.correlation.stats.evictedEntries,
      groups: m.correlation.size,
    };
    return out;
  };
  const full = await run(DEDUP);
  // The redelivery ids alone: as many ids of the stream in the same bounded set.
  const { RecentIds } = await import('../correlator/recent-ids.js');
  let ids: InstanceType<typeof RecentIds> | undefined;
  let start = heapUsed();
  ids = new RecentIds(DEDUP);
  await feed(Math.min(M, DEDUP), (batch) => {
    for (const s of batch) ids!.add(s.id);
  });
  const idBytes = heapUsed() - start;
  ids = undefined;
  // One signal of the stream, as the windows and prologues hold it.
  const SAMPLE = 20_000;
  let sample: Signal[] | undefined = [];
  start = heapUsed();
  await feed(SAMPLE, (batch) => sample!.push(...batch));
  const signalBytes = (heapUsed() - start) / SAMPLE;
  sample = undefined;
  const lean = { bytes: full.bytes - idBytes };

  const per = (n: number) => Math.round(n / active);
  console.log(
    `memory: ${M.toLocaleString('en-US')} signals from ${ACTORS.toLocaleString('en-US')} actors (${active.toLocaleString('en-US')} seen), ${rules.correlations.length} correlation rules, ` +
      `bounds raised (engine maxGroups/maxEntries 1e9, maxPerGroup 1e6; lookbackActors/lookbackTotal/maxOpenIncidents/floodActors 1e9; redelivery ids ${DEDUP.toLocaleString('en-US')})`,
  );
  console.log(
    `  held: ${groups.toLocaleString('en-US')} engine groups, ${entries.toLocaleString('en-US')} window entries, ${full.open.toLocaleString('en-US')} open incidents, ` +
      `${full.prologue.toLocaleString('en-US')} prologue signals; evicted: engine ${engineEvicted}, manager ${full.evicted + full.stats.evicted + full.stats.prologueEvicted + full.stats.refused}`,
  );
  console.log(
    `memory per actor: ${per(full.bytes)} bytes (${active} actors, engine + incidents + prologues + redelivery ids; heap used after GC, ${(full.bytes / 2 ** 20).toFixed(1)} MiB)   target ≤ 2048`,
  );
  console.log(`  engine alone                   ${String(per(engineBytes)).padStart(6)} bytes per actor (${(engineBytes / 2 ** 20).toFixed(1)} MiB)`);
  console.log(
    `  incidents + prologues          ${String(per(lean.bytes - engineBytes)).padStart(6)} bytes per actor (manager without redelivery ids, less the engine)`,
  );
  console.log(
    `  redelivery ids (bounded apart) ${String(per(idBytes)).padStart(6)} bytes per actor (${Math.min(DEDUP, M).toLocaleString('en-US')} ids, whatever the actors: ${Math.round(idBytes / Math.min(DEDUP, M))} bytes per id)`,
  );
  console.log(
    `  one signal of the stream        ${String(Math.round(signalBytes)).padStart(5)} bytes (without evidence; windows and prologues hold signals, shared between them)`,
  );
  console.log(`memory per actor without redelivery ids: ${per(lean.bytes)} bytes`);
}
