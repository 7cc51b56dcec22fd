import { describe, expect, it } from 'vitest';
import type { Incident } from '../../correlator/incident.js';
import { InvalidTransitionError, TRANSITIONS } from '../../correlator/incidents.js';
import { MemoryBus } from '../bus/memory.js';
import { topics, type SignalsMessage } from '../bus/topics.js';
import type { BusMessage } from '../bus/bus.js';
import { MemoryStore } from '../store/memory.js';
import { makeIncident } from '../store/store.contract.js';
import { BusCommands } from './bus-commands.js';

async function setup(incidents: Incident[], timeoutMs?: number) {
  const bus = new MemoryBus();
  const t = topics('cmdtest');
  const store = new MemoryStore();
  await store.upsert(incidents);
  const sent: BusMessage<SignalsMessage>[] = [];
  bus.subscribe(t.signals, 'spy', async (batch) => {
    sent.push(...batch);
  });
  return { bus, sent, commands: new BusCommands(bus, t, store, timeoutMs) };
}

describe('BusCommands', () => {
  it('checks a transition against the incident table before sending anything', async () => {
    const statuses = ['open', 'acknowledged', 'resolved'] as const;
    for (const from of statuses)
      for (const to of statuses) {
        const { bus, sent, commands } = await setup([makeIncident('inc-1', { status: from })], 50);
        const result = commands.transition('inc-1', to, 'note');
        if (TRANSITIONS[from].includes(to)) await expect(result).rejects.toMatchObject({ code: 'COMMAND_PENDING' });
        else await expect(result).rejects.toBeInstanceOf(InvalidTransitionError);
        await bus.drained();
        expect(sent.length, `${from} → ${to}`).toBe(TRANSITIONS[from].includes(to) ? 1 : 0);
      }
  });

  it('sends the command keyed by the actor and answers with the version the correlator publishes', async () => {
    const inc = makeIncident('inc-1');
    const { bus, sent, commands } = await setup([inc]);
    const answer = commands.transition('inc-1', 'acknowledged', 'looking', 'alice');
    await bus.drained();
    expect(sent).toEqual([{ key: inc.actor.key, value: { command: 'transition', incidentId: 'inc-1', to: 'acknowledged', note: 'looking', by: 'alice' } }]);
    const next = { ...inc, status: 'acknowledged' as const, version: inc.version + 1 };
    commands.seen([{ ...inc, version: inc.version + 1 }, next]);
    await expect(answer).resolves.toBe(next);
    expect(await commands.transition('nope', 'resolved', '')).toBeUndefined();
  });

  it('sends assign like a transition, answers when the assignee shows, and sends nothing when it would change nothing', async () => {
    const inc = makeIncident('inc-1');
    const { bus, sent, commands } = await setup([inc, makeIncident('inc-2', { status: 'resolved' }), makeIncident('inc-3', { assignee: 'bob' })]);
    const answer = commands.assign('inc-1', 'alice');
    await bus.drained();
    expect(sent).toEqual([{ key: inc.actor.key, value: { command: 'assign', incidentId: 'inc-1', assignee: 'alice' } }]);
    const next = { ...inc, assignee: 'alice', version: inc.version + 1 };
    commands.seen([{ ...inc, version: inc.version + 1 }, next]);
    await expect(answer).resolves.toBe(next);
    await expect(commands.assign('inc-2', 'alice')).resolves.toMatchObject({ id: 'inc-2', status: 'resolved' });
    await expect(commands.assign('inc-3', 'bob')).resolves.toMatchObject({ id: 'inc-3', assignee: 'bob' });
    expect(await commands.assign('nope', 'alice')).toBeUndefined();
    await bus.drained();
    expect(sent).toHaveLength(1);
  });

  it('reports an assign the correlator does not confirm in time as pending', async () => {
    const { bus, sent, commands } = await setup([makeIncident('inc-1')], 50);
    await expect(commands.assign('inc-1', 'alice')).rejects.toMatchObject({ code: 'COMMAND_PENDING' });
    await bus.drained();
    expect(sent).toHaveLength(1);
  });
});
