import { describe, expect, it } from 'vitest';
import { Metrics } from './metrics.js';

describe('Metrics', () => {
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
});
