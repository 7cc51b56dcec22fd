import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { readReal, realFixture } from '../../test/helpers/fixtures.js';
import { AuditPayloadError, decodeAuditJson, decodeAuditLines, decodeAuditValue } from './parse.js';

describe('decoding real audit payloads', () => {
  it('decodes every Falco trace file, v1beta1 and v1, with no invalid event', () => {
    const dir = realFixture('k8s-audit/falco-trace-files');
    let total = 0;
    for (const f of readdirSync(dir)) {
      const b = decodeAuditLines(readReal(`k8s-audit/falco-trace-files/${f}`));
      expect(b.invalid, f).toEqual([]);
      total += b.events.length;
    }
    expect(total).toBe(17); // 11 single-event files + 6 ConfigMap events
  });

  it.each([
    ['k8s-audit/webhook-eventlist-bodies-k8s1.20.jsonl', 2],
    ['k8s-audit/log-backend-kind-v1.30.jsonl', 3],
    ['k8s-audit/log-backend-openshift-403-forbid.jsonl', 2],
    ['k8s-audit/psa-audit-violations-kind-v1.30.jsonl', 1],
    ['k8s-audit/audit2rbac/demo.log', 37],
  ])('decodes %s', (rel, count) => {
    const b = decodeAuditLines(readReal(rel));
    expect(b.invalid).toEqual([]);
    expect(b.events).toHaveLength(count);
  });
});

describe('decoding bad input', () => {
  it('reports a bad line and keeps the good ones', () => {
    const b = decodeAuditLines(
      '{"auditID":"a","stage":"ResponseComplete","verb":"get","user":{}}\n{nope\n\n{"auditID":"b","stage":"Panic","verb":"get","user":{"username":"x"}}\n',
    );
    expect(b.events.map((e) => e.auditID)).toEqual(['a', 'b']);
    expect(b.invalid).toEqual([{ index: 1, reason: expect.stringMatching(/^line 2: malformed JSON/) }]);
  });

  it.each([
    [{ auditID: 1, stage: 'ResponseComplete', verb: 'get', user: {} }, /auditID is required/],
    [{ auditID: 'a', stage: 'ResponseComplete', verb: 'get' }, /user must be an object/],
    [{ auditID: 'a', stage: 'ResponseComplete', verb: 'get', user: { groups: 'x' } }, /user.groups must be a list/],
    [{ auditID: 'a', stage: 'ResponseComplete', verb: 'get', user: {}, sourceIPs: [1] }, /sourceIPs must be a list of strings/],
    [{ auditID: 'a', stage: 'ResponseComplete', verb: 'get', user: {}, responseStatus: { code: '403' } }, /responseStatus.code must be a number/],
    [{ auditID: 'a', stage: 'ResponseComplete', verb: 'get', user: {}, annotations: { a: 1 } }, /annotations must be an object of strings/],
    [{ auditID: 'a', stage: 'ResponseComplete', verb: 'get', user: {}, stageTimestamp: 5 }, /stageTimestamp must be an RFC 3339/],
    [
      { auditID: 'a', stage: 'ResponseComplete', verb: 'get', user: {}, stageTimestamp: 'yesterday' },
      /stageTimestamp \("yesterday"\) is not an RFC 3339 timestamp/,
    ],
    [
      { auditID: 'a', stage: 'ResponseComplete', verb: 'get', user: {}, stageTimestamp: '-000001-01-01T00:00:00Z' },
      /stageTimestamp -000001-01-01T00:00:00Z is outside the accepted range.*fix the sender's clock/,
    ],
    [
      { auditID: 'a', stage: 'ResponseComplete', verb: 'get', user: {}, requestReceivedTimestamp: '3000-01-01T00:00:00Z' },
      /requestReceivedTimestamp 3000-01-01T00:00:00Z is outside the accepted range/,
    ],
  ])('names the field that is wrong: %j', (value, reason) => {
    const b = decodeAuditValue([value]);
    expect(b.events).toEqual([]);
    expect(b.invalid[0]!.reason).toMatch(reason);
  });

  it('keeps the valid events of a batch whose one event has a year -1 timestamp', () => {
    const ok = { auditID: 'ok', stage: 'ResponseComplete', verb: 'get', user: {}, stageTimestamp: '2026-12-06T09:00:00Z' };
    const b = decodeAuditValue([ok, { ...ok, auditID: 'bad', stageTimestamp: '-000001-01-01T00:00:00Z' }]);
    expect(b.events.map((e) => e.auditID)).toEqual(['ok']);
    expect(b.invalid).toEqual([{ index: 1, auditID: 'bad', reason: expect.stringContaining('outside the accepted range') }]);
  });

  it('refuses a body that is not an event, a list or an array', () => {
    expect(() => decodeAuditJson('null')).toThrow(AuditPayloadError);
    expect(() => decodeAuditJson('"x"')).toThrow(/expected an audit EventList/);
    expect(() => decodeAuditJson('{"kind":"EventList","items":5}')).toThrow(/items must be an array/);
  });
});
