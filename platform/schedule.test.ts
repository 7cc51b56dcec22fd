import { describe, expect, it } from 'vitest';
import { getTasks } from 'node-cron';
import { PollSchedule } from './schedule.js';

describe('PollSchedule', () => {
  it('runs one poll at a time: calls made while a poll runs share it', async () => {
    let runs = 0;
    let release!: () => void;
    const s = new PollSchedule('test', '* * * * *', async () => {
      runs++;
      await new Promise<void>((r) => (release = r));
      return runs;
    });
    const a = s.pollOnce();
    const b = s.pollOnce();
    release();
    expect(await Promise.all([a, b])).toEqual([1, 1]);
    const c = s.pollOnce();
    release();
    expect(await c).toBe(2);
  });

  it('refuses a schedule that is not a cron expression, naming it', () => {
    expect(() => new PollSchedule('loki-poller', 'every minute', async () => 0)).toThrow(/loki-poller: "every minute" is not a cron expression/);
  });

  it('lets go of its task when stopped (node-cron would otherwise keep it, and all its poll reaches, for good)', async () => {
    const before = new Set(getTasks().keys());
    const s = new PollSchedule('test-release', '* * * * *', async () => 0);
    s.start();
    const added = [...getTasks().keys()].filter((k) => !before.has(k));
    expect(added).toHaveLength(1);
    await s.stop();
    expect(getTasks().has(added[0]!)).toBe(false);
  });
});
