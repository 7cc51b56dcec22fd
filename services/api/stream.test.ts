import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { makeIncident } from '../store/store.contract.js';
import { listen, type Listening } from '../../test/helpers/http.js';
import { IncidentStream, type StreamOptions } from './stream.js';

const servers: Listening[] = [];
const streams: IncidentStream[] = [];
afterEach(async () => {
  for (const s of streams.splice(0)) s.close();
  for (const s of servers.splice(0)) await s.close();
});

async function start(opts: StreamOptions = {}): Promise<{ stream: IncidentStream; url: string }> {
  const stream = new IncidentStream(opts);
  streams.push(stream);
  const app = express();
  app.get('/stream', (req, res) => stream.attach(req, res));
  const l = await listen(app);
  servers.push(l);
  return { stream, url: `${l.url}/stream` };
}

/** Reads SSE events until `count` events of interest (not comments, not `retry:`) arrived. */
async function events(
  url: string,
  count: number,
  headers: Record<string, string> = {},
): Promise<{ event: string; id?: string; data: Record<string, unknown> }[]> {
  const res = await fetch(url, { headers });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const parsed = () =>
    text
      .split('\n\n')
      .slice(0, -1)
      .map((block) => Object.fromEntries(block.split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)])))
      .filter((b) => b.event !== undefined);
  while (parsed().length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  await reader.cancel();
  return parsed().map((b) => ({ event: b.event!, ...(b.id ? { id: b.id } : {}), data: JSON.parse(b.data!) as Record<string, unknown> }));
}

describe('IncidentStream', () => {
  it('sends each incident version with an <incident>:<version> id and RFC 3339 times, without its timeline', async () => {
    const { stream, url } = await start();
    const got = events(url, 1);
    // The listener attaches before the publish: wait for it, not for time.
    while (stream.size === 0) await new Promise((r) => setImmediate(r));
    stream.publish([makeIncident('inc_00000000000000000001', { version: 3 })]);
    const [e] = await got;
    expect(e).toMatchObject({ event: 'incident', id: 'inc_00000000000000000001:3' });
    expect(e!.data.firstSeen).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(e!.data).not.toHaveProperty('timeline');
  });

  it('resumes after Last-Event-ID with the events that followed it, and only those', async () => {
    const { stream, url } = await start();
    stream.publish([1, 2, 3, 4].map((v) => makeIncident('inc_00000000000000000002', { version: v })));
    const resumed = await events(url, 2, { 'last-event-id': 'inc_00000000000000000002:2' });
    expect(resumed.map((e) => e.id)).toEqual(['inc_00000000000000000002:3', 'inc_00000000000000000002:4']);
  });

  it('tells a client whose last event it no longer has to list again (a reset), and keeps only its bound', async () => {
    const { stream, url } = await start({ replayEvents: 2 });
    stream.publish([1, 2, 3].map((v) => makeIncident('inc_00000000000000000003', { version: v })));
    const [reset] = await events(url, 1, { 'last-event-id': 'inc_00000000000000000003:1' });
    expect(reset!.event).toBe('reset');
    const kept = await events(url, 1, { 'last-event-id': 'inc_00000000000000000003:2' });
    expect(kept.map((e) => e.id)).toEqual(['inc_00000000000000000003:3']);
  });

  it('keeps the replay buffer within its byte bound', async () => {
    const { stream, url } = await start({ replayEvents: 1000, replayBytes: 20_000 });
    stream.publish(Array.from({ length: 50 }, (_, v) => makeIncident('inc_00000000000000000004', { version: v + 1 })));
    const buffer = stream.replayBuffer;
    expect(buffer.bytes).toBeLessThanOrEqual(20_000);
    expect(buffer.events).toBeGreaterThan(1);
    expect(buffer.events).toBeLessThan(50);
    const [reset] = await events(url, 1, { 'last-event-id': 'inc_00000000000000000004:1' });
    expect(reset!.event).toBe('reset');
    const resumed = await events(url, buffer.events - 1, { 'last-event-id': buffer.oldestId! });
    expect(resumed.map((e) => e.id)).toEqual(Array.from({ length: buffer.events - 1 }, (_, i) => `inc_00000000000000000004:${51 - buffer.events + 1 + i}`));
  });
});
