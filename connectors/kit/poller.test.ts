import { describe, expect, it } from 'vitest';
import { CursorStateError, CursorStore, readBounded, ResponseTooLargeError } from './poller.js';

describe('CursorStore', () => {
  const parse = (v: unknown) => (typeof v === 'object' && v !== null && typeof (v as { end?: unknown }).end === 'number' ? (v as { end: number }) : undefined);

  it('saves and loads JSON under the poller’s key, and treats what does not parse as no cursor', async () => {
    const map = new Map<string, string>();
    const store = new CursorStore({ get: (k) => map.get(k), set: (k, v) => void map.set(k, v) }, (n) => `p.cursor.${n}`, parse);
    await store.save('q1', { end: 42 });
    expect(map.get('p.cursor.q1')).toBe('{"end":42}');
    expect(await store.load('q1')).toEqual({ end: 42 });
    map.set('p.cursor.q2', '{not json');
    map.set('p.cursor.q3', '{"end":"soon"}');
    expect(await store.load('q2')).toBeUndefined();
    expect(await store.load('q3')).toBeUndefined();
    expect(await store.load('never')).toBeUndefined();
  });

  it('reports a failing state store as a CursorStateError naming the cursor', async () => {
    const store = new CursorStore(
      {
        get: () => Promise.reject(new Error('redis down')),
        set: () => Promise.reject(new Error('disk full')),
      },
      (n) => n,
      parse,
    );
    await expect(store.load('q')).rejects.toThrow(new CursorStateError('cannot read the cursor of q: redis down'));
    await expect(store.save('q', { end: 1 })).rejects.toThrow(/cannot save the cursor of q: disk full/);
  });
});

describe('readBounded', () => {
  it('reads an answer within the bound', async () => {
    expect(await readBounded(new Response('hello'), 5)).toBe('hello');
  });

  it('refuses an answer past the bound, declared or streamed', async () => {
    await expect(readBounded(new Response('x'.repeat(10), { headers: { 'content-length': '10' } }), 5)).rejects.toBeInstanceOf(ResponseTooLargeError);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 4; i++) c.enqueue(new Uint8Array(3));
        c.close();
      },
    });
    await expect(readBounded(new Response(stream), 10)).rejects.toThrow(/more than 10 bytes/);
  });
});
