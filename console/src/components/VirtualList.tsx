/**
 * A virtualized ARIA table: a scroll container whose body is as tall as every row together, with
 * only the rows in view (plus an overscan) in the DOM, each placed with a transform. Rows have one
 * fixed height. Positions are style objects (CSSOM), never style strings: the console's CSP forbids
 * those. Rows stay keyed by their item, so a focused link survives scrolling and re-sorting.
 */
import type { ComponentChildren, CSSProperties } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { visibleRange } from '../virtual';

export interface VirtualTableProps<T> {
  items: readonly T[];
  rowHeight: number;
  /** The header row's cells (role="columnheader"). */
  header: ComponentChildren;
  /** One row: give it role="row", the style and aria-rowindex passed in, and a key. */
  row: (item: T, index: number, style: CSSProperties, ariaRowIndex: number) => ComponentChildren;
  label: string;
  overscan?: number;
  class?: string;
  testId?: string;
}

export function VirtualTable<T>({ items, rowHeight, header, row, label, overscan = 10, class: cls, testId }: VirtualTableProps<T>) {
  const ref = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(800);
  const frame = useRef(0);

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    setViewport(el.clientHeight || 800);
    if (typeof ResizeObserver === 'undefined') return;
    const ro = new ResizeObserver(() => setViewport(el.clientHeight || 800));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  useEffect(() => () => cancelAnimationFrame(frame.current), []);

  const onScroll = () => {
    if (frame.current) return;
    frame.current = requestAnimationFrame(() => {
      frame.current = 0;
      if (ref.current) setScrollTop(ref.current.scrollTop);
    });
  };

  const [start, end] = visibleRange(scrollTop, viewport, rowHeight, items.length, overscan);
  const rows: ComponentChildren[] = [];
  for (let i = start; i < end; i++) rows.push(row(items[i]!, i, { transform: `translateY(${i * rowHeight}px)`, height: `${rowHeight}px` }, i + 2));

  return (
    <div ref={ref} class={`vtable ${cls ?? ''}`} role="table" aria-label={label} aria-rowcount={items.length + 1} data-testid={testId} onScroll={onScroll}>
      <div role="rowgroup" class="vtable-head">
        <div role="row" aria-rowindex={1} class="vrow vrow-head">
          {header}
        </div>
      </div>
      <div role="rowgroup" class="vtable-body" style={{ height: `${items.length * rowHeight}px` }}>
        {rows}
      </div>
    </div>
  );
}
