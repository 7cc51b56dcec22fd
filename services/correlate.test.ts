import { describe, expect, it } from 'vitest';
import { CorrelationEngine } from '../correlator/correlation/engine.js';
import type { Incident } from '../correlator/incident.js';
import { IncidentManager } from '../correlator/incidents.js';
import { writtenJson } from './bus/bus.js';
import { Correlator } from './correlate.js';
import { createLogger } from './logging.js';
import { MemoryStore } from './store/memory.js';
import { makeSignal } from './store/store.contract.js';

describe('Correlator', () => {
  it('writes and publishes snapshots: a later batch changes neither an earlier version nor the JSON written for it', async () => {
    let now = Date.UTC(2026, 0, 1);
    const manager = new IncidentManager(new CorrelationEngine([]), { now: () => now }, {});
    const published: Incident[] = [];
    const store = new MemoryStore();
    const c = new Correlator(manager, store, async (batch) => void published.push(...batch), createLogger('silent'));
    await c.handle([makeSignal('a-1', now)]);
    now += 1000;
    await c.handle([makeSignal('a-2', now), makeSignal('a-3', now + 1)]);
    expect(published.map((i) => [i.version, i.timeline.length, i.signalCount])).toEqual([
      [1, 1, 1],
      [2, 3, 3],
    ]);
    for (const inc of published) expect(writtenJson(inc)).toBe(JSON.stringify(inc));
    expect((await store.get(published[0]!.id))?.timeline).toHaveLength(3);
  });
});
