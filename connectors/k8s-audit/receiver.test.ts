import { gzipSync } from 'node:zlib';
import express from 'express';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SourceEvent } from '../../correlator/detection/source-event.js';
import { BackpressureError } from '../../correlator/errors.js';
import type { IngestSink } from '../../correlator/ports.js';
import { readReal } from '../../test/helpers/fixtures.js';
import { listen, type Listening } from '../../test/helpers/http.js';
import { auditReceiver } from './receiver.js';

/** A sink that records what reached it and can be told to refuse, like a full bus. */
class RecordingSink implements IngestSink {
  events: SourceEvent[] = [];
  refuse = false;
  async ingest(events: readonly SourceEvent[]) {
    if (this.refuse) throw new BackpressureError('test bus', 1, 7);
    this.events.push(...events);
    return { signals: 0 };
  }
}

const webhookBodies = readReal('k8s-audit/webhook-eventlist-bodies-k8s1.20.jsonl').trim().split('\n');

function event(auditID: string, extra: Record<string, unknown> = {}) {
  return { auditID, stage: 'ResponseComplete', verb: 'get', requestURI: '/api/v1/namespaces/a/pods/p', user: { username: 'alice' }, ...extra };
}

describe('POST /ingest/k8s-audit', () => {
  let sink: RecordingSink;
  let srv: Listening;
  const post = (body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    fetch(`${srv.url}/ingest/k8s-audit`, { method: 'POST', body, headers });

  beforeEach(async () => {
    sink = new RecordingSink();
    const app = express();
    app.use(auditReceiver({ sink, maxBodyBytes: 64 * 1024, dedupEntries: 1000 }));
    srv = await listen(app);
  });
  afterEach(() => srv.close());

  it('accepts the EventList bodies kube-apiserver sends (items without kind/apiVersion)', async () => {
    for (const body of webhookBodies) {
      const res = await post(body);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ accepted: 1, invalid: 0 });
    }
    expect(sink.events.map((e) => e.key)).toEqual([
      'd2a97a82-f39e-41d0-8b31-dd74f42ac7fe/RequestReceived',
      'd2a97a82-f39e-41d0-8b31-dd74f42ac7fe/ResponseComplete',
    ]);
    expect(sink.events[1]!.details().actor.key).toBe('user:kubernetes-admin');
    expect(sink.events[1]!.details().target).toMatchObject({ namespace: 'kube-system', resource: 'pods', name: 'webhook-audit', verb: 'create' });
  });

  it('accepts a single Event, an array, JSON lines and gzip bodies', async () => {
    expect((await post(JSON.stringify(event('single')))).status).toBe(200);
    expect((await post(JSON.stringify([event('arr-1'), event('arr-2')]))).status).toBe(200);
    const lines = `${JSON.stringify(event('line-1'))}\n${JSON.stringify(event('line-2'))}\n`;
    expect((await post(lines, { 'content-type': 'application/x-ndjson' })).status).toBe(200);
    const gz = gzipSync(JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: [event('gz-1')] }));
    expect((await post(gz, { 'content-type': 'application/json', 'content-encoding': 'gzip' })).status).toBe(200);
    expect(sink.events.map((e) => e.key.split('/')[0])).toEqual(['single', 'arr-1', 'arr-2', 'line-1', 'line-2', 'gz-1']);
  });

  it('drops events already seen by (auditID, stage, receive time), within and across batches', async () => {
    const a = event('dup');
    const b = { ...event('dup'), stage: 'ResponseStarted' };
    const res = await post(JSON.stringify([a, a, b]));
    expect(await res.json()).toMatchObject({ accepted: 2, duplicates: 1 });
    const again = await post(JSON.stringify([a, b]));
    expect(await again.json()).toMatchObject({ accepted: 0, duplicates: 2 });
    expect(sink.events).toHaveLength(2);
  });

  it('keeps events that reuse an earlier auditID: a client chooses it (Audit-ID header), a re-send repeats the receive time too', async () => {
    const first = event('chosen-by-client', { requestReceivedTimestamp: '2026-12-06T10:00:00.000001Z' });
    // The same Audit-ID on a later request (an exec instead of a get): not a re-send.
    const later = event('chosen-by-client', {
      verb: 'create',
      requestURI: '/api/v1/namespaces/a/pods/p/exec',
      requestReceivedTimestamp: '2026-12-06T10:05:00.000002Z',
    });
    expect(await (await post(JSON.stringify([first]))).json()).toMatchObject({ accepted: 1, duplicates: 0 });
    expect(await (await post(JSON.stringify([later]))).json()).toMatchObject({ accepted: 1, duplicates: 0 });
    // The apiserver re-sending the batch: dropped.
    expect(await (await post(JSON.stringify([first, later]))).json()).toMatchObject({ accepted: 0, duplicates: 2 });
    expect(sink.events.map((e) => e.details().target.verb)).toEqual(['get', 'create']);
  });

  it('accepts a batch with invalid events, keeps the valid ones and reports the rest', async () => {
    const res = await post(
      JSON.stringify({
        kind: 'EventList',
        items: [event('good-1'), { auditID: 'bad-1', stage: 'Nope', verb: 'get', user: {} }, 42, event('good-2', { objectRef: 'x' }), event('good-3')],
      }),
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as { accepted: number; invalid: number; errors: { index: number; reason: string; auditID?: string }[] };
    expect(body.accepted).toBe(2);
    expect(body.invalid).toBe(3);
    expect(body.errors.map((e) => e.index)).toEqual([1, 2, 3]);
    expect(body.errors[0]).toMatchObject({ auditID: 'bad-1' });
    expect(body.errors[0]!.reason).toMatch(/stage must be one of/);
    expect(body.errors[2]!.reason).toBe('objectRef must be an object');
    expect(sink.events.map((e) => e.key.split('/')[0])).toEqual(['good-1', 'good-3']);
  });

  it.each([
    ['malformed JSON', '{"kind":"EventList","items":[', /malformed JSON/],
    ['an empty body', '', /body is empty/],
    ['a number', '42', /expected an audit EventList/],
    ['items that are not a list', '{"kind":"EventList","items":{}}', /items must be an array/],
  ])('answers 400 naming the problem for %s', async (_name, body, message) => {
    const res = await post(body);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(((await res.json()) as { detail: string }).detail).toMatch(message);
  });

  it('answers 415 for a wrong content type and 400 for gzip that does not decompress', async () => {
    const r1 = await post(JSON.stringify(event('x')), { 'content-type': 'text/plain' });
    expect(r1.status).toBe(415);
    expect(((await r1.json()) as { detail: string }).detail).toMatch(/application\/json/);
    const r2 = await post(Buffer.from('definitely not gzip'), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(r2.status).toBe(400);
    const r3 = await post(Buffer.from([0xff, 0xfe, 0x7b]), { 'content-type': 'application/json' });
    expect(r3.status).toBe(400);
    expect(((await r3.json()) as { detail: string }).detail).toMatch(/UTF-8/);
  });

  it('answers 413 past the body limit, also when the limit is crossed only after decompression', async () => {
    const big = JSON.stringify([event('big', { userAgent: 'x'.repeat(100 * 1024) })]);
    expect((await post(big)).status).toBe(413);
    const bomb = gzipSync(Buffer.alloc(10 * 1024 * 1024, 0x20)); // 10 MiB of spaces, ~10 KiB compressed
    expect(bomb.length).toBeLessThan(64 * 1024);
    const res = await post(bomb, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/KUBEVIGIL_MAX_BODY_BYTES/);
  });

  it('survives deep nesting and huge arrays, and keeps serving', async () => {
    const deep = `${'['.repeat(20000)}${']'.repeat(20000)}`;
    const r1 = await post(deep);
    expect(r1.status).toBe(200);
    expect(((await r1.json()) as { invalid: number }).invalid).toBe(1);
    const nested = JSON.stringify([event('deep', { requestObject: JSON.parse(`${'{"a":'.repeat(3000)}1${'}'.repeat(3000)}`) })]);
    expect((await post(nested)).status).toBe(200);
    expect((await post(JSON.stringify(event('after')))).status).toBe(200);
    expect(sink.events.map((e) => e.key.split('/')[0])).toEqual(['deep', 'after']);
  });

  it('answers 503 with Retry-After when the bus refuses, and accepts the re-sent batch later', async () => {
    sink.refuse = true;
    const body = JSON.stringify([event('retry-1'), event('retry-2')]);
    const r1 = await post(body);
    expect(r1.status).toBe(503);
    expect(r1.headers.get('retry-after')).toBe('7');
    sink.refuse = false;
    const r2 = await post(body);
    expect(await r2.json()).toMatchObject({ accepted: 2, duplicates: 0 });
  });
});
