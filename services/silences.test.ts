import { describe, expect, it } from 'vitest';
import { signalFromSpec } from '../correlator/correlation/rule-tests.js';
import { SILENCE_LIMITS, type Silence } from '../correlator/silences.js';
import { createLogger } from './logging.js';
import { Metrics } from './metrics.js';
import { Silences } from './silences.js';
import { MemorySilences } from './store/memory.js';

const T = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;

function setup() {
  const clock = { t: T, now: () => clock.t };
  const metrics = new Metrics();
  const silences = new Silences(new MemorySilences(), clock, metrics, createLogger('silent'), { pollMs: 0 });
  return { clock, metrics, silences };
}

const silence = (id: string, startsAt: number, endsAt: number, actor = 'sa:ci/deployer'): Silence => ({
  id,
  matchers: [{ name: 'actor', value: actor, isRegex: false, isEqual: true }],
  startsAt,
  endsAt,
  createdBy: 'test',
  comment: 'test',
  updatedAt: startsAt,
});

describe('Silences', () => {
  it('silences while active, counts per silence, and expires a pending silence for good', async () => {
    const { clock, metrics, silences } = setup();
    await silences.start();
    await silences.create(silence('now', T, T + HOUR));
    await silences.create(silence('later', T + HOUR, T + 2 * HOUR, 'sa:ci/other'));
    const s = signalFromSpec({ kind: 'rbac.denied', actor: 'sa:ci/deployer' }, 0, [])!;
    const other = signalFromSpec({ kind: 'rbac.denied', actor: 'sa:ci/other' }, 1, [])!;
    expect(silences.silencer(s)).toBe('now');
    expect(silences.silencer(other)).toBeUndefined();
    clock.t = T + HOUR;
    expect(silences.silencer(s)).toBeUndefined();
    expect(silences.silencer(other)).toBe('later');
    expect(await metrics.scrape()).toMatch(/kubevigil_silenced_signals_total\{silence="now"\} 1\n/);
    expect(await metrics.scrape()).toMatch(/kubevigil_silences\{state="expired"\} 1\n/);

    clock.t = T - HOUR;
    expect((await silences.expire('later'))?.endsAt).toBe(T - HOUR);
    clock.t = T + HOUR + 1;
    expect(silences.silencer(other)).toBeUndefined();
    expect(await silences.expire('none')).toBeUndefined();
  });

  it(`refuses more than ${SILENCE_LIMITS.unexpired} unexpired silences, and drops expired ones beyond the history bound`, async () => {
    const { clock, metrics, silences } = setup();
    await silences.start();
    for (let i = 0; i < SILENCE_LIMITS.unexpired; i++) await silences.store.put(silence(`s${i}`, T, T + HOUR));
    expect(await silences.create(silence('one-too-many', T, T + HOUR))).toBeUndefined();
    await silences.refresh();
    expect(silences.silencer(signalFromSpec({ kind: 'rbac.denied', actor: 'sa:ci/deployer' }, 0, [])!)).toBe('s0');
    expect(await metrics.scrape()).toContain('kubevigil_silenced_signals_total{silence="s0"} 1');
    // An hour later they have all expired: kept for history, up to its bound; the oldest go first.
    clock.t = T + 2 * HOUR;
    expect(await silences.create(silence('fresh', clock.t, clock.t + HOUR))).toBeDefined();
    const later = silence('ended-later', T, T + HOUR + 1);
    await silences.store.put(later);
    expect((await silences.list()).length).toBe(1 + SILENCE_LIMITS.expiredKept);
    // Thirty days on, expired history is gone, and so are the counters of pruned silences.
    clock.t = T + 31 * 86_400_000;
    expect((await silences.list()).map((s) => s.id)).toEqual([]);
    await silences.refresh();
    expect(await metrics.scrape()).not.toContain('silence="s0"');
  });
});
