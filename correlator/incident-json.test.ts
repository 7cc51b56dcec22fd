import { describe, expect, it } from 'vitest';
import { CorrelationEngine } from './correlation/engine.js';
import { incidentJson } from './incident.js';
import { IncidentManager } from './incidents.js';
import { makeSignal } from '../services/store/store.contract.js';

describe('incidentJson', () => {
  it('is exactly JSON.stringify, version after version, as entries come and go past the timeline bound', () => {
    let now = Date.UTC(2026, 0, 1);
    const m = new IncidentManager(new CorrelationEngine([]), { now: () => now }, { limits: { maxTimeline: 6, maxEntities: 500 } });
    const seen: string[] = [];
    for (let i = 0; i < 12; i++) {
      now += 1000;
      // Out of order now and then: entries are inserted in the middle, and the middle is dropped.
      const at = now - (i % 3 === 2 ? 5000 : 0);
      const { incidents } = m.process([makeSignal(`a-${i}`, at, { title: `read ${i} "quoted" \u2028 line` })]);
      for (const inc of incidents) {
        const json = incidentJson(inc);
        expect(json).toBe(JSON.stringify(inc));
        seen.push(json);
      }
    }
    expect(seen.length).toBeGreaterThan(1);
    expect(JSON.parse(seen.at(-1)!).timeline).toHaveLength(6);
  });

  it('writes an incident with an empty timeline', () => {
    const inc = { id: 'x', timeline: [], note: undefined, v: 2 } as unknown as Parameters<typeof incidentJson>[0];
    expect(incidentJson(inc)).toBe(JSON.stringify(inc));
  });
});
