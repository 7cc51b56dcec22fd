import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { syntheticAuditEvents } from '../../connectors/k8s-audit/synth.js';
import { loadRules } from '../rules.js';
import { BodyScavenger, scavenge } from './body-scavenge.js';
import { DetectionPool } from './pool.js';

describe('BodyScavenger', () => {
  it('collects once for every `every` bytes of bodies, and starts counting again after', () => {
    let runs = 0;
    const s = new BodyScavenger(10, () => runs++);
    s.note(4);
    s.note(5);
    expect(runs).toBe(0);
    s.note(1);
    expect(runs).toBe(1);
    s.note(9);
    expect(runs).toBe(1);
    s.note(30); // one large body: one collection, not three
    expect(runs).toBe(2);
    expect(s.runs).toBe(2);
  });

  it('runs a real young-generation collection', async () => {
    const minor = new Promise<PerformanceEntry>((resolve) => {
      const obs = new PerformanceObserver((list) => {
        const e = list.getEntries().find((g) => (g as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR);
        if (e) {
          obs.disconnect();
          resolve(e);
        }
      });
      obs.observe({ entryTypes: ['gc'] });
    });
    scavenge();
    expect((await minor).entryType).toBe('gc');
  });

  it('is told the size of each body the pool hands to a worker, read before the transfer empties it', async () => {
    const body = () => Buffer.from(JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: syntheticAuditEvents(50, { seed: 3 }) }));
    const size = body().byteLength;
    const seen: number[] = [];
    const scavenger = new BodyScavenger(2 * size, () => seen.push(size));
    const pool = new DetectionPool(
      1,
      { files: loadRules().detectionFiles!, minSeverity: 'info' },
      { publishDetected: async () => ({ signals: 0 }) },
      { scavenger },
    );
    try {
      for (let i = 0; i < 4; i++) {
        const b = body();
        expect(b.byteOffset === 0 && b.byteLength === b.buffer.byteLength).toBe(true); // moved, not copied
        const answer = await pool.detect(b, false, Date.now());
        expect(answer).not.toHaveProperty('problem');
        expect(b.byteLength).toBe(0); // the transfer detached it
      }
      expect(scavenger.runs).toBe(2);
    } finally {
      await pool.stop();
    }
  });
});
