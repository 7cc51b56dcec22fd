import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { listen, type Listening } from '../../test/helpers/http.js';
import { ingestLimits } from './limits.js';

describe('ingestLimits', () => {
  let srv: Listening | undefined;
  afterEach(() => srv?.close());

  it('refuses beyond the rate with the sender-specific status and Retry-After, refilling with time', async () => {
    let now = 0;
    const rejected: string[] = [];
    const app = express();
    app.post(
      '/x',
      ingestLimits(
        { maxInFlight: 100, ratePerSecond: 2, burst: 2, status: 429, retryAfterSeconds: 3 },
        (r) => rejected.push(r),
        () => now,
      ),
      (_req, res) => {
        res.status(204).end();
      },
    );
    srv = await listen(app);
    const post = () => fetch(`${srv!.url}/x`, { method: 'POST' });
    expect((await post()).status).toBe(204);
    expect((await post()).status).toBe(204);
    const third = await post();
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBe('3');
    now += 500; // half a second buys one request at 2/s
    expect((await post()).status).toBe(204);
    expect(rejected).toEqual(['rate']);
  });

  it('refuses requests beyond the in-flight bound and frees the slot when a response finishes', async () => {
    const held: (() => void)[] = [];
    const app = express();
    app.post('/x', ingestLimits({ maxInFlight: 2, ratePerSecond: 0, burst: 1, status: 503, retryAfterSeconds: 1 }), (_req, res) => {
      held.push(() => res.status(204).end());
    });
    srv = await listen(app);
    const post = () => fetch(`${srv!.url}/x`, { method: 'POST' });
    const a = post();
    const b = post();
    while (held.length < 2) await new Promise((r) => setImmediate(r));
    const c = await post();
    expect(c.status).toBe(503);
    held.shift()!();
    expect((await a).status).toBe(204);
    const d = post();
    while (held.length < 2) await new Promise((r) => setImmediate(r));
    for (const h of held.splice(0)) h();
    expect((await b).status).toBe(204);
    expect((await d).status).toBe(204);
  });
});
