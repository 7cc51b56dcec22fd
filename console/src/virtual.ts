/** The virtualized table's arithmetic. Pure: unit-tested in node (virtual.test.ts). */

/** Which rows to render for a scroll position: [start, end), the rows in view plus `overscan` either side, clamped to the list. */
export function visibleRange(scrollTop: number, viewport: number, rowHeight: number, count: number, overscan: number): [number, number] {
  const top = Math.max(0, scrollTop);
  const start = Math.min(count, Math.max(0, Math.floor(top / rowHeight) - overscan));
  const end = Math.min(count, Math.ceil((top + Math.max(0, viewport)) / rowHeight) + overscan);
  return [start, Math.max(start, end)];
}
