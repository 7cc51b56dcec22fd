import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { KubevigilError } from '../../correlator/errors.js';
import type { Incident } from '../../correlator/incident.js';
import { makeIncident, makeSignal, T0 } from './store.contract.js';
import {
  commitMarker,
  connectRedis,
  markedGeneration,
  MemoryCorrelatorState,
  RedisCorrelatorState,
  rememberOffset,
  SignalWriter,
  type CorrelatorStateStore,
  type PartitionCheckpoint,
} from './correlator-state.js';
import { redisKeys } from './redis-keys.js';

const checkpoint = (over: Partial<PartitionCheckpoint> = {}): PartitionCheckpoint => ({
  slots: new Map(),
  incidents: [],
  prologue: new Map(),
  seen: [],
  ...over,
});

function contract(name: string, open: () => Promise<CorrelatorStateStore>) {
  describe(`${name} (correlator state)`, () => {
    it('loads what was checkpointed: windows, prologues, open incidents, processed ids, offset and outbox', async () => {
      const state = await open();
      expect(await state.load(2)).toMatchObject({ generation: 0, slots: [], incidents: [], seen: [], outbox: [] });
      const open1: Incident = makeIncident('inc_open');
      const gone: Incident = { ...makeIncident('inc_gone'), status: 'resolved' };
      const recent = rememberOffset(makeSignal('a-1', T0, { id: 'sig-recent' }), '120');
      const old = rememberOffset(makeSignal('a-2', T0, { id: 'sig-old' }), '3');
      // Offsets from 100 on are referred to; older signals are written in full.
      const writer = new SignalWriter(100);
      const slot = `{"signals":{"sig-recent":${writer.json(recent)},"sig-old":${writer.json(old)}},"windows":{}}`;
      expect(writer.floor).toBe(120);
      const g1 = await state.save(
        2,
        checkpoint({
          offset: '120',
          slots: new Map([['sa:a/b', slot]]),
          prologue: new Map([['sa:a/b', new SignalWriter(0).list([recent])]]),
          incidents: [open1, gone],
          seen: ['sig-recent', 'sig-old'],
        }),
        0,
      );
      expect(g1).toBe(1);
      const g2 = await state.save(
        2,
        checkpoint({ offset: '121', seen: ['sig-next'], slots: new Map([['sa:gone', null]]), prologue: new Map([['sa:gone', null]]) }),
        g1,
      );
      // Deleting a group and a prologue in the same checkpoint as writing others.
      const slot2 = `{"signals":{},"windows":{}}`;
      const g3 = await state.save(
        2,
        checkpoint({
          slots: new Map<string, string | null>([
            ['sa:c/d', slot2],
            ['sa:a/b', null],
          ]),
          prologue: new Map<string, string | null>([
            ['sa:a/b', null],
            ['sa:c/d', '[]'],
          ]),
        }),
        g2,
      );
      expect(g3).toBe(g2 + 1);
      const after = await state.load(2);
      expect(after.slots.map(([k]) => k)).toEqual(['sa:c/d']);
      expect(after.prologue).toEqual([['sa:c/d', []]]);
      await state.save(
        2,
        checkpoint({
          slots: new Map<string, string | null>([
            ['sa:a/b', slot],
            ['sa:c/d', null],
          ]),
          prologue: new Map<string, string | null>([
            ['sa:a/b', new SignalWriter(0).list([recent])],
            ['sa:c/d', null],
          ]),
        }),
        g3,
      );

      const st = await state.load(2);
      expect(st.generation).toBe(g3 + 1);
      expect(st.offset).toBe('121');
      expect(st.slots).toHaveLength(1);
      expect(st.slots[0]![1].signals['sig-recent']).toEqual({ $offset: '120', id: 'sig-recent' });
      expect(st.slots[0]![1].signals['sig-old']).toMatchObject({ id: 'sig-old', kind: old.kind });
      expect(st.prologue).toEqual([['sa:a/b', [{ $offset: '120', id: 'sig-recent' }]]]);
      expect(st.incidents.map((i) => i.id)).toEqual(['inc_open']);
      expect(st.seen.sort()).toEqual(['sig-next', 'sig-old', 'sig-recent']);
      // The outbox is the last checkpoint's incidents only.
      expect(st.outbox).toEqual([]);
    });

    it('replaces the whole state with a rebuilt one, above the generation Kafka recorded', async () => {
      const state = await open();
      const slot = `{"signals":{},"windows":{}}`;
      const g = await state.save(
        5,
        checkpoint({
          offset: '40',
          slots: new Map([['sa:old', slot]]),
          prologue: new Map([['sa:old', '[]']]),
          incidents: [makeIncident('inc_stale')],
          seen: ['old-1'],
        }),
        0,
      );
      const rebuilt = await state.save(
        5,
        checkpoint({ replace: { generationAbove: g + 10 }, offset: '57', slots: new Map([['sa:new', slot]]), incidents: [makeIncident('inc_kept')] }),
        g,
      );
      expect(rebuilt).toBe(g + 11);
      const st = await state.load(5);
      expect(st).toMatchObject({ generation: g + 11, offset: '57', prologue: [] });
      expect(st.slots.map(([k]) => k)).toEqual(['sa:new']);
      expect(st.incidents.map((i) => i.id)).toEqual(['inc_kept']);
      expect(st.outbox.map((i) => i.id)).toEqual(['inc_kept']);
      // A replacement still needs the writer's generation to be the current one.
      const err = await state.save(5, checkpoint({ replace: { generationAbove: 0 } }), g).catch((e: unknown) => e);
      expect((err as KubevigilError).code).toBe('STATE_STALE');
      await state.close();
    });

    it("saves the incidents' JSON as the writer wrote it (the text it publishes), in the outbox and the open set", async () => {
      const state = await open();
      const inc = makeIncident('inc_written');
      const json = JSON.stringify({ ...inc, title: 'as written' });
      await state.save(7, checkpoint({ offset: '1', incidents: [inc], incidentJson: [json] }), 0);
      const st = await state.load(7);
      expect(st.outbox.map((i) => i.title)).toEqual(['as written']);
      expect(st.incidents.map((i) => i.title)).toEqual(['as written']);
      await state.close();
    });

    it('refuses a checkpoint whose writer did not grow from the current generation', async () => {
      const state = await open();
      const g = await state.save(1, checkpoint({ offset: '5', seen: ['a'] }), 0);
      const err = await state.save(1, checkpoint({ offset: '9', seen: ['b'] }), g - 1).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KubevigilError);
      expect((err as KubevigilError).code).toBe('STATE_STALE');
      expect(await state.load(1)).toMatchObject({ generation: g, offset: '5', seen: ['a'] });
      await state.close();
    });
  });
}

contract('MemoryCorrelatorState', async () => new MemoryCorrelatorState());

describe('SignalWriter', () => {
  it('refers to a signal by the offset it came from, but writes a changed copy of it in full', () => {
    const s = rememberOffset(makeSignal('a-1', T0, { id: 'sig-1' }), '120');
    const annotated = { ...s, attributes: { ...s.attributes, firstTime: 'true' } };
    const w = new SignalWriter(100);
    expect(JSON.parse(w.json(s))).toEqual({ $offset: '120', id: 'sig-1' });
    expect(JSON.parse(w.json(annotated))).toMatchObject({ id: 'sig-1', attributes: { firstTime: 'true' } });
    // Nor does the offset show in the signal's own JSON.
    expect(JSON.parse(JSON.stringify(s))).toEqual(JSON.parse(JSON.stringify(makeSignal('a-1', T0, { id: 'sig-1' }))));
  });
});

describe('commit markers', () => {
  it('carry a checkpoint generation through Kafka commit metadata, and nothing else reads as one', () => {
    expect(markedGeneration(commitMarker(42))).toBe(42);
    expect(markedGeneration(commitMarker(0))).toBe(0);
    for (const other of [null, undefined, '', 'kubevigil-checkpoint:', 'kubevigil-checkpoint:x', 'gen:3', `${commitMarker(4)} `])
      expect(markedGeneration(other)).toBeUndefined();
  });
});

const url = process.env.REDIS_URL;
describe.skipIf(!url)('RedisCorrelatorState (needs REDIS_URL; scripts/with-services.sh sets it)', () => {
  const clients: Redis[] = [];
  afterAll(() => clients.forEach((c) => c.disconnect()));
  const prefix = () => `kvt-${randomBytes(4).toString('hex')}`;
  contract('RedisCorrelatorState', async () => {
    const r = connectRedis(url!);
    clients.push(r);
    // The connection fails fast instead of queueing: wait until it is up.
    if (r.status !== 'ready') await once(r, 'ready');
    return new RedisCorrelatorState(r, prefix());
  });

  it('still reads processed ids that checkpoints before 0.2 kept as sets', async () => {
    const r = new Redis(url!);
    clients.push(r);
    const p = prefix();
    const now = Date.now();
    await r.sadd(redisKeys(p).seen(4, Math.floor(now / 600_000)), 'legacy-1', 'legacy-2');
    const state = new RedisCorrelatorState(r, p, () => now);
    await state.save(4, checkpoint({ offset: '1', seen: ['new-1'] }), 0);
    expect((await state.load(4)).seen.sort()).toEqual(['legacy-1', 'legacy-2', 'new-1']);
  });
});
