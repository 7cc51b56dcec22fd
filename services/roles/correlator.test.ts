import { describe, expect, it } from 'vitest';
import { attackEvents, SEED_SCENARIO } from '../../connectors/k8s-audit/scenario.js';
import { normalizeAuditEvent } from '../../connectors/k8s-audit/normalize.js';
import type { Incident } from '../../correlator/incident.js';
import { IncidentStream } from '../api/stream.js';
import { MemoryBus } from '../bus/memory.js';
import { topics } from '../bus/topics.js';
import { loadConfig } from '../config.js';
import { createLogger } from '../logging.js';
import { Metrics } from '../metrics.js';
import { loadDetector, loadRules } from '../rules.js';
import { MemoryCorrelatorState } from '../store/correlator-state.js';
import { MemoryStore } from '../store/memory.js';
import { UsageProfiler } from '../usage.js';
import { CorrelatorRole, Sweeper } from './correlator.js';
import type { Stage } from './stage.js';

const rules = loadRules();
const signals = attackEvents(SEED_SCENARIO).flatMap((e) => loadDetector().detect(normalizeAuditEvent(e, Date.parse(e.stageTimestamp ?? '') || 0)));
const correlatorMetrics = /^kubevigil_(correlator_signals_total|incident_updates_total|incidents_open|dropped_total\{component="correlation")/;

/** A correlator role of the given mode on an in-memory bus, with a clock the test moves. */
async function run(distributed: boolean) {
  const clock = { t: SEED_SCENARIO.start, now: () => clock.t };
  const bus = new MemoryBus();
  const t = topics('roletest');
  const metrics = new Metrics();
  const stage: Stage = {
    config: loadConfig({ KUBEVIGIL_DATA_DIR: '/nonexistent' }),
    logger: createLogger('silent'),
    metrics,
    clock,
    rules,
    topics: t,
    bus,
    distributed,
    store: new MemoryStore(),
    stream: new IncidentStream(),
    usage: new UsageProfiler(),
    instance: 'test',
  };
  const published: Incident[] = [];
  bus.subscribe(t.incidents, 'spy', async (batch) => {
    published.push(...batch.map((m) => m.value));
  });
  const role = new CorrelatorRole(stage, { sweepSchedule: false, correlatorState: new MemoryCorrelatorState() });
  await role.start();
  await bus.publish(
    t.signals,
    signals.map((s) => ({ key: s.actor.key, value: s })),
  );
  await bus.drained();
  const scrape = async () => (await metrics.scrape()).split('\n').filter((l) => correlatorMetrics.test(l));
  return { role, bus, clock, published, scrape, stage };
}

describe('the correlator role', () => {
  it('reports the same metrics embedded and distributed, before and after a sweep', async () => {
    const embedded = await run(false);
    const distributed = await run(true);
    expect(embedded.role.correlator).toBeDefined();
    expect(distributed.role.partitioned).toBeDefined();
    const before = await embedded.scrape();
    expect(before).toContain(`kubevigil_correlator_signals_total ${signals.length}`);
    expect(before.some((l) => /^kubevigil_incidents_open\{severity="critical"\} 1$/.test(l))).toBe(true);
    expect(await distributed.scrape()).toEqual(before);

    for (const r of [embedded, distributed]) {
      r.clock.t += 31 * 60_000;
      await new Sweeper(r.role.partitioned ?? r.role.correlator!, '* * * * *', r.stage.logger).sweepNow();
      await r.bus.drained();
      expect(r.published.at(-1)).toMatchObject({ status: 'resolved', resolution: 'quiet' });
    }
    const after = await embedded.scrape();
    expect(after.some((l) => /^kubevigil_incident_updates_total\{status="resolved",severity="critical"\} 1$/.test(l))).toBe(true);
    expect(after.some((l) => l.startsWith('kubevigil_incidents_open{'))).toBe(false);
    expect(await distributed.scrape()).toEqual(after);
    await embedded.role.stop();
    await distributed.role.stop();
  });
});

describe('Sweeper', () => {
  it('runs one sweep at a time, logs a failed one, and waits for the one in progress when it stops', async () => {
    let calls = 0;
    let release!: () => void;
    const errors: unknown[] = [];
    const logger = { error: (o: { err: unknown }) => errors.push(o.err) } as unknown as Stage['logger'];
    const sweeper = new Sweeper(
      {
        sweep: () => {
          calls++;
          return new Promise<Incident[]>((resolve, reject) => {
            release = () => (calls === 1 ? resolve([]) : reject(new Error('store down')));
          });
        },
      },
      '0 0 1 1 *',
      logger,
    );
    sweeper.start();
    const first = sweeper.sweepNow();
    const again = sweeper.sweepNow();
    expect(again).toBe(first);
    let stopped = false;
    const stopping = sweeper.stop().then(() => (stopped = true));
    await Promise.resolve();
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(calls).toBe(1);
    const second = sweeper.sweepNow();
    release();
    await second;
    expect(errors).toEqual([new Error('store down')]);
  });
});
