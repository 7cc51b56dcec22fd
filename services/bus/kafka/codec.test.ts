import type { KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import type { MessageParser } from '../bus.js';
import { decode } from './codec.js';

const message = (value: string | null, headers: KafkaMessage['headers'] = {}): KafkaMessage =>
  ({ key: Buffer.from('k'), value: value === null ? null : Buffer.from(value), headers, offset: '0', timestamp: '0', attributes: 0 }) as KafkaMessage;

describe('decoding a fetched message', () => {
  it('reads JSON objects labelled as JSON however the label is written, or not labelled', () => {
    for (const ct of [
      Buffer.from('application/json'),
      'application/json',
      Buffer.from('Application/JSON; charset=utf-8'),
      [Buffer.from('application/json')],
      undefined,
    ]) {
      const d = decode(message('{"a":1}', ct === undefined ? {} : { 'content-type': ct }));
      expect(d).toMatchObject({ kind: 'ok', value: { a: 1 } });
    }
  });

  it('sends anything else to the dead-letter topic with the reason, and skips tombstones', () => {
    expect(decode(message('{"a":1}', { 'content-type': Buffer.from('text/plain') }))).toEqual({
      kind: 'dead',
      reason: 'content-type "text/plain" is not application/json',
    });
    expect(decode(message('[1]'))).toEqual({ kind: 'dead', reason: 'value is JSON array, not an object' });
    expect(decode(message('{"a":'))).toMatchObject({ kind: 'dead', reason: expect.stringMatching(/^value is not JSON/) });
    expect(decode(message(null))).toEqual({ kind: 'skip' });
  });

  it('gives a bytes parser each message’s own headers while it runs, and a failing one a dead letter', () => {
    let kept: ((name: string) => string | undefined) | undefined;
    const parser: MessageParser = Object.assign((json: string) => JSON.parse(json) as unknown, {
      bytes: (value: Buffer, header: (name: string) => string | undefined) => {
        kept = header;
        if (header('x-fail') !== undefined) throw new SyntaxError('refused');
        return { text: value.toString(), tag: header('x-tag'), listed: header('x-list') };
      },
    });
    const first = decode(message('a', { 'x-tag': Buffer.from('one'), 'x-list': [Buffer.from('p'), Buffer.from('q')] }), parser);
    expect(first).toMatchObject({ kind: 'ok', value: { text: 'a', tag: 'one', listed: 'p' } });
    expect(decode(message('b', { 'x-tag': 'two' }), parser)).toMatchObject({ kind: 'ok', value: { text: 'b', tag: 'two', listed: undefined } });
    // After the call, the reader no longer reads the message it was given for.
    expect(kept!('x-tag')).toBeUndefined();
    expect(decode(message('c', { 'x-fail': '1' }), parser)).toEqual({ kind: 'dead', reason: 'value is not JSON: refused' });
    expect(kept!('x-fail')).toBeUndefined();
    expect(decode(message('d'), parser)).toMatchObject({ kind: 'ok', value: { text: 'd', tag: undefined } });
  });
});
