import { afterEach, describe, expect, it, vi } from 'vitest';
import { dismissAuthProblem, lastAuthProblem, setToken } from './api';
import { openIncidentStream, type StreamState } from './stream';

/** A fetch that answers each call with the next scripted event-stream body (or status), and records the Last-Event-ID sent. */
function scriptedFetch(answers: ({ status: number } | string)[]) {
  const sent: (string | undefined)[] = [];
  const fetch = vi.fn(async (_url: string, init: RequestInit) => {
    sent.push((init.headers as Record<string, string>)['Last-Event-ID']);
    const a = answers.shift();
    if (a === undefined) return new Promise<Response>(() => undefined); // the last connection stays open
    if (typeof a !== 'string') return new Response(JSON.stringify({ detail: `answered ${a.status}` }), { status: a.status });
    return new Response(a, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
  });
  return { fetch, sent };
}

const incident = (id: string, v: number) => `event: incident\nid: ${id}:${v}\ndata: ${JSON.stringify({ id, version: v })}\n\n`;

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('openIncidentStream', () => {
  it('resumes after a drop (the server asks for a 10 ms retry) with the last event id, and forgets it after a reset (or every reconnect would reset again)', async () => {
    const { fetch, sent } = scriptedFetch(['retry: 10\n\n' + incident('inc_a', 1) + incident('inc_b', 3), 'event: reset\ndata: {}\n\n', incident('inc_c', 1)]);
    vi.stubGlobal('fetch', fetch);
    const seen: string[] = [];
    const states: StreamState[] = [];
    let resets = 0;
    const close = openIncidentStream({ incident: (i) => seen.push(`${i.id}:${i.version}`), reset: () => resets++, state: (s) => states.push(s) });
    await vi.waitFor(() => expect(sent).toHaveLength(4));
    close();
    expect(seen).toEqual(['inc_a:1', 'inc_b:3', 'inc_c:1']);
    expect(resets).toBe(1);
    expect(sent).toEqual([undefined, 'inc_b:3', undefined, 'inc_c:1']);
    expect(states[0]).toBe('connecting');
    expect(states).toContain('reconnecting');
    expect(states.filter((s) => s === 'connecting')).toHaveLength(1);
  });

  it('on a 401 stops and raises the token prompt instead of looking live', async () => {
    setToken('old-token');
    const { fetch, sent } = scriptedFetch([{ status: 401 }]);
    vi.stubGlobal('fetch', fetch);
    const states: StreamState[] = [];
    openIncidentStream({ incident: () => undefined, reset: () => undefined, state: (s) => states.push(s) });
    await vi.waitFor(() => expect(lastAuthProblem()).toEqual({ status: 401, message: 'answered 401' }));
    expect(states.at(-1)).toBe('unauthorized');
    expect(sent).toHaveLength(1);
  });

  it('on a 401 to a token the user has since replaced, connects again with the new one instead of prompting', async () => {
    dismissAuthProblem();
    setToken('read-token');
    let answer!: (r: Response) => void;
    const tokens: (string | undefined)[] = [];
    const fetch = vi.fn((_url: string, init: RequestInit) => {
      tokens.push((init.headers as Record<string, string>).Authorization);
      if (tokens.length === 1) return new Promise<Response>((r) => (answer = r));
      return new Promise<Response>(() => undefined); // the second connection stays open
    });
    vi.stubGlobal('fetch', fetch);
    const close = openIncidentStream({ incident: () => undefined, reset: () => undefined });
    await vi.waitFor(() => expect(tokens).toHaveLength(1));
    setToken('write-token', { reload: false });
    answer(new Response(JSON.stringify({ detail: 'the bearer token is not valid for api' }), { status: 401 }));
    await vi.waitFor(() => expect(tokens).toEqual(['Bearer read-token', 'Bearer write-token']));
    expect(lastAuthProblem()).toBeUndefined();
    close();
  });
});
