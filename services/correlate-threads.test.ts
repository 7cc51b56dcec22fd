import { describe, expect, it } from 'vitest';
import { RewindError } from './bus/bus.js';
import type { Config } from './config.js';
import { rawSignals, ThreadedCorrelator } from './correlate-threads.js';
import { createLogger } from './logging.js';
import { Metrics } from './metrics.js';
import { describeError, reviveError } from './workers/correlate-protocol.js';
import { KubevigilError } from '../correlator/errors.js';

describe('ThreadedCorrelator', () => {
  it('refuses to start, with the worker’s own error, when a worker cannot start', async () => {
    const started = ThreadedCorrelator.start({
      config: {} as Config,
      workers: 2,
      logger: createLogger('silent'),
      metrics: new Metrics(),
      publish: () => Promise.resolve(),
      park: () => Promise.resolve(),
      script: { url: new URL('data:text/javascript,throw new Error("cannot reach the rule files")') },
    });
    await expect(started).rejects.toThrow('cannot reach the rule files');
  });

  it('hands a signal over as its bytes, its headers, where its evidence starts and where its shared part starts', () => {
    const value = Buffer.from('{"id":"s1","kind":"k","matched":[]}');
    const headers = { 'content-type': 'application/json', 'x-kubevigil-evidence-at': '20', 'x-kubevigil-shared': '10:12345' };
    const header = (name: string) => (headers as Record<string, string>)[name];
    expect(rawSignals.bytes!(value, header, headers)).toEqual({ value, headers, evidenceAt: 20, sharedAt: 10, sharedHash: 12345 });
    const bare = rawSignals.bytes!(value, () => undefined, {}) as { evidenceAt: number; sharedAt: number; sharedHash: number };
    expect([bare.evidenceAt, bare.sharedAt, bare.sharedHash]).toEqual([NaN, NaN, NaN]);
  });

  it('raises the same kind of error on the main thread as the worker threw: a rewind stays a rewind, a catalogued error keeps its code', () => {
    const rewind = reviveError(describeError(new RewindError('moved on')));
    expect(rewind).toBeInstanceOf(RewindError);
    const busy = reviveError(describeError(new KubevigilError('STATE_UNAVAILABLE', 'redis down', true, 1)));
    expect(busy).toBeInstanceOf(KubevigilError);
    expect(busy).toMatchObject({ code: 'STATE_UNAVAILABLE', retryable: true, retryAfterSeconds: 1, message: 'redis down' });
  });
});
