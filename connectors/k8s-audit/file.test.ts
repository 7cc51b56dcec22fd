import { appendFileSync, mkdtempSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditFileFollower, readAuditStream } from './file.js';

const line = (id: string) => `${JSON.stringify({ auditID: id, stage: 'ResponseComplete', verb: 'get', user: { username: 'u' } })}\n`;

async function collect(text: string, chunk = 2) {
  const ids: string[] = [];
  const invalid: string[] = [];
  for await (const c of readAuditStream(Readable.from([text]), chunk)) {
    ids.push(...c.events.map((e) => e.auditID));
    invalid.push(...c.invalid.map((i) => i.reason));
  }
  return { ids, invalid };
}

describe('readAuditStream', () => {
  it('reads JSON lines in chunks, reporting bad lines by number', async () => {
    const r = await collect(`${line('a')}${line('b')}not json\n${line('c')}`);
    expect(r.ids).toEqual(['a', 'b', 'c']);
    expect(r.invalid).toEqual([expect.stringMatching(/^line 3: malformed JSON/)]);
  });

  it('reads a pretty-printed EventList as one document', async () => {
    const doc = JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: [JSON.parse(line('x')), JSON.parse(line('y'))] }, null, 2);
    expect(await collect(doc)).toEqual({ ids: ['x', 'y'], invalid: [] });
  });
});

describe('AuditFileFollower', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kv-follow-'));
    path = join(dir, 'audit.log');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads appended lines, holds a partial line until it is complete', async () => {
    const f = new AuditFileFollower(path);
    expect((await f.poll()).events).toEqual([]); // not created yet
    writeFileSync(path, line('1') + line('2').slice(0, 10));
    expect((await f.poll()).events.map((e) => e.auditID)).toEqual(['1']);
    appendFileSync(path, line('2').slice(10) + line('3'));
    expect((await f.poll()).events.map((e) => e.auditID)).toEqual(['2', '3']);
    expect((await f.poll()).events).toEqual([]);
    await f.close();
  });

  it('finishes the old file on rotation, then follows the new one', async () => {
    writeFileSync(path, line('1'));
    const f = new AuditFileFollower(path);
    expect((await f.poll()).events.map((e) => e.auditID)).toEqual(['1']);
    appendFileSync(path, line('2')); // written just before rotation
    renameSync(path, `${path}.1`);
    writeFileSync(path, line('3'));
    expect((await f.poll()).events.map((e) => e.auditID)).toEqual(['2', '3']);
    expect(f.rotations).toBe(1);
    appendFileSync(path, line('4'));
    expect((await f.poll()).events.map((e) => e.auditID)).toEqual(['4']);
    await f.close();
  });

  it('starts over after copytruncate', async () => {
    writeFileSync(path, line('1') + line('2'));
    const f = new AuditFileFollower(path);
    await f.poll();
    truncateSync(path, 0);
    appendFileSync(path, line('3'));
    expect((await f.poll()).events.map((e) => e.auditID)).toEqual(['3']);
    await f.close();
  });

  it('can start at the end of an existing file', async () => {
    writeFileSync(path, line('old'));
    const f = new AuditFileFollower(path, { fromStart: false });
    expect((await f.poll()).events).toEqual([]);
    appendFileSync(path, line('new'));
    expect((await f.poll()).events.map((e) => e.auditID)).toEqual(['new']);
    await f.close();
  });
});
