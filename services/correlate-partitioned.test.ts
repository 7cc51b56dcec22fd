import { describe, expect, it } from 'vitest';
import { KubevigilError } from '../correlator/errors.js';
import { attackEvents, SEED_SCENARIO } from '../connectors/k8s-audit/scenario.js';
import { normalizeAuditEvent } from '../connectors/k8s-audit/normalize.js';
import type { Incident } from '../correlator/incident.js';
import { withoutEvidence, type Signal } from '../correlator/signal.js';
import { IdentityBaseline } from '../correlator/baseline.js';
import { syntheticAuditEvents } from '../connectors/k8s-audit/synth.js';
import { RewindError, writtenJson, type BusMessage } from './bus/bus.js';
import { MemoryBus } from './bus/memory.js';
import { sharedPartStats } from './bus/signal-reader.js';
import { encodeSignalsMessage, parseSignalsMessageWithoutEvidence, topics, type SignalsMessage } from './bus/topics.js';
import { PartitionedCorrelator, type PartitionedCorrelatorOptions, type SignalHistory, type SignalSource } from './correlate-partitioned.js';
import { createLogger } from './logging.js';
import { BusCommands } from './roles/bus-commands.js';
import { Metrics } from './metrics.js';
import { loadDetector, loadRules } from './rules.js';
import { isRef, markedGeneration, MemoryCorrelatorState, type StoredSignal } from './store/correlator-state.js';
import { MemoryStore } from './store/memory.js';

const rules = loadRules();
const detector = loadDetector();

function seedSignals(): Signal[] {
  return attackEvents(SEED_SCENARIO).flatMap((e) => detector.detect(normalizeAuditEvent(e, e.stageTimestamp ? Date.parse(e.stageTimestamp) : 0)));
}

function correlator(
  state: MemoryCorrelatorState,
  published: Incident[],
  clock = { now: () => SEED_SCENARIO.start },
  failPublishes = 0,
  extra: Partial<PartitionedCorrelatorOptions> = {},
) {
  let failures = failPublishes;
  return new PartitionedCorrelator({
    ...extra,
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

const asMessages = (signals: Signal[], from = 0): BusMessage<SignalsMessage>[] =>
  signals.map((s, i) => ({ key: s.actor.key, value: s, partition: 3, offset: String(from + i) }));
/** Partition 3 of the signals topic as Kafka keeps it: readable by offset. Records every read. */
class TopicPartition implements SignalSource {
  readonly reads: { partition: number; offsets: string[] }[] = [];
  constructor(private readonly messages: Map<string, SignalsMessage>) {}
  async read(partition: number, offsets: readonly string[]): Promise<Map<string, SignalsMessage>> {
    this.reads.push({ partition, offsets: [...offsets] });
    const out = new Map<string, SignalsMessage>();
    for (const o of offsets) {
      const m = partition === 3 ? this.messages.get(o) : undefined;
      // A copy, as a fresh decode of the message would be.
      if (m) out.set(o, structuredClone(m));
    }
    return out;
  }
}
const topicOf = (msgs: BusMessage<SignalsMessage>[]) => new TopicPartition(new Map(msgs.map((m) => [m.offset!, m.value])));

/** Every signal a checkpoint holds in windows and prologues. */
async function storedSignals(state: MemoryCorrelatorState): Promise<StoredSignal[]> {
  const st = await state.load(3);
  return [...st.slots.flatMap(([, slot]) => Object.values(slot.signals)), ...st.prologue.flatMap(([, list]) => list)];
}

const latest = (published: Incident[]) => {
  const m = new Map<string, Incident>();
  for (const i of published) if ((m.get(i.id)?.version ?? -1) <= i.version) m.set(i.id, i);
  return [...m.values()].filter((i) => i.resolution !== 'merged');
};

describe('PartitionedCorrelator', () => {
  const signals = seedSignals();

  /** Correlator A has handled (and checkpointed) the first half of the seed signals. */
  async function firstHalfByA() {
    const state = new MemoryCorrelatorState();
    const fromA: Incident[] = [];
    const a = correlator(state, fromA);
    const cut = Math.floor(signals.length / 2);
    await a.handle(asMessages(signals.slice(0, cut)));
    return { state, fromA, a, cut };
  }

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

  describe('with the signals topic as source: window signals are checkpointed by offset', () => {
    const msgs = asMessages(signals);
    /** The first message that makes an incident: a correlation over the signals before it fires there. */
    async function firstFiring(): Promise<number> {
      const published: Incident[] = [];
      const c = correlator(new MemoryCorrelatorState(), published);
      for (let i = 0; i < msgs.length; i++) {
        await c.handle([msgs[i]!]);
        if (published.length) return i;
      }
      throw new Error('the seed scenario opens no incident');
    }

    it('a new owner reads the referenced signals back and fires the same correlation as one process', async () => {
      const single: Incident[] = [];
      await correlator(new MemoryCorrelatorState(), single).handle(msgs);
      const cut = await firstFiring();
      const [one] = latest(single);
      // Precondition: the firing needs signals from before the takeover, which only the windows hold.
      const before = new Set(signals.slice(0, cut).map((s) => s.id));
      expect(one!.timeline.filter((e) => before.has(e.signalId)).length).toBeGreaterThan(0);

      const state = new MemoryCorrelatorState();
      const topic = topicOf(msgs);
      const split: Incident[] = [];
      await correlator(state, split, undefined, 0, { source: topic }).handle(msgs.slice(0, cut));
      expect(split).toEqual([]);
      const stored = await storedSignals(state);
      // The checkpoint holds offsets, not bodies.
      expect(stored.length).toBeGreaterThan(0);
      expect(stored.every(isRef)).toBe(true);
      const referenced = new Set(stored.map((s) => (isRef(s) ? s.$offset : '')));

      const b = correlator(state, split, undefined, 0, { source: topic });
      await b.handle(msgs.slice(cut));
      expect(topic.reads).toEqual([{ partition: 3, offsets: expect.arrayContaining([...referenced]) }]);
      expect(topic.reads[0]!.offsets).toHaveLength(referenced.size);
      expect(b.stats).toMatchObject({ loads: 1, restored: referenced.size, unrestorable: 0 });
      const [two] = latest(split);
      expect(latest(split)).toHaveLength(1);
      expect({ ...two, version: 0 }).toEqual({ ...one, version: 0 });
    });

    it('restarts windows without signals the topic no longer has, or has under another id, and goes on', async () => {
      const cut = await firstFiring();
      const state = new MemoryCorrelatorState();
      await correlator(state, [], undefined, 0, { source: topicOf(msgs) }).handle(msgs.slice(0, cut));
      // Windows only: a prologue signal that is gone counts as nothing lost (see restoreSignals).
      const st = await state.load(3);
      const referenced = new Set(st.slots.flatMap(([, slot]) => Object.values(slot.signals).map((s) => (isRef(s) ? s.$offset : '')))).size;
      expect(referenced).toBeGreaterThan(0);
      // What the windows refer to moved one offset on (a recreated topic): the ids no longer match.
      const shifted = new Map(msgs.slice(1).map((m, i) => [String(i), m.value]));
      const published: Incident[] = [];
      const c = correlator(state, published, undefined, 0, { source: new TopicPartition(shifted) });
      await c.handle(msgs.slice(cut));
      expect(c.stats).toMatchObject({ loads: 1, restored: 0, unrestorable: referenced });
      // Processing went on: every signal after the takeover is accounted for.
      expect((await state.load(3)).offset).toBe(String(msgs.length - 1));
      expect(latest(published)[0]!.signalCount).toBe(msgs.length - cut);

      // Retention removed them: the same, and the read asked for them all.
      const state2 = new MemoryCorrelatorState();
      await correlator(state2, [], undefined, 0, { source: topicOf(msgs) }).handle(msgs.slice(0, cut));
      const empty = new TopicPartition(new Map());
      const d = correlator(state2, [], undefined, 0, { source: empty });
      await d.handle(msgs.slice(cut));
      expect(d.stats).toMatchObject({ loads: 1, restored: 0, unrestorable: referenced });
      expect(empty.reads[0]!.offsets.length).toBeGreaterThanOrEqual(referenced);
    });
  });

  it('refers only to recent offsets: an idle group is written again with its old signals in full', async () => {
    const distance = 8;
    // After the attack, other workloads keep the partition busy and leave the attacker's windows idle.
    const others = Array.from({ length: 40 }, (_, i): Signal => ({
      ...signals[i % signals.length]!,
      id: `other-${i}`,
      actor: { ...signals[0]!.actor, key: `sa:other/w-${i}`, name: `w-${i}` },
    }));
    const all = asMessages([...signals, ...others]);
    const state = new MemoryCorrelatorState();
    const topic = topicOf(all);
    const a = correlator(state, [], undefined, 0, { source: topic, maxRefDistance: distance });
    for (let i = 0; i < all.length; i += 4) await a.handle(all.slice(i, i + 4));
    const last = all.length - 1;
    const stored = await storedSignals(state);
    const refs = stored.filter(isRef).map((s) => Number(s.$offset));
    expect(refs.length).toBeGreaterThan(0);
    expect(Math.min(...refs)).toBeGreaterThanOrEqual(last - distance);
    // The attacker's window signals are still there, in full now.
    const attack = new Set(signals.map((s) => s.id));
    const windows = (await state.load(3)).slots.flatMap(([, slot]) => Object.values(slot.signals));
    expect(windows.filter((s) => !isRef(s) && attack.has(s.id)).length).toBeGreaterThan(0);

    // A new owner reads only within the distance, and restores every reference.
    const b = correlator(state, [], undefined, 0, { source: topic, maxRefDistance: distance });
    await b.handle(all.slice(-1));
    expect(Math.min(...topic.reads[0]!.offsets.map(Number))).toBeGreaterThanOrEqual(last - distance);
    expect(b.stats).toMatchObject({ loads: 1, skipped: 1, unrestorable: 0 });
  });

  it('forgets an evicted prologue in the checkpoint too, and skips messages that are not signals', async () => {
    // Signals that join nothing (no correlation reads their kind, too mild to open an incident) stay in prologues.
    const quiet = (i: number): Signal => ({
      ...signals[0]!,
      id: `quiet-${i}`,
      kind: 'test.quiet' as Signal['kind'],
      severity: 'info',
      rule: { id: 'test-quiet', title: 't' },
      actor: { ...signals[0]!.actor, key: `sa:q/a-${i}`, name: `a-${i}` },
    });
    const state = new MemoryCorrelatorState();
    const c = correlator(state, [], undefined, 0, { source: topicOf([]), policy: { lookbackActors: 2 } });
    const junk: BusMessage<SignalsMessage> = { key: 'x', partition: 3, offset: '3', value: { hello: 'world' } as never };
    const msgs = asMessages([0, 1, 2].map(quiet));
    await c.handle(msgs.slice(0, 2));
    expect((await state.load(3)).prologue.map(([k]) => k).sort()).toEqual(['sa:q/a-0', 'sa:q/a-1']);
    // A third actor evicts the first one's prologue, in a later checkpoint.
    await c.handle([msgs[2]!, junk]);
    expect(c.stats.invalid).toBe(1);
    expect((await state.load(3)).prologue.map(([k]) => k).sort()).toEqual(['sa:q/a-1', 'sa:q/a-2']);
    expect((await state.load(3)).offset).toBe('3');
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
    const cmd = (to: 'acknowledged' | 'resolved', offset: number): BusMessage<SignalsMessage> => ({
      key: 'sa:frontend/frontend',
      partition: 3,
      offset: String(offset),
      value: { command: 'transition', incidentId: id, to, note: 'n' },
    });
    await c.handle([cmd('acknowledged', signals.length), cmd('acknowledged', signals.length + 1), cmd('resolved', signals.length + 2)]);
    expect(c.stats.commandsRejected).toBe(1);
    const final = latest(published).find((i) => i.id === id)!;
    expect(final.status).toBe('resolved');
    expect((await state.load(3)).incidents).toEqual([]);
  });

  it('applies assign commands in order with the signals; the same assignee again changes nothing', async () => {
    const state = new MemoryCorrelatorState();
    const published: Incident[] = [];
    const c = correlator(state, published);
    await c.handle(asMessages(signals));
    const id = latest(published)[0]!.id;
    const assign = (assignee: string, offset: number): BusMessage<SignalsMessage> => ({
      key: 'sa:frontend/frontend',
      partition: 3,
      offset: String(offset),
      value: { command: 'assign', incidentId: id, assignee },
    });
    await c.handle([assign('alice', signals.length)]);
    const assigned = latest(published).find((i) => i.id === id)!;
    expect(assigned).toMatchObject({ status: 'open', assignee: 'alice' });
    expect((await state.load(3)).incidents.find((i) => i.id === id)?.assignee).toBe('alice');
    const count = published.length;
    await c.handle([assign('alice', signals.length + 1)]);
    expect(published.length).toBe(count);
    await c.handle([
      assign('bob', signals.length + 2),
      { ...assign('carol', signals.length + 3), value: { command: 'assign', incidentId: 'nope', assignee: 'carol' } },
    ]);
    expect(c.stats.commandsRejected).toBe(1);
    const final = latest(published).find((i) => i.id === id)!;
    expect(final).toMatchObject({ assignee: 'bob', version: assigned.version + 1 });
  });

  it('round trip: BusCommands.assign over the bus, applied by the owner, answered with the assigned version', async () => {
    const state = new MemoryCorrelatorState();
    const store = new MemoryStore();
    const bus = new MemoryBus();
    const t = topics('assigntest');
    const published: Incident[] = [];
    const commands = new BusCommands(bus, t, store, 5_000);
    const c = new PartitionedCorrelator({
      correlations: rules.correlations,
      state,
      publish: async (incs) => {
        published.push(...incs);
        await store.upsert(incs);
        commands.seen(incs);
      },
      clock: { now: () => SEED_SCENARIO.start },
      logger: createLogger('silent'),
    });
    await c.handle(asMessages(signals));
    let offset = signals.length;
    bus.subscribe(t.signals, 'correlator', async (batch) => {
      await c.handle(batch.map((m) => ({ ...m, partition: 3, offset: String(offset++) })));
    });
    const [inc] = latest(published);
    const assigned = await commands.assign(inc!.id, 'alice');
    expect(assigned).toMatchObject({ id: inc!.id, status: 'open', assignee: 'alice', version: inc!.version + 1 });
    expect((await store.get(inc!.id))?.assignee).toBe('alice');
    expect((await state.load(3)).incidents.find((i) => i.id === inc!.id)?.assignee).toBe('alice');
    await bus.drained();
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

  it("writes each changed incident's JSON once per checkpoint: the outbox and the incidents topic get the same text", async () => {
    const state = new MemoryCorrelatorState();
    const sent: { json: string | undefined; now: string }[] = [];
    const c = new PartitionedCorrelator({
      correlations: rules.correlations,
      state,
      publish: async (incs) => {
        for (const i of incs) sent.push({ json: writtenJson(i), now: JSON.stringify(i) });
      },
      clock: { now: () => SEED_SCENARIO.start },
      logger: createLogger('silent'),
    });
    const half = Math.ceil(signals.length / 2);
    for (const [from, to] of [
      [0, half],
      [half, signals.length],
    ] as const) {
      await c.handle(asMessages(signals.slice(from, to), from));
      const outbox = (await state.load(3)).outbox;
      const last = sent.splice(0);
      expect(last.length).toBe(outbox.length);
      expect(last.length).toBeGreaterThan(0);
      // Sent as the checkpoint wrote it, which is the incident as it is while the publish runs.
      for (const [n, s] of last.entries()) {
        expect(s.json).toBe(s.now);
        expect(JSON.parse(s.json!)).toEqual(outbox[n]);
      }
    }
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
    const { state, fromA, a, cut } = await firstHalfByA();
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

  it("reads the checkpoints of partitions it is assigned at the assignment, for their first loads; a previous owner's later save is caught at the first flush", async () => {
    const { state, fromA, cut } = await firstHalfByA();
    const reads: number[] = [];
    const load = state.load.bind(state);
    state.load = (p) => (reads.push(p), load(p));
    const fromB: Incident[] = [];
    const b = correlator(state, fromB);
    b.assigned([2, 3]);
    expect(reads).toEqual([2, 3]);
    // The first batch loads what was read then: no second read.
    await b.handle(asMessages(signals.slice(cut, cut + 1), cut));
    expect(reads).toEqual([2, 3]);
    // Loaded again later (a batch a worker failed, say): read again.
    b.discard(3);
    await b.handle(asMessages(signals.slice(cut + 1, cut + 2), cut + 1));
    expect(reads).toEqual([2, 3, 3]);
    // A partition held here at an assignment is not read again.
    b.assigned([3]);
    expect(reads).toEqual([2, 3, 3]);

    // Assigned to C while its previous owner B still saves one last checkpoint: C's first save finds
    // the checkpoint moved on, and the bus offers the messages again to a reload.
    const c = correlator(state, fromA);
    c.assigned([3]);
    await b.handle(asMessages(signals.slice(cut + 2, cut + 3), cut + 2));
    await c.apply(asMessages(signals.slice(cut + 3), cut + 3));
    await expect(c.flush(3)).rejects.toBeInstanceOf(RewindError);
    expect(c.stats.stale).toBe(1);
    await c.handle(asMessages(signals.slice(cut + 3), cut + 3));
    expect(latest(fromA)[0]!.signalCount).toBe(signals.length);
  });

  it('notices that another correlator moved the partition on: no stale sweeps, reload on return', async () => {
    const { state, fromA, a, cut } = await firstHalfByA();
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

  it('reports the incidents open in its partitions, and engine counters that survive a handover', async () => {
    const { a } = await firstHalfByA();
    expect(a.openIncidents().map((i) => i.status)).toEqual(['open']);
    const firings = a.engineStats().firings;
    expect(firings).toBeGreaterThan(0);
    // The partition goes to another correlator: its incidents are no longer held here, its counts stay.
    a.assigned([]);
    await a.flush(3);
    expect(a.openIncidents()).toEqual([]);
    expect(a.engineStats().firings).toBe(firings);
    // It comes back: a reloaded state counts on from there.
    await a.handle(asMessages(signals.slice(-1), signals.length - 1));
    expect(a.openIncidents()).toHaveLength(1);
    expect(a.engineStats().firings).toBeGreaterThanOrEqual(firings);
  });

  it('correlates signals read with their shared parts (the bus reader) exactly as the same signals parsed whole', async () => {
    // Twenty workloads repeating their behaviour: the reader keeps their shared parts, packing and
    // the incident manager find shapes and keys by the objects those signals share.
    const signals = syntheticAuditEvents(6000, { suspiciousShare: 0.3, seed: 22, stepMs: 2, attackers: 20 }).flatMap((e) =>
      detector.detect(normalizeAuditEvent(e, 0)),
    );
    const written = signals.map((s) => encodeSignalsMessage(s));
    const run = async (read: (w: (typeof written)[number]) => SignalsMessage) => {
      const published: Incident[] = [];
      const c = correlator(new MemoryCorrelatorState(), published, { now: () => SEED_SCENARIO.start }, 0, { baseline: new IdentityBaseline() });
      for (let i = 0; i < written.length; i += 250)
        await c.handle(written.slice(i, i + 250).map((w, j) => ({ key: '', value: read(w), partition: 0, offset: String(i + j) })));
      // The last version of each incident, as the incidents topic has it.
      return new Map(published.map((inc) => [inc.id, writtenJson(inc) ?? JSON.stringify(inc)]));
    };
    const whole = await run((w) => withoutEvidence(JSON.parse(w.json) as Signal));
    const reused = sharedPartStats.reused;
    const read = await run((w) => parseSignalsMessageWithoutEvidence.bytes!(Buffer.from(w.json), (name) => w.headers?.[name]) as Signal);
    expect(sharedPartStats.reused - reused).toBeGreaterThan(signals.length / 2);
    expect(whole.size).toBeGreaterThan(10);
    expect([...read.keys()].sort()).toEqual([...whole.keys()].sort());
    for (const [id, json] of whole) expect(JSON.parse(read.get(id)!)).toEqual(JSON.parse(json));
  });
});

/**
 * What Kafka keeps of partition 3 when Redis loses everything: the group's last commit (as the bus
 * commits it, with the correlator's commit metadata), the signals topic and the incidents topic.
 * Every message counts as written now, inside any lookback. Records each signals read.
 */
class KafkaHistory implements SignalHistory {
  commit?: { offset: string; generation?: number };
  readonly reads: { before: string; max: number }[] = [];
  /** Set to hold signals reads until released. */
  gate?: Promise<void>;

  constructor(
    private readonly topic: BusMessage<SignalsMessage>[],
    private readonly incidentsTopic: Incident[],
  ) {}

  /** Records the commit the bus makes after `c` flushed everything before `next`. */
  committedBy(c: PartitionedCorrelator, next: number): void {
    const generation = markedGeneration(c.commitMetadata(3));
    this.commit = { offset: String(next), ...(generation === undefined ? {} : { generation }) };
  }

  async committed() {
    return new Map(this.commit ? [[3, this.commit]] : []);
  }

  async signals(partition: number, _since: number, before: string, max: number) {
    this.reads.push({ before, max });
    await this.gate;
    return structuredClone(this.topic.filter((m) => partition === 3 && BigInt(m.offset!) < BigInt(before)).slice(-max));
  }

  async incidents() {
    return structuredClone(latestVersions(this.incidentsTopic));
  }
}

/** `kafka`'s history with its commits held back until `release` (as a slow group coordinator holds them); `asked` counts the fetches. */
function heldCommits(kafka: KafkaHistory) {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const counter = { asked: 0 };
  const history: SignalHistory = {
    committed: async () => {
      counter.asked++;
      await held;
      return kafka.committed();
    },
    signals: (...a) => kafka.signals(...a),
    incidents: () => kafka.incidents(),
  };
  return { history, release, counter };
}

const latestVersions = (published: Incident[]) => {
  const m = new Map<string, Incident>();
  for (const i of published) if ((m.get(i.id)?.version ?? -1) <= i.version) m.set(i.id, i);
  return [...m.values()];
};

describe('PartitionedCorrelator when Redis loses the checkpoints', () => {
  const signals = seedSignals();
  const msgs = asMessages(signals);
  // Cut right after the cluster-wide secret listing: the read that completes zt-secret-list-then-use comes after.
  const cut = signals.findIndex((s) => s.rule.id === 'k8s-secret-list-cluster-wide-sa') + 1;
  const listing = signals[cut - 1]!.id;
  const read = signals.slice(cut).find((s) => s.rule.id === 'k8s-secret-read-cross-namespace')!.id;
  const listThenUse = (i: Incident) => i.correlations.filter((c) => c.ruleId === 'zt-secret-list-then-use');
  const summary = (i: Incident) => ({
    id: i.id,
    signals: i.signalCount,
    severity: i.severity,
    correlations: [...new Set(i.correlations.map((c) => c.ruleId))].sort(),
  });

  /** A correlator handles the first part of the attack, checkpoints and commits; its incident is published. */
  async function firstPart(extra: Partial<PartitionedCorrelatorOptions> = {}) {
    const state = new MemoryCorrelatorState();
    const fromA: Incident[] = [];
    const kafka = new KafkaHistory(msgs, fromA);
    const a = correlator(state, fromA, undefined, 0, { source: topicOf(msgs), history: kafka, ...extra });
    await a.handle(msgs.slice(0, cut));
    kafka.committedBy(a, cut);
    expect(latest(fromA)).toHaveLength(1);
    expect(listThenUse(latest(fromA)[0]!)).toEqual([]);
    return { state, fromA, kafka, a };
  }

  it('rebuilds the lost checkpoint: the rest of the attack joins the same incident, list-then-use fires across the loss', async () => {
    const single: Incident[] = [];
    await correlator(new MemoryCorrelatorState(), single).handle(msgs);
    const [one] = latest(single);

    // Without the rebuild (no history), the correlator after the loss starts empty and splits the attack.
    const without = await firstPart();
    without.state.lose();
    const splitInto: Incident[] = [];
    await correlator(without.state, splitInto, undefined, 0, { source: topicOf(msgs) }).handle(msgs.slice(cut));
    expect(latest(splitInto).map((i) => i.id)).not.toContain(one!.id);
    expect(latest(splitInto).flatMap(listThenUse)).toEqual([]);

    const { state, fromA, kafka } = await firstPart();
    const before = latest(fromA)[0]!;
    state.lose(); // Redis restarted without persistence
    const fromB: Incident[] = [];
    const metrics = new Metrics();
    const b = correlator(state, fromB, undefined, 0, { source: topicOf(msgs), history: kafka, metrics });
    await b.handle(msgs.slice(cut));
    expect(b.stats.rebuilds).toBe(1);
    expect(kafka.reads).toEqual([{ before: String(cut), max: expect.any(Number) }]);
    expect(await metrics.registry.metrics()).toMatch(/^kubevigil_correlator_state_rebuilds_total\{reason="checkpoint_lost"\} 1$/m);

    const after = latest(fromB);
    expect(after).toHaveLength(1);
    expect(summary(after[0]!)).toEqual(summary(one!));
    expect(after[0]!.id).toBe(before.id);
    // The correlation fired with the listing from before the loss and the read after it.
    expect(listThenUse(after[0]!).flatMap((c) => c.signalIds)).toEqual(expect.arrayContaining([listing, read]));
    // What the incidents topic already had is not published again, and versions go on from it.
    expect(fromB.some((i) => i.version <= before.version)).toBe(false);
    // The first checkpoint after the rebuild holds the whole state again, above the committed generation.
    const st = await state.load(3);
    expect(st.generation).toBeGreaterThan(kafka.commit!.generation!);
    expect(st.offset).toBe(String(msgs.length - 1));
    expect(st.incidents.map((i) => i.signalCount)).toEqual([signals.length]);
  });

  it('a running correlator whose Redis was flushed rebuilds once the bus offers the uncommitted messages again', async () => {
    const { state, fromA, kafka, a } = await firstPart();
    await a.apply(msgs.slice(cut, cut + 2)); // applied, not flushed
    state.lose();
    await a.apply(msgs.slice(cut + 2));
    // The checkpoint it grew from is gone: it must not write its copy as if it were the whole state.
    await expect(a.flush(3)).rejects.toBeInstanceOf(RewindError);
    expect(a.stats.rebuilds).toBe(0);
    // The bus seeks back to the last commit: the rebuild replays what came before it.
    await a.handle(msgs.slice(cut));
    expect(a.stats.rebuilds).toBe(1);
    const incs = latest(fromA);
    expect(incs).toHaveLength(1);
    expect(incs[0]!.signalCount).toBe(signals.length);
    expect(listThenUse(incs[0]!).flatMap((c) => c.signalIds)).toEqual(expect.arrayContaining([listing, read]));
    expect((await state.load(3)).offset).toBe(String(msgs.length - 1));
    expect(kafka.reads.map((r) => r.before)).toEqual([String(cut)]);
  });

  it('tells a lost or older checkpoint from an intact one and from a partition never committed', async () => {
    const { state, fromA, kafka } = await firstPart();
    const generation = kafka.commit!.generation!;
    expect(generation).toBe((await state.load(3)).generation);
    const load = async (commit: KafkaHistory['commit'], st = state) => {
      const k = new KafkaHistory(msgs, fromA);
      if (commit) k.commit = commit;
      const c = correlator(st, [], undefined, 0, { source: topicOf(msgs), history: k });
      await c.handle(msgs.slice(cut, cut + 1));
      return c.stats.rebuilds;
    };
    // The checkpoint the commit recorded, a commit from before commit metadata, no commit at all: loaded as it is.
    expect(await load({ offset: String(cut), generation })).toBe(0);
    expect(await load({ offset: String(cut + 1) })).toBe(0);
    const fresh = new MemoryCorrelatorState();
    expect(await load(undefined, fresh)).toBe(0);
    // Redis came back older than the commit (a snapshot, a lagging replica): rebuilt, and above it afterwards.
    const ahead = (await state.load(3)).generation + 5;
    expect(await load({ offset: String(cut + 1), generation: ahead })).toBe(1);
    expect((await state.load(3)).generation).toBeGreaterThan(ahead);
    // Nothing in Redis although the group committed, with or without a recorded generation: rebuilt.
    state.lose();
    expect(await load({ offset: String(cut + 1) })).toBe(1);
  });

  it("reads the group's commits once at an assignment for the partitions' first loads, and again for later loads", async () => {
    const { state, fromA, kafka } = await firstPart();
    let asked = 0;
    const history: SignalHistory = {
      committed: () => (asked++, kafka.committed()),
      signals: (...a) => kafka.signals(...a),
      incidents: () => kafka.incidents(),
    };
    state.lose();
    const c = correlator(state, fromA, undefined, 0, { source: topicOf(msgs), history });
    c.assigned([2, 3]);
    expect(asked).toBe(1);
    // The first load takes the commits fetched at the assignment: the checkpoint is gone, rebuilt.
    await c.handle(msgs.slice(cut, cut + 1));
    expect([asked, c.stats.rebuilds]).toEqual([1, 1]);
    // A later load of the same partition asks again (this correlator committed since).
    c.discard(3);
    await c.handle(msgs.slice(cut + 1, cut + 2));
    expect(asked).toBe(2);
    // Assigned again while loaded here: a flush since the assignment (the bus commits after it)
    // makes the commits fetched then stale for the next load, which asks again.
    c.assigned([3]);
    await c.handle(msgs.slice(cut + 2, cut + 3));
    c.discard(3);
    await c.handle(msgs.slice(cut + 3, cut + 4));
    expect(asked).toBe(4);
  });

  it("correlates a first batch before the assignment's commits arrive, and rebuilds at the first flush when they show a loss", async () => {
    const { state, kafka } = await firstPart();
    const single: Incident[] = [];
    await correlator(new MemoryCorrelatorState(), single).handle(msgs);
    const [one] = latest(single);
    state.lose(); // Redis restarted without persistence
    const outbox = await state.load(3);
    expect(outbox.generation).toBe(0);
    // The commits fetched at the assignment are held until released, as a slow group coordinator does.
    const { history, release, counter } = heldCommits(kafka);
    const fromB: Incident[] = [];
    const b = correlator(state, fromB, undefined, 0, { source: topicOf(msgs), history });
    b.assigned([3]);
    // The batch is correlated on the state Redis returned (none), without waiting for the commits...
    await b.apply(msgs.slice(cut));
    expect(b.partitions).toEqual([3]);
    // ...and its flush waits for them: nothing saved or published before they say whether that state was lost.
    let flushed: unknown = 'pending';
    const flush = b.flush(3).then(
      () => (flushed = 'saved'),
      (e: unknown) => (flushed = e),
    );
    await new Promise((r) => setImmediate(r));
    expect([flushed, fromB, (await state.load(3)).generation]).toEqual(['pending', [], 0]);
    release();
    await flush;
    // Lost: the state is dropped and the bus asked for the messages again; their load rebuilds it.
    expect(flushed).toBeInstanceOf(RewindError);
    expect([b.partitions, fromB, b.stats.rebuilds]).toEqual([[], [], 0]);
    await b.handle(msgs.slice(cut));
    expect(counter.asked).toBe(2);
    expect(b.stats.rebuilds).toBe(1);
    // The attack stays one incident across the loss, as without the early start.
    expect(latest(fromB).map((i) => i.id)).toEqual([one!.id]);
    expect(latest(fromB)[0]!.signalCount).toBe(one!.signalCount);
  });

  it('saves a state loaded before the commits arrived once they show nothing was lost', async () => {
    const { state, fromA, kafka } = await firstPart();
    const { history, release } = heldCommits(kafka);
    const fromB: Incident[] = [];
    const b = correlator(state, fromB, undefined, 0, { source: topicOf(msgs), history });
    b.assigned([3]);
    const generation = (await state.load(3)).generation;
    await b.apply(msgs.slice(cut));
    const flush = b.flush(3);
    release();
    await flush;
    expect(b.stats.rebuilds).toBe(0);
    expect((await state.load(3)).generation).toBeGreaterThan(generation);
    expect(latest(fromB).map((i) => i.id)).toEqual(latest(fromA).map((i) => i.id));
  });

  it("publishes a loaded checkpoint's outbox only once the commits show that checkpoint was not lost", async () => {
    // A checkpoint whose incidents were saved but not published (the publish failed).
    const state = new MemoryCorrelatorState();
    const fromA: Incident[] = [];
    const a = correlator(state, fromA, undefined, 1, { source: topicOf(msgs) });
    await a.apply(msgs.slice(0, cut));
    await expect(a.flush(3)).rejects.toThrow('incidents topic unavailable');
    const saved = await state.load(3);
    expect(saved.outbox.length).toBeGreaterThan(0);
    // The group committed after a later checkpoint than Redis has (Redis came back from an older snapshot).
    const kafka = new KafkaHistory(msgs, fromA);
    kafka.commit = { offset: String(cut), generation: saved.generation + 5 };
    const { history, release } = heldCommits(kafka);
    const fromB: Incident[] = [];
    const b = correlator(state, fromB, undefined, 0, { source: topicOf(msgs), history });
    b.assigned([3]);
    await b.apply(msgs.slice(cut));
    // That outbox holds older versions than the incidents topic may: not published at the load.
    expect(fromB).toEqual([]);
    const flush = b.flush(3);
    release();
    await expect(flush).rejects.toBeInstanceOf(RewindError);
    expect(fromB).toEqual([]);
  });

  it('fails batches retryably while a rebuild runs, and takes the one rebuild up when it is done', async () => {
    const { state, kafka } = await firstPart();
    state.lose();
    let release!: () => void;
    kafka.gate = new Promise((r) => (release = r));
    const fromB: Incident[] = [];
    const b = correlator(state, fromB, undefined, 0, { source: topicOf(msgs), history: kafka, rebuildWaitMs: 20, rebuildMaxMessages: 3 });
    const err = await b.apply(msgs.slice(cut)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubevigilError);
    expect((err as KubevigilError).retryable).toBe(true);
    expect(b.partitions).toEqual([]);
    release();
    await b.handle(msgs.slice(cut)); // the bus retries the batch
    expect(kafka.reads).toEqual([{ before: String(cut), max: 3 }]);
    expect(b.stats.rebuilds).toBe(1);
    expect(latest(fromB)[0]!.signalCount).toBe(signals.length);
  });
});
