import { describe, expect, it } from 'vitest';
import { readReal } from '../../test/helpers/fixtures.js';
import { formatLabelSet, parseLabelSet } from './labels.js';
import { nsToMs } from './normalize.js';
import { decodePushJson, decodePushProtobuf, encodePushProtobuf, PushDecodeError, snappyLength } from './push.js';
import { LOKI_SOURCE, toNanos } from './source.js';

describe('label sets', () => {
  it('parses Prometheus label-set text with escapes, spacing and a trailing comma', () => {
    expect(parseLabelSet('{app="web", namespace="shop"}')).toEqual({ app: 'web', namespace: 'shop' });
    expect(parseLabelSet(' { a = "x\\"y\\\\z\\n" ,b="",} ')).toEqual({ a: 'x"y\\z\n', b: '' });
    expect(parseLabelSet('{}')).toEqual({});
  });

  it.each([
    ['app="x"', /expected "\{"/],
    ['{app="x"', /expected "," or "\}"/],
    ['{app=x}', /expected a quoted value/],
    ['{1app="x"}', /expected a label name/],
    ['{a="x", a="y"}', /duplicate label a/],
    ['{a="x} ', /unterminated value/],
    ['{a="x"} extra', /unexpected text/],
  ])('refuses %s', (text, re) => expect(() => parseLabelSet(text)).toThrow(re));

  it('formats canonically and round-trips', () => {
    const l = { z: 'last', a: 'q"uote\\' };
    expect(formatLabelSet(l)).toBe('{a="q\\"uote\\\\", z="last"}');
    expect(parseLabelSet(formatLabelSet(l))).toEqual(l);
  });
});

describe('push bodies', () => {
  it('decodes the documented JSON bodies', () => {
    const d = decodePushJson(JSON.parse(readReal('loki/push-request-json-structured-metadata.docs.json')), 'team-a');
    expect(d).toEqual({
      streams: 1,
      truncated: 0,
      entries: [
        {
          line: 'fizzbuzz',
          labels: { foo: 'bar2' },
          metadata: { trace_id: '0242ac120002', user_id: 'superUser123' },
          tenant: 'team-a',
          time: '1570818238000000000',
        },
      ],
    });
  });

  it('round-trips protobuf with nanosecond precision and metadata', () => {
    const body = encodePushProtobuf([
      {
        labels: { app: 'a' },
        entries: [
          { time: '1764410400123456789', line: 'x', metadata: { k: 'v' } },
          { time: '5', line: '' },
        ],
      },
    ]);
    expect(snappyLength(body)).toBeGreaterThan(0);
    expect(decodePushProtobuf(body).entries).toEqual([
      { line: 'x', labels: { app: 'a' }, metadata: { k: 'v' }, tenant: 'fake', time: '1764410400123456789' },
      { line: '', labels: { app: 'a' }, metadata: {}, tenant: 'fake', time: '5' },
    ]);
  });

  it('bounds entries per push and truncates long lines', () => {
    const values = Array.from({ length: 5 }, (_, i) => [String(i + 1), 'y'.repeat(20)]);
    const limits = { maxEntries: 4, maxLineLength: 10, maxDecompressedBytes: 1 << 20 };
    expect(() => decodePushJson({ streams: [{ stream: { a: 'b' }, values }] }, 'fake', limits)).toThrow(PushDecodeError);
    const ok = decodePushJson({ streams: [{ stream: { a: 'b' }, values: values.slice(0, 2) }] }, 'fake', limits);
    expect(ok.truncated).toBe(2);
    expect(ok.entries[0]!.line).toBe('y'.repeat(10));
  });
});

describe('LOKI_SOURCE.decode', () => {
  it('takes one {labels, line, time} object with ns or RFC 3339 time', () => {
    const a = LOKI_SOURCE.decode({ labels: { a: 'b' }, line: 'x', time: '2026-11-29T10:00:00.123456789Z' }, 0);
    expect(a.invalid).toEqual([]);
    expect((a.events[0]!.raw as { time: string }).time).toBe('1795946400123456789');
    const b = LOKI_SOURCE.decode({ labels: { a: 'b' }, line: 'x' }, 1234);
    expect(nsToMs((b.events[0]!.raw as { time: string }).time)).toBe(1234);
    expect(toNanos('yesterday')).toBeUndefined();
  });

  it('reports problems instead of throwing', () => {
    expect(LOKI_SOURCE.decode(42, 0).invalid[0]).toMatch(/expected a Loki push body/);
    expect(LOKI_SOURCE.decode({ labels: { a: 'b' } }, 0).invalid).toEqual(['line must be a string']);
    expect(LOKI_SOURCE.decode({ labels: {}, line: 'x' }, 0).invalid[0]).toMatch(/at least one label/);
    expect(LOKI_SOURCE.decode({ labels: { a: 'b' }, line: 'x', time: 5 }, 0).invalid[0]).toMatch(/time must be/);
    expect(LOKI_SOURCE.decode({ streams: 'no' }, 0).invalid[0]).toMatch(/streams must be an array/);
  });
});
