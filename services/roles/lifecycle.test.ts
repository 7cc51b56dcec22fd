import { describe, expect, it } from 'vitest';
import { createLogger } from '../logging.js';
import { component, Lifecycle, type Component } from './lifecycle.js';

const logger = createLogger('silent');

/** Components that record their starts and stops in `log`. */
function recorder(log: string[]) {
  return (name: string, o: { failStart?: boolean; failStop?: boolean; ready?: () => boolean } = {}): Component =>
    component(name, {
      start: async () => {
        await Promise.resolve();
        if (o.failStart) throw new Error(`${name} cannot start`);
        log.push(`start ${name}`);
      },
      stop: async () => {
        log.push(`stop ${name}`);
        if (o.failStop) throw new Error(`${name} cannot stop`);
      },
      ...(o.ready ? { ready: async () => o.ready!() } : {}),
    });
}

describe('Lifecycle', () => {
  it('starts in order and stops in reverse order, once', async () => {
    const log: string[] = [];
    const c = recorder(log);
    const lc = new Lifecycle(logger);
    await lc.run(async () => {
      for (const n of ['store', 'bus', 'correlator', 'http']) await lc.start(c(n));
    });
    await Promise.all([lc.stop(), lc.stop()]);
    await lc.stop();
    expect(log).toEqual(['start store', 'start bus', 'start correlator', 'start http', 'stop http', 'stop correlator', 'stop bus', 'stop store']);
  });

  it('stops what started, last first, when a later start fails, and rethrows the failure', async () => {
    const log: string[] = [];
    const c = recorder(log);
    const lc = new Lifecycle(logger);
    await expect(
      lc.run(async () => {
        await lc.start(c('store'));
        await lc.start(c('bus'));
        await lc.start(c('http', { failStart: true }));
      }),
    ).rejects.toThrow('http cannot start');
    expect(log).toEqual(['start store', 'start bus', 'stop bus', 'stop store']);
    // Nothing starts on a lifecycle that gave up.
    await expect(lc.start(c('late'))).rejects.toThrow(/cannot start late/);
  });

  it('also stops what started when the wiring between two starts throws', async () => {
    const log: string[] = [];
    const lc = new Lifecycle(logger);
    await expect(
      lc.run(async () => {
        await lc.start(recorder(log)('store'));
        throw new Error('bad poller options');
      }),
    ).rejects.toThrow('bad poller options');
    expect(log).toEqual(['start store', 'stop store']);
  });

  it('stops every component even when one fails to stop, then rejects with that failure', async () => {
    const log: string[] = [];
    const c = recorder(log);
    const lc = new Lifecycle(logger);
    await lc.run(async () => {
      await lc.start(c('store'));
      await lc.start(c('bus', { failStop: true }));
      await lc.start(c('http'));
    });
    await expect(lc.stop()).rejects.toThrow('bus cannot stop');
    expect(log.filter((l) => l.startsWith('stop'))).toEqual(['stop http', 'stop bus', 'stop store']);
  });

  it('is ready once running, while every component is, and no longer once stopping', async () => {
    let kafka = true;
    const c = recorder([]);
    const lc = new Lifecycle(logger);
    let duringStart: boolean | undefined;
    await lc.run(async () => {
      await lc.start(c('bus', { ready: () => kafka }));
      duringStart = await lc.ready();
    });
    expect(duringStart).toBe(false);
    expect(await lc.ready()).toBe(true);
    kafka = false;
    expect(await lc.ready()).toBe(false);
    kafka = true;
    const stopping = lc.stop();
    expect(await lc.ready()).toBe(false);
    await stopping;
  });
});
