import { connect } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { listen, type Listening } from '../../test/helpers/http.js';
import { ingestLimits, LoopDelayProbe, PROBE_MS, QueueDelayGate } from './limits.js';

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

describe('QueueDelayGate', () => {
  // A target of 250 ms and CoDel's interval of 100 ms; the loop and the clock are the test's.
  const loop = { delay: 0, previous: 0, busyMs: 0 };
  const fakeLoop = { current: () => loop.delay, previous: () => loop.previous, busy: () => loop.busyMs };
  const gate = () => new QueueDelayGate(250, fakeLoop);
  afterEach(() => Object.assign(loop, { delay: 0, previous: 0, busyMs: 0 }));

  it('refuses once the delay has stayed above the target for an interval, and admits again when it falls back', () => {
    const g = gate();
    loop.delay = 300;
    expect(g.refusal(1000)).toBeUndefined();
    expect(g.refusal(1060)).toBeUndefined();
    expect(g.refusal(1100)).toBe('standing');
    expect(g.refusal(1500)).toBe('standing');
    loop.delay = 40;
    expect(g.refusal(1510)).toBeUndefined();
    expect(g.refusal(5000)).toBeUndefined();
  });

  it('lets a spike shorter than the interval through, and starts the interval over after it', () => {
    const g = gate();
    loop.delay = 5000;
    expect(g.refusal(1000)).toBeUndefined();
    expect(g.refusal(1090)).toBeUndefined();
    loop.delay = 3;
    expect(g.refusal(1095)).toBeUndefined();
    loop.delay = 5000;
    expect(g.refusal(1150)).toBeUndefined();
    expect(g.refusal(1240)).toBeUndefined();
    expect(g.refusal(1250)).toBe('standing');
  });

  it('refuses at once when the queue stands again within a second of the last, as CoDel resumes dropping', () => {
    const g = gate();
    loop.delay = 400;
    g.refusal(0);
    expect(g.refusal(100)).toBe('standing');
    loop.delay = 10;
    expect(g.refusal(150)).toBeUndefined();
    loop.delay = 400;
    expect(g.refusal(600)).toBe('standing');
    loop.delay = 10;
    expect(g.refusal(610)).toBeUndefined();
    // Long after: a new episode waits for the interval again.
    loop.delay = 400;
    expect(g.refusal(5000)).toBeUndefined();
    expect(g.refusal(5100)).toBe('standing');
  });

  it('refuses when the uploads admitted ahead would take longer than the target to process', () => {
    const g = gate();
    // 10 requests started while the loop was busy 200 ms: 20 ms each.
    let t = 1000;
    expect(g.refusal(t)).toBeUndefined();
    for (let i = 0; i < 10; i++) g.admitted(t)();
    loop.busyMs = 200;
    expect(g.backlog(t)).toBe(0);
    expect(g.refusal(t)).toBeUndefined();
    // 12 uploads admitted and still arriving: 240 ms ahead of the next request.
    const uploads = Array.from({ length: 12 }, () => g.admitted(t));
    expect(g.backlog(t)).toBe(240);
    expect(g.refusal(t)).toBeUndefined();
    uploads.push(g.admitted(t));
    expect(g.refusal(t)).toBe('backlog');
    // One starts processing: no longer ahead.
    uploads.shift()!();
    expect(g.refusal(t)).toBeUndefined();
    uploads.push(g.admitted(t));
    expect(g.refusal(t)).toBe('backlog');
    // Uploads older than the target wait for their (slow) senders, not for kubevigil: not counted
    // while the loop is free, counted while it is busy.
    t += 300;
    expect(g.backlog(t)).toBe(0);
    loop.previous = 125;
    expect(g.refusal(t)).toBe('backlog');
    loop.previous = 0;
    expect(g.refusal(t)).toBeUndefined();
  });
});

describe('ingestLimits by queue delay', () => {
  let srv: Listening | undefined;
  afterEach(() => srv?.close());

  for (const status of [503, 429] as const)
    it(`answers ${status} with Retry-After and names the setting while the delay stands, and admits again after`, async () => {
      let now = 0;
      let delay = 0;
      const rejected: string[] = [];
      const app = express();
      app.post(
        '/x',
        ingestLimits(
          { maxInFlight: 100, ratePerSecond: 0, burst: 1, status, retryAfterSeconds: 2 },
          (r) => rejected.push(r),
          () => now,
          new QueueDelayGate(250, { current: () => delay, previous: () => 0, busy: () => 0 }),
        ),
        (_req, res) => {
          res.status(204).end();
        },
      );
      srv = await listen(app);
      const post = () => fetch(`${srv!.url}/x`, { method: 'POST' });
      expect((await post()).status).toBe(204);
      delay = 600;
      expect((await post()).status).toBe(204); // above the target, not yet for an interval
      now += 100;
      const refused = await post();
      expect(refused.status).toBe(status);
      expect(refused.headers.get('retry-after')).toBe('2');
      const problem = (await refused.json()) as { status: number; detail: string };
      expect(problem.status).toBe(status);
      expect(problem.detail).toBe(
        'kubevigil is overloaded: ready work has waited over 250 ms for the CPU for more than 100 ms (KUBEVIGIL_INGEST_MAX_QUEUE_DELAY); retry after 2s',
      );
      now += 5000;
      expect((await post()).status).toBe(status); // still standing: still refused
      delay = 20;
      now += 10;
      expect((await post()).status).toBe(204);
      expect(rejected).toEqual(['queue_delay', 'queue_delay']);
    });

  it('counts the uploads it admitted as work ahead until their body is in, and refuses past the target', async () => {
    const now = 1000;
    let busy = 0;
    const rejected: string[] = [];
    const gate = new QueueDelayGate(250, { current: () => 0, previous: () => 0, busy: () => busy });
    // The cost per request, learnt from 10 requests that kept the loop busy 100 ms each.
    gate.refusal(now);
    for (let i = 0; i < 10; i++) gate.admitted(now)();
    busy = 1000;
    const app = express();
    app.post(
      '/x',
      ingestLimits(
        { maxInFlight: 100, ratePerSecond: 0, burst: 1, status: 503, retryAfterSeconds: 1 },
        (r) => rejected.push(r),
        () => now,
        gate,
      ),
      (req, res) => {
        req.resume().on('end', () => res.status(204).end());
      },
    );
    srv = await listen(app);
    const { port } = new URL(srv.url);
    // Three uploads whose bodies have not all arrived: 300 ms of work ahead.
    const uploads = Array.from({ length: 3 }, () => {
      const s = connect(Number(port), '127.0.0.1');
      s.write('POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345');
      return s;
    });
    try {
      while (gate.backlog(now) < 300) await new Promise((r) => setImmediate(r));
      const refused = await fetch(`${srv.url}/x`, { method: 'POST', body: 'x' });
      expect(refused.status).toBe(503);
      expect(((await refused.json()) as { detail: string }).detail).toBe(
        'kubevigil is overloaded: the requests already admitted would keep this one waiting over 250 ms for the CPU (KUBEVIGIL_INGEST_MAX_QUEUE_DELAY); retry after 1s',
      );
      // Two bodies complete: 100 ms ahead, admitted again.
      uploads[0]!.write('67890');
      uploads[1]!.end('67890');
      while (gate.backlog(now) > 100) await new Promise((r) => setImmediate(r));
      expect((await fetch(`${srv.url}/x`, { method: 'POST', body: 'x' })).status).toBe(204);
      expect(rejected).toEqual(['queue_delay']);
    } finally {
      for (const s of uploads) s.destroy();
    }
  });

  it('leaves queue-delay admission off without maxQueueDelayMs', async () => {
    const app = express();
    app.post('/x', ingestLimits({ maxInFlight: 100, ratePerSecond: 0, burst: 1, status: 503, retryAfterSeconds: 1, maxQueueDelayMs: 0 }), (_req, res) => {
      res.status(204).end();
    });
    srv = await listen(app);
    expect((await fetch(`${srv.url}/x`, { method: 'POST' })).status).toBe(204);
  });
});

describe('LoopDelayProbe', () => {
  it('reports how late its timer is while a long turn lasts, the last turn after it, and stops when no one asks', () => {
    let t = 0;
    const due: (() => void)[] = [];
    const probe = new LoopDelayProbe(
      () => t,
      (run) => due.push(run),
      () => 0,
    );
    const runNext = () => due.shift()!();
    expect(probe.current()).toBe(0); // starts the timer
    expect(due).toHaveLength(1);
    t += PROBE_MS;
    runNext(); // on time
    expect([probe.current(), probe.previous()]).toEqual([0, 0]);
    t += PROBE_MS + 300; // a turn of the loop keeps it from running: the delay shows while it lasts
    expect(probe.current()).toBe(300);
    runNext();
    expect([probe.current(), probe.previous()]).toEqual([0, 300]); // that turn is over
    t += PROBE_MS;
    runNext();
    expect([probe.current(), probe.previous()]).toEqual([0, 0]);
    // Nobody asks for 10 s: the timer stops (no more runs due), and the next question starts it again.
    for (let i = 0; i < 2000 && due.length; i++) {
      t += PROBE_MS;
      runNext();
    }
    expect(due).toHaveLength(0);
    t += 60_000;
    expect(probe.current()).toBe(0);
    expect(due).toHaveLength(1);
  });
});
