/**
 * One incident at /incidents/{id}: what happened (header, blast radius), why (root cause and its
 * evidence), how (attack graph), when (timeline per source, correlations), what to do
 * (remediations) and the response (acknowledge, resolve, mute; notes). Live: an event-stream
 * message with a newer version of this incident reloads it (at most once every 3 s; its signals
 * only when its signal count changed).
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, ApiError } from '../api';
import { SeverityBadge, SourceChips, StatusBadge } from '../components/Badges';
import { AttackGraph } from '../components/AttackGraph';
import { IncidentActions, Notes } from '../components/IncidentActions';
import { Remediations } from '../components/Remediations';
import { RootCause } from '../components/RootCause';
import { Timeline, type TimelineFilter } from '../components/Timeline';
import { ago, formatTime } from '../format';
import { buildGraph, describe, type GraphNode } from '../graph';
import { openIncidentStream, type StreamState } from '../stream';
import { incidentEntries, lanesOf } from '../timeline';
import type { BlastRadius, Incident, Signal } from '../types';
import '../incident.css';

type Load = { state: 'loading' } | { state: 'missing'; message: string } | { state: 'error'; message: string } | { state: 'ok' };

/** Stream-driven reloads start at most this often (the last event of a burst still causes one at the end). */
const RELOAD_MS = 3000;

const BLAST: { key: keyof BlastRadius & string; label: string }[] = [
  { key: 'namespaces', label: 'Namespaces' },
  { key: 'workloads', label: 'Workloads' },
  { key: 'secrets', label: 'Secrets' },
  { key: 'bindings', label: 'Bindings' },
  { key: 'policies', label: 'Policies' },
];

export function IncidentPage({ id }: { id: string }) {
  const [load, setLoad] = useState<Load>({ state: 'loading' });
  const [inc, setInc] = useState<Incident | undefined>();
  const [signals, setSignals] = useState<Signal[] | undefined>();
  const [signalsError, setSignalsError] = useState<string | undefined>();
  const [filter, setFilter] = useState<TimelineFilter | undefined>();
  const [selected, setSelected] = useState<string | undefined>();
  const [stream, setStream] = useState<StreamState>('connecting');
  const version = useRef(-1);
  const inflight = useRef<Promise<void> | undefined>(undefined);
  const again = useRef(false);
  /** The incident's signalCount when its signals were last loaded (requested after it was read). */
  const signalsAt = useRef<number | undefined>(undefined);
  const lastStart = useRef(0);
  const trailing = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);

  const path = `/api/v1/incidents/${encodeURIComponent(id)}`;
  const fetchAll = useCallback(async () => {
    try {
      const i = await api<Incident>(path);
      if (i.version >= version.current) {
        version.current = i.version;
        setInc(i);
      }
      setLoad({ state: 'ok' });
      // A status or notes change leaves the signals as they are: up to 5,000 of them are read again only
      // when the count moved. Read after the incident, the list holds at least the signals it counts.
      if (i.signalCount === signalsAt.current) return;
      let s: Signal[];
      try {
        s = (await api<{ items: Signal[] }>(`${path}/signals?limit=5000`)).items;
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) throw e;
        setSignalsError(e instanceof Error ? e.message : String(e));
        return;
      }
      signalsAt.current = i.signalCount;
      setSignals(s);
      setSignalsError(undefined);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) setLoad({ state: 'missing', message: e.message });
      else if (version.current < 0) setLoad({ state: 'error', message: e instanceof Error ? e.message : String(e) });
    }
  }, [path]);

  // One reload at a time; events arriving meanwhile cause one more afterwards.
  const reload = useCallback(() => {
    if (inflight.current) {
      again.current = true;
      return;
    }
    lastStart.current = Date.now();
    inflight.current = fetchAll().finally(() => {
      inflight.current = undefined;
      if (again.current) {
        again.current = false;
        reload();
      }
    });
  }, [fetchAll]);

  // Stream events reload at most once every RELOAD_MS: within the window, one trailing reload at its end.
  const throttled = useCallback(() => {
    if (trailing.current) return;
    const wait = lastStart.current + RELOAD_MS - Date.now();
    if (wait <= 0) return reload();
    trailing.current = setTimeout(() => {
      trailing.current = undefined;
      reload();
    }, wait);
  }, [reload]);

  useEffect(() => {
    reload();
    const close = openIncidentStream({
      incident: (s) => {
        if (s.id === id && s.version > version.current) throttled();
      },
      reset: throttled,
      state: setStream,
    });
    return () => {
      close();
      clearTimeout(trailing.current);
      trailing.current = undefined;
    };
  }, [id, reload, throttled]);

  const onUpdate = useCallback((next: Incident) => {
    if (next.version >= version.current) {
      version.current = next.version;
      setInc(next);
    }
  }, []);

  const entries = useMemo(() => (inc ? incidentEntries(inc, signals) : []), [inc, signals]);
  const lanes = useMemo(() => (inc ? lanesOf(entries, inc.sources) : []), [inc, entries]);
  const model = useMemo(() => (inc ? buildGraph(entries, inc.actor.key, inc.rootCause?.evidence) : undefined), [inc, entries]);

  const onNode = useCallback(
    (n: GraphNode) => {
      if (filter?.key === n.key) return setFilter(undefined);
      const d = n.kind === 'more' ? { type: `${n.folded?.length ?? 0} folded`, name: n.column === 4 ? 'targets' : 'nodes' } : describe(n.key);
      setFilter({ key: n.key, label: `${d.type} ${d.name}`, ids: new Set(n.signalIds) });
    },
    [filter],
  );

  if (load.state === 'loading' && !inc)
    return (
      <section aria-busy="true">
        <h1>Incident {id}</h1>
        <p class="muted">Loading…</p>
      </section>
    );
  if (load.state === 'missing')
    return (
      <section>
        <h1>No incident {id}</h1>
        <p>
          The API says: {load.message}. It may have been removed by retention, or the link is wrong. <a href="/">Back to the incidents</a>
        </p>
      </section>
    );
  if (!inc)
    return (
      <section>
        <h1>Incident {id}</h1>
        <p class="error" role="alert">
          Could not load it: {load.state === 'error' ? load.message : 'unknown error'}
        </p>
        <p>
          <button type="button" onClick={reload}>
            Try again
          </button>{' '}
          <a href="/">Back to the incidents</a>
        </p>
      </section>
    );

  const blast = BLAST.map((b) => ({ ...b, items: inc.blastRadius?.[b.key] ?? [] })).filter((b) => b.items.length);
  return (
    <article class="incident-page">
      <nav class="crumbs" aria-label="Breadcrumb">
        <a href="/">← Incidents</a>
        <span class="muted mono">{inc.id}</span>
        <span class={`live live-${stream}`} title="Updates from the event stream">
          {stream === 'live' ? '● live' : stream}
        </span>
      </nav>
      <div class="inc-top">
        <header class="inc-head panel">
          <div class="row">
            <SeverityBadge severity={inc.severity} />
            <StatusBadge status={inc.status} />
            {inc.assignee ? <span class="chip">assigned to {inc.assignee}</span> : null}
            {inc.cluster ? <span class="chip">cluster {inc.cluster}</span> : null}
          </div>
          <h1 data-testid="incident-title">{inc.title || inc.id}</h1>
          <dl class="facts">
            <div>
              <dt>Actor</dt>
              <dd class="mono" title={inc.actor.name}>
                {inc.actor.key}
              </dd>
            </div>
            <div>
              <dt>First seen</dt>
              <dd>
                <time dateTime={inc.firstSeen}>{formatTime(inc.firstSeen)}</time>
              </dd>
            </div>
            <div>
              <dt>Last seen</dt>
              <dd>
                <time dateTime={inc.lastSeen}>{formatTime(inc.lastSeen)}</time> <span class="muted">({ago(inc.lastSeen)})</span>
              </dd>
            </div>
            <div>
              <dt>Signals</dt>
              <dd>{inc.signalCount}</dd>
            </div>
            <div>
              <dt>Sources</dt>
              <dd>
                <SourceChips sources={inc.sources} />
              </dd>
            </div>
            {inc.assignee ? (
              <div>
                <dt>Assignee</dt>
                <dd>{inc.assignee}</dd>
              </div>
            ) : null}
            <div class="wide">
              <dt>MITRE ATT&amp;CK</dt>
              <dd class="chips">
                {inc.mitre.map((m) => (
                  <span class="chip mono" key={m}>
                    {m}
                  </span>
                ))}
              </dd>
            </div>
          </dl>
          {blast.length ? (
            <>
              <h2 class="blast-title">Blast radius</h2>
              <dl class="blast">
                {blast.map((b) => (
                  <div key={b.key}>
                    <dt>
                      {b.label} <span class="muted">({b.items.length})</span>
                    </dt>
                    <dd>
                      <ul class="plain mono">
                        {b.items.slice(0, 12).map((x) => (
                          <li key={x}>{x}</li>
                        ))}
                        {b.items.length > 12 ? <li class="muted">+{b.items.length - 12} more</li> : null}
                      </ul>
                    </dd>
                  </div>
                ))}
              </dl>
            </>
          ) : null}
        </header>
        <section class="inc-response panel" aria-labelledby="h-response">
          <h2 id="h-response">Response</h2>
          <IncidentActions incident={inc} onUpdate={onUpdate} />
          <h3>Notes</h3>
          <Notes notes={inc.notes ?? []} />
        </section>
      </div>

      <section class="panel" aria-labelledby="h-root">
        <h2 id="h-root">Root cause</h2>
        <RootCause rootCause={inc.rootCause} filter={filter} onFilter={setFilter} />
      </section>

      <section class="panel" aria-labelledby="h-graph">
        <h2 id="h-graph">Attack graph</h2>
        {model ? <AttackGraph model={model} active={filter?.key} onNode={onNode} /> : null}
        {signalsError ? <p class="muted">Drawn from the incident's timeline only: its signals could not be loaded ({signalsError}).</p> : null}
      </section>

      <section class="panel" id="timeline-section" aria-labelledby="h-timeline">
        <h2 id="h-timeline">Timeline</h2>
        <Timeline
          lanes={lanes}
          entries={entries}
          correlations={inc.correlations ?? []}
          filter={filter}
          onFilter={setFilter}
          selected={selected}
          onSelect={setSelected}
        />
      </section>

      <section class="panel" aria-labelledby="h-rem">
        <h2 id="h-rem">Remediations</h2>
        <Remediations remediations={inc.remediations ?? []} />
      </section>
    </article>
  );
}
