/**
 * The incident list at `/`: every incident matching the filters in the URL (loaded page by page up
 * to 10,000), kept current by the event stream, in a virtualized table that stays smooth at that size.
 */
import { Component, type CSSProperties } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, ApiError, query } from '../api';
import { SeverityBadge, SourceChips, StatusBadge } from '../components/Badges';
import { anyOf, SelectField, SEVERITY_OPTIONS, type Option } from '../components/SelectField';
import { VirtualTable } from '../components/VirtualList';
import {
  EMPTY_FILTERS,
  filtersToSearch,
  hasFilters,
  matchesClientSide,
  matchesIncident,
  parseFilters,
  serverQuery,
  SINCE,
  SINCE_LABELS,
  SOURCES,
} from '../filters';
import type { IncidentFilters } from '../filters';
import { ago, formatTime } from '../format';
import { countText, MAX_INCIDENTS, mergeIncidents, upsertIncident, VersionsSeen } from '../incidents-store';
import { setSearch, useLocation } from '../router';
import { openIncidentStream, type StreamState } from '../stream';
import type { IncidentSummary } from '../types';
import '../list.css';

const STATUS_OPTIONS: readonly Option[] = [
  { value: '', label: 'Any' },
  { value: 'active', label: 'Active' },
  { value: 'open', label: 'Open' },
  { value: 'acknowledged', label: 'Acknowledged' },
  { value: 'resolved', label: 'Resolved' },
];
const SINCE_OPTIONS: readonly Option[] = [...Object.keys(SINCE).map((k) => ({ value: k, label: SINCE_LABELS[k] ?? k })), { value: '', label: 'All time' }];

const ROW_HEIGHT = 40;
const PAGE = 500;

interface Page {
  items: IncidentSummary[];
  nextCursor?: string | null;
}

export function IncidentList() {
  const loc = useLocation();
  const searchKey = loc.search.toString();
  const filters = useMemo(() => parseFilters(loc.search), [searchKey]);
  // The server filters everything but the source: a change of source re-filters what is loaded.
  const serverFilters = useMemo(() => ({ ...filters, source: '' }), [filters.severity, filters.status, filters.actor, filters.namespace, filters.since]);
  const serverKey = JSON.stringify(serverFilters);

  const [list, setList] = useState<readonly IncidentSummary[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | undefined>();
  const [truncated, setTruncated] = useState(false);
  const [reloads, setReloads] = useState(0);
  const [stream, setStream] = useState<StreamState>('connecting');
  const [now, setNow] = useState(() => Date.now());

  const keepRef = useRef<IncidentFilters>(serverFilters);
  keepRef.current = serverFilters;
  // Versions seen over the list's life: a late page never brings back what a newer event removed.
  const seen = useRef(new VersionsSeen()).current;
  // The list loads once the stream is attached (or has failed): a change made between the list
  // being read and the stream attaching would otherwise be missed until the incident changes again.
  const [streamAttached, setStreamAttached] = useState(false);
  const loadedKey = useRef<string | undefined>(undefined);
  // Ids the stream changed since the current load began.
  const streamed = useRef(new Set<string>()).current;

  // Load every page for the server-side filters; a newer load (filters changed, stream reset) cancels it.
  // New filters start from an empty list; a reload (after a stream reset) keeps showing the old one
  // until the new one is complete, so the table does not blink away or lose its scroll position.
  useEffect(() => {
    if (!streamAttached) return;
    const ctrl = new AbortController();
    const fresh = loadedKey.current !== serverKey;
    loadedKey.current = serverKey;
    streamed.clear();
    if (fresh) setList([]);
    setLoading(true);
    setError(undefined);
    setTruncated(false);
    const f = serverFilters;
    const keep = (inc: IncidentSummary) => matchesIncident(inc, keepRef.current, Date.now());
    void (async () => {
      const q = serverQuery(f, Date.now());
      let cursor: string | undefined;
      let loaded = 0;
      let acc: readonly IncidentSummary[] = [];
      try {
        do {
          const page = await api<Page>(`/api/v1/incidents${query({ ...q, limit: PAGE, cursor })}`, { signal: ctrl.signal });
          if (ctrl.signal.aborted) return;
          const items = Array.isArray(page.items) ? page.items : [];
          loaded += items.length;
          if (fresh) setList((l) => mergeIncidents(l, items, keep, seen));
          else acc = mergeIncidents(acc, items, keep, seen);
          cursor = page.nextCursor ?? undefined;
        } while (cursor && loaded < MAX_INCIDENTS);
        // The reloaded list replaces the old one, keeping what the stream brought meanwhile.
        if (!fresh)
          setList((l) =>
            mergeIncidents(
              acc,
              l.filter((i) => streamed.has(i.id)),
              keep,
            ),
          );
        setTruncated(!!cursor);
        setNow(Date.now());
      } catch (e) {
        if (ctrl.signal.aborted) return;
        setError(e instanceof ApiError ? `${e.message} (HTTP ${e.status})` : `Could not load the incidents: ${String(e)}`);
      } finally {
        if (!ctrl.signal.aborted) setLoading(false);
      }
    })();
    return () => ctrl.abort();
  }, [serverKey, reloads, streamAttached]);

  // Live changes: batched per animation frame so a burst of events is one re-render.
  useEffect(() => {
    let pending: IncidentSummary[] = [];
    let frame = 0;
    const flush = () => {
      frame = 0;
      const batch = pending;
      pending = [];
      for (const inc of batch) if (streamed.size < 100_000) streamed.add(inc.id);
      const keep = (inc: IncidentSummary) => matchesIncident(inc, keepRef.current, Date.now());
      setList((l) => (batch.length === 1 ? upsertIncident(l, batch[0]!, keep, seen) : mergeIncidents(l, batch, keep, seen)));
    };
    const close = openIncidentStream({
      incident: (inc) => {
        if (!inc || typeof inc.id !== 'string') return;
        pending.push(inc);
        // A hidden tab runs no animation frames: past 500 waiting events they are applied at once,
        // so the buffer stays bounded however long the tab stays in the background.
        if (pending.length >= 500) {
          cancelAnimationFrame(frame);
          flush();
        } else if (!frame) frame = requestAnimationFrame(flush);
      },
      reset: () => setReloads((n) => n + 1),
      state: (s) => {
        setStream(s);
        if (s !== 'connecting') setStreamAttached(true);
      },
    });
    return () => {
      close();
      cancelAnimationFrame(frame);
    };
  }, []);

  // "3 min ago" stays true.
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 30_000);
    return () => clearInterval(t);
  }, []);

  const shown = useMemo(() => (filters.source ? list.filter((i) => matchesClientSide(i, filters)) : list), [list, filters.source]);

  return (
    <section class="incident-list-page">
      <div class="page-head">
        <h1>Incidents</h1>
        <p class="page-meta">
          <span data-testid="incident-count">{countText(shown.length)}</span>
          {loading ? (
            <span class="muted" role="status">
              {' '}
              · loading…
            </span>
          ) : null}
          {truncated ? <span class="muted"> · showing the {MAX_INCIDENTS.toLocaleString('en-US')} most recent; narrow the filters to see others</span> : null}
          <span class="stream">
            <span class="visually-hidden">Live updates: </span>
            <span class={`stream-dot state-${stream}`} aria-hidden="true" />
            <span data-testid="stream-state" class={`stream-state state-${stream}`}>
              {stream}
            </span>
          </span>
        </p>
      </div>
      <Filters filters={filters} />
      {error ? (
        <p class="error" role="alert">
          {error}{' '}
          <button type="button" class="secondary" onClick={() => setReloads((n) => n + 1)}>
            Retry
          </button>
        </p>
      ) : null}
      {shown.length === 0 && !loading && !error ? (
        <p class="empty" data-testid="empty">
          {hasFilters(filters) ? 'No incidents match these filters' : 'No incidents yet — kubevigil is listening'}
        </p>
      ) : null}
      {shown.length > 0 ? (
        <VirtualTable
          items={shown}
          rowHeight={ROW_HEIGHT}
          label="Incidents, most recent first"
          class="incident-table"
          testId="incident-list"
          header={
            <>
              <div role="columnheader">Severity</div>
              <div role="columnheader">Status</div>
              <div role="columnheader">Title</div>
              <div role="columnheader">Actor</div>
              <div role="columnheader">Sources</div>
              <div role="columnheader">First seen</div>
              <div role="columnheader" aria-sort="descending">
                Last seen
              </div>
              <div role="columnheader" class="num">
                Signals
              </div>
            </>
          }
          row={(inc, _i, style, rowIndex) => <IncidentRow key={inc.id} inc={inc} style={style} rowIndex={rowIndex} now={now} />}
        />
      ) : null}
    </section>
  );
}

interface RowProps {
  inc: IncidentSummary;
  style: CSSProperties;
  rowIndex: number;
  now: number;
}

/** One row; re-rendered only when its incident, its place or the clock changes (scrolling keeps most rows). */
class IncidentRow extends Component<RowProps> {
  override shouldComponentUpdate(next: RowProps): boolean {
    const p = this.props;
    return next.inc !== p.inc || next.rowIndex !== p.rowIndex || next.now !== p.now;
  }

  override render({ inc, style, rowIndex, now }: RowProps) {
    return <IncidentRowView inc={inc} style={style} rowIndex={rowIndex} now={now} />;
  }
}

function IncidentRowView({ inc, style, rowIndex, now }: RowProps) {
  const first = formatTime(inc.firstSeen);
  const last = formatTime(inc.lastSeen);
  return (
    <div role="row" class={`vrow inc-row sev-row-${inc.severity}`} data-testid="incident-row" data-id={inc.id} aria-rowindex={rowIndex} style={style}>
      <div role="cell">
        <SeverityBadge severity={inc.severity} />
      </div>
      <div role="cell">
        <StatusBadge status={inc.status} />
      </div>
      <div role="cell" class="title-cell">
        <a href={`/incidents/${encodeURIComponent(inc.id)}`} title={inc.title || inc.id}>
          {inc.title || inc.id}
        </a>
      </div>
      <div role="cell" class="mono actor-cell" title={inc.actor?.name ?? inc.actor?.key}>
        {inc.actor?.key ?? ''}
      </div>
      <div role="cell" class="sources-cell" title={(inc.sources ?? []).join(', ')}>
        <SourceChips sources={inc.sources ?? []} />
      </div>
      <div role="cell" class="time-cell" title={first}>
        {first}
      </div>
      <div role="cell" class="time-cell" title={last}>
        <span>{last}</span>
        <span class="ago">{ago(inc.lastSeen, Math.max(now, Date.parse(inc.lastSeen) || 0))}</span>
      </div>
      <div role="cell" class="num">
        {inc.signalCount ?? 0}
      </div>
    </div>
  );
}

/** The filter bar: selects apply at once, the text fields as one types (debounced) or on Enter. */
function Filters({ filters }: { filters: IncidentFilters }) {
  const [actor, setActor] = useState(filters.actor);
  const [ns, setNs] = useState(filters.namespace);
  useEffect(() => setActor(filters.actor), [filters.actor]);
  useEffect(() => setNs(filters.namespace), [filters.namespace]);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(timer.current), []);

  const set = (k: keyof IncidentFilters, v: string) => setSearch({ [k]: v.trim() });
  const typed = (k: 'actor' | 'namespace', v: string) => {
    clearTimeout(timer.current);
    timer.current = setTimeout(() => set(k, v), 400);
  };

  return (
    <form
      class="filters"
      data-testid="filters"
      aria-label="Filter incidents"
      onSubmit={(e) => {
        e.preventDefault();
        clearTimeout(timer.current);
        setSearch({ actor: actor.trim(), namespace: ns.trim() });
      }}
    >
      <SelectField id="f-severity" name="severity" label="Severity" value={filters.severity} options={SEVERITY_OPTIONS} onChange={(v) => set('severity', v)} />
      <SelectField id="f-status" name="status" label="Status" value={filters.status} options={STATUS_OPTIONS} onChange={(v) => set('status', v)} />
      <div class="field">
        <label for="f-actor">Actor</label>
        <input
          id="f-actor"
          name="actor"
          type="search"
          placeholder="sa:namespace/name"
          autocomplete="off"
          spellcheck={false}
          value={actor}
          onInput={(e) => {
            const v = (e.target as HTMLInputElement).value;
            setActor(v);
            typed('actor', v);
          }}
          onChange={(e) => {
            clearTimeout(timer.current);
            set('actor', (e.target as HTMLInputElement).value);
          }}
        />
      </div>
      <div class="field">
        <label for="f-namespace">Namespace</label>
        <input
          id="f-namespace"
          name="namespace"
          type="search"
          placeholder="any"
          autocomplete="off"
          spellcheck={false}
          value={ns}
          onInput={(e) => {
            const v = (e.target as HTMLInputElement).value;
            setNs(v);
            typed('namespace', v);
          }}
          onChange={(e) => {
            clearTimeout(timer.current);
            set('namespace', (e.target as HTMLInputElement).value);
          }}
        />
      </div>
      <SelectField
        id="f-source"
        name="source"
        label="Source"
        value={filters.source}
        options={anyOf(SOURCES, filters.source)}
        onChange={(v) => set('source', v)}
      />
      <SelectField id="f-since" name="since" label="Time range" value={filters.since} options={SINCE_OPTIONS} onChange={(v) => set('since', v)} />
      <div class="field actions">
        <button type="submit" class="secondary">
          Apply
        </button>
        <button
          type="button"
          class="secondary"
          disabled={!hasFilters(filters)}
          onClick={() => {
            clearTimeout(timer.current);
            setActor('');
            setNs('');
            setSearch(filtersToSearch(EMPTY_FILTERS));
          }}
        >
          Clear filters
        </button>
      </div>
    </form>
  );
}
