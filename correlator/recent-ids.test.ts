import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encodeId } from './correlation/packed.js';
import { RecentIds } from './recent-ids.js';
import { RecentKeys } from './recent-keys.js';

const hex = (i: number) => createHash('sha256').update(String(i)).digest('hex').slice(0, 32);

describe('RecentIds', () => {
  it('remembers up to its capacity and forgets the oldest first, as RecentKeys does', () => {
    const k = new RecentIds(3);
    const ids = [hex(1), hex(2), hex(3), hex(1), hex(4)];
    for (const x of ids) k.add(x);
    expect([1, 2, 3, 4].map((i) => k.has(hex(i)))).toEqual([false, true, true, true]);
    expect(k.size).toBe(3);
    expect(k.evicted).toBe(1);
    expect(() => new RecentIds(0)).toThrow(RangeError);
  });

  it('agrees with RecentKeys over a long mixed stream (growth, wrap-around, deletions, other ids)', () => {
    const a = new RecentIds(2500);
    // Hex ids and other ids are bounded apart: the model is one RecentKeys for each.
    const hexKeys = new RecentKeys(2500);
    const otherKeys = new RecentKeys(2500);
    const b = {
      of: (id: string) => (/^[0-9a-f]{32}$/.test(id) ? hexKeys : otherKeys),
      has(id: string) {
        return this.of(id).has(id);
      },
      add(id: string) {
        this.of(id).add(id);
      },
    };
    for (let i = 0; i < 20_000; i++) {
      // Repeats of recent and old ids, some ids that are not 32 hex digits, upper case too.
      const n = i % 7 === 0 ? i - 2000 : i % 11 === 0 ? i - 3000 : i;
      const id = n % 13 === 0 ? `other-${n}` : n % 17 === 0 ? hex(n).toUpperCase() : hex(n);
      expect(a.has(id)).toBe(b.has(id));
      const fresh = !b.has(id);
      const key = a.addNew(id);
      b.add(id);
      expect(key).toBe(fresh ? encodeId(id) : undefined);
    }
    for (let n = 0; n < 20_000; n += 3) expect(a.has(hex(n))).toBe(b.has(hex(n)));
    expect(a.size).toBe(hexKeys.size + otherKeys.size);
    expect(a.evicted).toBe(hexKeys.evicted + otherKeys.evicted);
  });
});
