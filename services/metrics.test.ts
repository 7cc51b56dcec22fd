import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { Silence } from '../correlator/silences.js';
import { systemClock } from '../correlator/ports.js';
import { createLogger } from './logging.js';
import { Metrics } from './metrics.js';
import { Silences } from './silences.js';
import { MemorySilences } from './store/memory.js';
import { VERSION } from './package-info.js';

describe('Metrics', () => {
  it('merges the registries of worker threads into its scrape: counters summed, build info once, known silences as their maximum', async () => {
    const main = new Metrics();
    const workers = [new Metrics(), new Metrics()];
    main.correlatedSignals.inc(0);
    workers[0]!.correlatedSignals.inc(30);
    workers[1]!.correlatedSignals.inc(12);
    workers[0]!.openIncidents.set({ severity: 'high' }, 2);
    workers[1]!.openIncidents.set({ severity: 'high' }, 3);
    // Every thread knows the same silences (the workers get the main thread's): the process knows 2, not 6.
    const now = Date.now();
    const known: Silence[] = ['a', 'b'].map((id) => ({
      id,
      matchers: [{ name: 'actor', value: `sa:ci/${id}`, isRegex: false, isEqual: true }],
      startsAt: now - 1000,
      endsAt: now + 3_600_000,
      createdBy: 'test',
      comment: 'test',
      updatedAt: now,
    }));
    for (const m of [main, ...workers]) new Silences(new MemorySilences(), systemClock, m, createLogger('silent'), { pollMs: 0 }).setFileSilences(known);
    for (const w of workers) main.addRemote((name) => (name === undefined ? w.collect() : w.one(name)));
    const text = await main.scrape();
    expect(text).toMatch(/^kubevigil_correlator_signals_total 42$/m);
    expect(text).toMatch(/^kubevigil_incidents_open\{severity="high"\} 5$/m);
    expect(text).toMatch(/^kubevigil_silences\{state="active"\} 2$/m);
    expect(text.match(/^kubevigil_build_info\{.*\} 1$/gm)).toHaveLength(1);
    expect(await main.total('kubevigil_correlator_signals_total')).toBe(42);
  });

  it('adds what components dropped since the last scrape to kubevigil_dropped_total', async () => {
    const m = new Metrics();
    let evicted = 5;
    m.trackDrops('correlation', 'group_evicted', () => evicted);
    expect(await m.registry.metrics()).not.toMatch(/kubevigil_dropped_total\{/);
    evicted = 12;
    expect(await m.registry.metrics()).toMatch(/kubevigil_dropped_total\{component="correlation",reason="group_evicted"\} 7/);
    evicted = 13;
    expect(await m.registry.metrics()).toMatch(/kubevigil_dropped_total\{component="correlation",reason="group_evicted"\} 8/);
  });

  it('says which version runs in kubevigil_build_info, and keeps the standard process and Node.js metric names', async () => {
    const text = await new Metrics({ processMetrics: true }).registry.metrics();
    expect(text).toContain(`kubevigil_build_info{version="${VERSION}",nodejs_version="${process.versions.node}"} 1`);
    expect(text).toMatch(/^process_cpu_seconds_total \d/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_p99_seconds \d/m);
    expect(text).not.toMatch(/^kubevigil_(process|nodejs)_/m);
  });

  // promtool comes with Debian's prometheus package, which the test script installs.
  const promtool = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' }).stdout.trim();
  it.skipIf(!promtool)('passes promtool check metrics: names, units, help and types as Prometheus wants them', async () => {
    const m = new Metrics({ processMetrics: true });
    m.trackDrops('correlation', 'group_evicted', () => 1);
    const r = spawnSync(promtool, ['check', 'metrics'], { input: await m.scrape(), encoding: 'utf8', timeout: 30_000 });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
