import { describe, expect, it } from 'vitest';
import { attackEvents, SEED_SCENARIO } from '../connectors/k8s-audit/scenario.js';
import { normalizeAuditEvent } from '../connectors/k8s-audit/normalize.js';
import type { Incident } from '../correlator/incident.js';
import type { Signal } from '../correlator/signal.js';
import type { BusMessage } from './bus/bus.js';
import type { SignalsMessage } from './bus/topics.js';
import { PartitionedCorrelator } from './correlate-partitioned.js';
import { createLogger } from './logging.js';
import { loadDetector, loadRules } from './rules.js';
import { MemoryCorrelatorState } from './store/correlator-state.js';
import type { CompiledCorrelation } from '../correlator/correlation/rules.js';

const rules = loadRules();
const detector = loadDetector();
const signals: Signal[] = attackEvents(SEED_SCENARIO).flatMap((e) =>
  detector.detect(normalizeAuditEvent(e, e.stageTimestamp ? Date.parse(e.stageTimestamp) : 0)),
);
const asMessages = (list: Signal[], from = 0): BusMessage<SignalsMessage>[] =>
  list.map((s, i) => ({ key: s.actor.key, value: s, partition: 3, offset: String(from + i) }));

function correlator(correlations: readonly CompiledCorrelation[], published: Incident[]) {
  return new PartitionedCorrelator({
    correlations,
    state: new MemoryCorrelatorState(),
    publish: async (incs) => void published.push(...incs),
    clock: { now: () => SEED_SCENARIO.start },
    logger: createLogger('silent'),
  });
}
const matched = (published: Incident[]) => [...new Set(published.flatMap((i) => i.correlations.map((c) => c.ruleId)))].sort();

describe('PartitionedCorrelator.replaceCorrelations (a rule reload)', () => {
  const run = async (correlations: readonly CompiledCorrelation[], parts: [number, number][], between?: (c: PartitionedCorrelator) => void) => {
    const published: Incident[] = [];
    const c = correlator(correlations, published);
    for (const [i, [a, b]] of parts.entries()) {
      if (i > 0) between?.(c);
      await c.handle(asMessages(signals.slice(a, b), a));
    }
    return matched(published);
  };
  const all = signals.length;

  // Cuts where a correlation needs signals from both sides (seed attack: the secret listing, then the reads; the denial, then the escalation).
  it.each([4, 13])('keeps every window across a reload that keeps the correlations (cut at signal %i)', async (cut) => {
    const whole = await run(rules.correlations, [[0, all]]);
    const apart = new Set([...(await run(rules.correlations, [[0, cut]])), ...(await run(rules.correlations, [[cut, all]]))]);
    expect(whole.filter((id) => !apart.has(id)).length, 'a correlation spans the cut').toBeGreaterThan(0);
    let result = { kept: 0, dropped: -1 };
    // The same correlations in another order: every window moves to its new position.
    const reloaded = await run(
      rules.correlations,
      [
        [0, cut],
        [cut, all],
      ],
      (c) => (result = c.replaceCorrelations([...rules.correlations].reverse())),
    );
    expect(result.kept).toBeGreaterThan(0);
    expect(result.dropped).toBe(0);
    expect(reloaded).toEqual(whole);
  });

  it('drops the windows of a correlation the new rules no longer have', async () => {
    const without = rules.correlations.filter((c) => c.id !== 'zt-secret-list-then-use');
    expect(without.length).toBe(rules.correlations.length - 1);
    // Removed, then added back: its window from before is gone, so the pattern across the cut is not seen.
    const sets = [without, rules.correlations];
    const result = await run(
      rules.correlations,
      [
        [0, 4],
        [4, 4],
        [4, all],
      ],
      (c) => void c.replaceCorrelations(sets.shift()!),
    );
    expect(result).not.toContain('zt-secret-list-then-use');
    expect(await run(rules.correlations, [[0, all]])).toContain('zt-secret-list-then-use');
  });
});
