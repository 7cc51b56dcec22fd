import { describe, expect, it } from 'vitest';
import { visibleRange } from './virtual';

describe('visibleRange', () => {
  it('renders the rows in view plus the overscan, clamped to the list', () => {
    expect(visibleRange(0, 400, 40, 10_000, 5)).toEqual([0, 15]);
    expect(visibleRange(4000, 400, 40, 10_000, 5)).toEqual([95, 115]);
    expect(visibleRange(399_600, 400, 40, 10_000, 5)).toEqual([9985, 10_000]);
  });
  it('copes with an empty list, a negative (overscrolled) top and a scroll past the end', () => {
    expect(visibleRange(0, 400, 40, 0, 5)).toEqual([0, 0]);
    expect(visibleRange(-50, 400, 40, 100, 2)).toEqual([0, 12]);
    expect(visibleRange(1_000_000, 400, 40, 100, 2)).toEqual([100, 100]);
  });
});
