import { describe, expect, it } from 'vitest';
import { attackEvents, SEED_SCENARIO } from '../connectors/k8s-audit/scenario.js';
import { normalizeAuditEvent } from '../connectors/k8s-audit/normalize.js';
import type { Incident } from '../correlator/incident.js';
import type { Signal } from '../correlator/signal.js';
import { RewindError, type BusMessage } from './bus/bus.js';
import { PartitionedCorrelator, type SignalsMessage } from './correlate-partitioned.js';
import { createLogger } from './logging.js';
import { loadDetector, loadRules } from './rules.js';
import { MemoryCorrelatorState } from './store/correlator-state.js';

const rules = loadRules();
const detector = loadDetector();

function seedSignals(): Signal[] {
  return attackEvents(SEED_SCENARIO).flatMap((e) => detector.detect(normalizeAuditEvent(e, e.stageTimestamp ? Date.parse(e.stageTimestamp) : 0)));
}

function correlator(state: MemoryCorrelatorState, published: Incident[], clock = { now: () => SEED_SCENARIO.start }, failPublishes = 0) {
  let failures = failPublishes;
  return new PartitionedCorrelator({
    correlations: rules.correlations,
    state,
    publish: async (incs) => {
      if (failures-- > 0) throw new Error('incidents topic unavailable (test)');
      published.push(...incs);
    },
    clock,
    logger: createLogger('silent'),
  });
}

const asMessages = (signals: Signal[], from = 0): BusMessage<SignalsMessage>[] => signals.map((s, i) => ({ key: s.actor.key, value: s, partition: 3, offset: String(from + i) }));
const latest = (published: Incident[]) => {
  const m = new Map<string, Incident>();
  for (const i of published) if ((m.get(i.id)?.version ?? -1) <= i.version) m.set(i.id, i);
  return [...m.values()].filter((i) => i.resolution !== 'merged');
};

describe('PartitionedCorrelator', () => {
  const signals = seedSignals();

  it('produces the same incident when a second correlator takes the partition over half way', async () => {
    const single: Incident[] = [];
    await correlator(new MemoryCorrelatorState(), single).handle(asMessages(signals));

    const state = new MemoryCorrelatorState();
    const split: Incident[] = [];
    const cut = Math.floor(signals.length / 2);
    await correlator(state, split).handle(asMessages(signals.slice(0, cut)));
    const b = correlator(state, split);
    // The new owner gets everything since the last committed offset again, part of it already applied.
    await b.handle(asMessages(signals.slice(cut - 2), cut - 2));
    expect(b.stats).toMatchObject({ loads: 1, skipped: 2 });

    const [one] = latest(single);
    const [two] = latest(split);
    expect(latest(split)).toHaveLength(1);
    expect(two!.id).toBe(one!.id);
    expect(two!.signalCount).toBe(one!.signalCount);
    expect(two!.correlations.map((c) => c.ruleId).sort()).toEqual(one!.correlations.map((c) => c.ruleId).sort());
    expect(two!.severity).toBe(one!.severity);
  });

  it('fails the batch while the state store is down, and applies it once when it is back', async () => {
    const state = new MemoryCorrelatorState();
    const published: Incident[] = [];
    const c = correlator(state, published);
    await c.handle(asMessages(signals.slice(0, 3)));
    state.down = true;
    await expect(c.handle(asMessages(signals.slice(3), 3))).rejects.toThrow(/of correlator state failed/);
    state.down = false;
    await c.handle(asMessages(signals.slice(3), 3)); // the bus redelivers the same batch
    const [inc] = latest(published);
    expect(inc!.signalCount).toBe(signals.length);
    const reloaded = await state.load(3);
    expect(reloaded.offset).toBe(String(signals.length - 1));
    expect(reloaded.incidents.map((i) => i.signalCount)).toEqual([signals.length]);
  });

  it('applies lifecycle commands in order with the signals, and rejects invalid ones', async () => {
    const state = new MemoryCorrelatorState();
    const published: Incident[] = [];
    const c = correlator(state, published);
    await c.handle(asMessages(signals));
    const id = latest(published)[0]!.id;
    const cmd = (to: 'acknowledged' | 'resolved', offset: number): BusMessage<SignalsMessage> => ({ key: 'sa:frontend/frontend', partition: 3, offset: String(offset), value: { command: 'transition', incidentId: id, to, note: 'n' } });
    await c.handle([cmd('acknowledged', signals.length), cmd('acknowledged', signals.length + 1), cmd('resolved', signals.length + 2)]);
    expect(c.stats.commandsRejected).toBe(1);
    const final = latest(published).find((i) => i.id === id)!;
    expect(final.status).toBe('resolved');
    expect((await state.load(3)).incidents).toEqual([]);
  });

  it('applies batches in memory and makes them durable in one checkpoint per flush', async () => {
    const state = new MemoryCorrelatorState();
    const published: Incident[] = [];
    const c = correlator(state, published);
    const third = Math.ceil(signals.length / 3);
    for (let i = 0; i < signals.length; i += third) await c.apply(asMessages(signals.slice(i, i + third), i));
    // Nothing is published or checkpointed before the flush: the bus commits nothing yet either.
    expect(published).toEqual([]);
    expect((await state.load(3)).offset).toBeUndefined();
    await c.flush(3);
    expect((await state.load(3)).offset).toBe(String(signals.length - 1));
    const [inc] = latest(published);
    expect(inc!.signalCount).toBe(signals.length);
    // Finalized once per flush, not once per batch: a new incident's first published version is 1.
    expect(published.filter((i) => i.id === inc!.id).map((i) => i.version)).toEqual([1]);
  });

  it('checkpoints before it publishes; a new owner publishes the last checkpoint again on load', async () => {
    const state = new MemoryCorrelatorState();
    const lost: Incident[] = [];
    // The checkpoint lands, the publish fails, and the correlator dies before a retry.
    await expect(correlator(state, lost, undefined, 1).handle(asMessages(signals))).rejects.toThrow(/incidents topic unavailable/);
    expect(lost).toEqual([]);
    expect((await state.load(3)).offset).toBe(String(signals.length - 1));
    const published: Incident[] = [];
    const b = correlator(state, published);
    await b.handle(asMessages(signals.slice(-1), signals.length - 1)); // redelivered after the last commit
    expect(b.stats.skipped).toBe(1);
    const [inc] = latest(published);
    expect(inc!.signalCount).toBe(signals.length);
  });

  it('a sweep that finds the checkpoint moved on makes the next flush rewind instead of committing', async () => {
    const state = new MemoryCorrelatorState();
    const a = correlator(state, []);
    const cut = Math.floor(signals.length / 2);
    await a.handle(asMessages(signals.slice(0, cut)));
    await a.apply(asMessages(signals.slice(cut, cut + 2), cut)); // applied, not flushed
    await correlator(state, []).handle(asMessages(signals.slice(cut, cut + 1), cut)); // another owner saved
    expect(await a.sweep()).toEqual([]);
    expect(a.partitions).toEqual([]);
    // The bus still holds a's two unflushed messages: they must be offered again, not committed.
    await expect(a.flush(3)).rejects.toBeInstanceOf(RewindError);
    await a.flush(3); // once rewound, nothing is pending
  });

  it('of two correlators that both hold a partition, the first to checkpoint wins, also for a sweep', async () => {
    const state = new MemoryCorrelatorState();
    let now = SEED_SCENARIO.start;
    const clock = { now: () => now };
    const fromA: Incident[] = [];
    const a = correlator(state, fromA, clock);
    const cut = signals.length - 1;
    await a.handle(asMessages(signals.slice(0, cut)));
    // B takes the partition over and applies a signal; before B flushes, A (which lost the
    // partition without noticing) sweeps an hour later and resolves the incident.
    const fromB: Incident[] = [];
    const b = correlator(state, fromB, clock);
    await b.apply(asMessages(signals.slice(cut), cut));
    const loaded = fromB.length; // what B published on load: A's last checkpoint again
    now += 3_600_000;
    const resolved = await a.sweep();
    expect(resolved.map((i) => i.status)).toEqual(['resolved']);
    // B's copy is now stale: it must not publish an open version of the incident A resolved.
    await expect(b.flush(3)).rejects.toBeInstanceOf(RewindError);
    expect(fromB.length).toBe(loaded);
    // Offered the message again, B rebuilds from A's checkpoint: one story, no conflicting versions.
    await b.handle(asMessages(signals.slice(cut), cut));
    // Every id@version published means one content, whoever published it.
    const byVersion = new Map<string, string>();
    for (const i of [...fromA, ...fromB]) {
      const seen = byVersion.get(`${i.id}@${i.version}`);
      if (seen !== undefined) expect(JSON.stringify(i), `${i.id}@${i.version}`).toBe(seen);
      byVersion.set(`${i.id}@${i.version}`, JSON.stringify(i));
    }
    expect([...byVersion.keys()].some((k) => k.endsWith('@' + String(resolved[0]!.version)))).toBe(true);
  });

  it('refuses to overwrite a checkpoint that moved on, and rebuilds from it after the rewind', async () => {
    const state = new MemoryCorrelatorState();
    const fromA: Incident[] = [];
    const a = correlator(state, fromA);
    const cut = Math.floor(signals.length / 2);
    await a.handle(asMessages(signals.slice(0, cut)));
    // A pauses with changes applied but not flushed; meanwhile B owned the partition and saved.
    await a.apply(asMessages(signals.slice(cut, cut + 1), cut));
    await correlator(state, []).handle(asMessages(signals.slice(cut, signals.length - 1), cut));
    const saved = await state.load(3);
    const before = fromA.length;
    await expect(a.flush(3)).rejects.toBeInstanceOf(RewindError);
    expect(fromA.length, 'a stale copy publishes nothing').toBe(before);
    expect(a.stats.stale).toBe(1);
    expect(a.partitions).toEqual([]);
    expect(await state.load(3)).toEqual(saved);
    // The bus offers everything since A's last commit again: A reloads B's checkpoint and skips what it holds.
    await a.handle(asMessages(signals.slice(cut), cut));
    expect(a.stats.skipped).toBe(signals.length - 1 - cut);
    const [inc] = latest(fromA);
    expect(inc!.signalCount).toBe(signals.length);
  });

  it('notices that another correlator moved the partition on: no stale sweeps, reload on return', async () => {
    const state = new MemoryCorrelatorState();
    const fromA: Incident[] = [];
    const a = correlator(state, fromA);
    const cut = Math.floor(signals.length / 2);
    await a.handle(asMessages(signals.slice(0, cut)));
    // The partition moves to B, which goes on from the committed offset.
    const b = correlator(state, []);
    await b.handle(asMessages(signals.slice(cut, signals.length - 1), cut));
    // A's copy is stale: its sweep must not resolve (or delete) what B now owns.
    const before = fromA.length;
    expect(await a.sweep()).toEqual([]);
    expect(fromA.length).toBe(before);
    expect(a.partitions).toEqual([]);
    // The partition comes back to A: it reloads the checkpoint and carries on from there.
    await a.handle(asMessages(signals.slice(signals.length - 1), signals.length - 1));
    expect(a.stats.loads).toBe(2);
    const [inc] = latest(fromA);
    expect(inc!.signalCount).toBe(signals.length);
  });
});
