import type { KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
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
});
