import { describe, expect, it } from 'vitest';
import { RecentKeys } from './recent-keys.js';

describe('RecentKeys', () => {
  it('remembers up to its capacity and forgets the oldest first', () => {
    const k = new RecentKeys(3);
    for (const x of ['a', 'b', 'c', 'a', 'd']) k.add(x);
    expect(['a', 'b', 'c', 'd'].map((x) => k.has(x))).toEqual([false, true, true, true]);
    expect(k.size).toBe(3);
    expect(k.evicted).toBe(1);
    expect(() => new RecentKeys(0)).toThrow(RangeError);
  });
});
