/**
 * The incident's timeline: one lane per source on a shared time axis (a strip of marks for the
 * shape of the attack, then the lane's signals as a list, oldest first), the correlations that
 * fired, and a side panel with the chosen signal's details. Everything from data is text.
 */
import { Fragment } from 'preact';
import { useState } from 'preact/hooks';
import { formatTime } from '../format';
import { filterEntries, timeSpan, type Entry, type Lane } from '../timeline';
import type { CorrelationFired } from '../types';
import { SeverityBadge } from './Badges';

export interface TimelineFilter {
  /** What the filter is, in words: "node ClusterRoleBinding frontend-secrets-reader". */
  label: string;
  /** A key telling filters apart (the node's entity key, "evidence:3", "correlation:1"). */
  key: string;
  ids: ReadonlySet<string>;
}

export interface TimelineProps {
  lanes: Lane[];
  entries: Entry[];
  correlations: CorrelationFired[];
  filter?: TimelineFilter;
  onFilter: (f: TimelineFilter | undefined) => void;
  selected?: string;
  onSelect: (id: string | undefined) => void;
}

/** Rows a lane lists before a "Show all" button (an incident can have thousands of signals). */
const LANE_ROWS = 200;

const clock = (iso: string) => formatTime(iso).slice(11, 19) || iso;
const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

function OutcomeTag({ outcome }: { outcome: string }) {
  const mark = outcome === 'allowed' ? '✓' : outcome === 'denied' || outcome === 'failed' ? '✕' : '?';
  return (
    <span class={`outcome o-${outcome}`}>
      <span aria-hidden="true">{mark}</span> {outcome}
    </span>
  );
}

export function Timeline({ lanes, entries, correlations, filter, onFilter, selected, onSelect }: TimelineProps) {
  const [expanded, setExpanded] = useState<ReadonlySet<string>>(new Set());
  const span = timeSpan(entries);
  const shown = filterEntries(entries, filter?.ids);
  const sel = selected ? entries.find((e) => e.id === selected) : undefined;
  // Marks at the same instant stack upwards instead of hiding each other.
  const stackOf = (lane: Entry[]) => {
    const seen = new Map<number, number>();
    return lane.map((e) => {
      const k = Math.round(span.pos(e.ms) * 200);
      const n = seen.get(k) ?? 0;
      seen.set(k, n + 1);
      return n;
    });
  };
  return (
    <div class="tl-layout">
      <div class="tl-main">
        {filter ? (
          <div class="tl-filter" data-testid="timeline-filter" role="status">
            <span>
              Showing {shown.length} of {entries.length} signals: <strong>{filter.label}</strong>
            </span>
            <button type="button" class="secondary" onClick={() => onFilter(undefined)}>
              Clear
            </button>
          </div>
        ) : (
          <p class="muted tl-hint">
            All {entries.length} signals. Click a graph node, an evidence item or a correlation to filter; click a signal for its details.
          </p>
        )}
        <div data-testid="timeline" class="timeline">
          <div class="tl-axis" aria-hidden="true">
            <span class="tl-lane-name" />
            <div class="tl-axis-track">
              <span class="tl-axis-start">{formatTime(span.start || undefined)}</span>
              <span class="tl-axis-end">{span.end > span.start ? formatTime(span.end) : ''}</span>
            </div>
          </div>
          {lanes.map((lane) => {
            const visible = filterEntries(lane.entries, filter?.ids);
            const stack = stackOf(visible);
            return (
              <section key={lane.source} data-testid="lane" data-source={lane.source} class="tl-lane" aria-label={`${lane.label} lane`}>
                <h3 class="tl-lane-name">
                  {lane.label}
                  <span class="muted tl-lane-src">
                    {lane.source} · {filter ? `${visible.length}/${lane.entries.length}` : lane.entries.length}
                  </span>
                </h3>
                <div class="tl-lane-body">
                  <div class="tl-track" aria-hidden="true">
                    {visible.map((e, i) => (
                      <span
                        key={e.id}
                        class={`tl-mark o-${e.outcome} sev-${e.severity}${e.id === selected ? ' sel' : ''}`}
                        style={{ left: pct(span.pos(e.ms)), bottom: `${2 + Math.min(stack[i]!, 6) * 5}px` }}
                      />
                    ))}
                  </div>
                  {visible.length === 0 ? (
                    <p class="muted tl-none">{filter ? 'No matching signals in this lane.' : 'No signals.'}</p>
                  ) : (
                    <ol class="tl-entries">
                      {(expanded.has(lane.source) ? visible : visible.slice(0, LANE_ROWS)).map((e) => (
                        <li key={e.id}>
                          <button
                            type="button"
                            data-testid="timeline-entry"
                            data-signal-id={e.id}
                            class={`tl-entry${e.id === selected ? ' sel' : ''}`}
                            aria-pressed={e.id === selected}
                            onClick={() => onSelect(e.id === selected ? undefined : e.id)}
                          >
                            <time class="mono tl-time" dateTime={e.time}>
                              {clock(e.time)}
                            </time>
                            <SeverityBadge severity={e.severity} />
                            <OutcomeTag outcome={e.outcome} />
                            <span class="tl-title" title={e.title}>
                              {e.title}
                            </span>
                            <span class="mono muted tl-rule">{e.ruleId}</span>
                          </button>
                        </li>
                      ))}
                    </ol>
                  )}
                  {visible.length > LANE_ROWS && !expanded.has(lane.source) ? (
                    <button type="button" class="secondary tl-more" onClick={() => setExpanded(new Set([...expanded, lane.source]))}>
                      Show all {visible.length} {lane.label.toLowerCase()} signals
                    </button>
                  ) : null}
                </div>
              </section>
            );
          })}
          {correlations.length ? (
            <section class="tl-lane tl-corr" aria-label="Correlations that fired">
              <h3 class="tl-lane-name">
                Correlations<span class="muted tl-lane-src">that fired · {correlations.length}</span>
              </h3>
              <div class="tl-lane-body">
                <div class="tl-track" aria-hidden="true">
                  {correlations.map((c, i) => (
                    <span key={`${c.ruleId}-${i}`} class="tl-corr-mark" style={{ left: pct(span.pos(Date.parse(c.time) || 0)) }} />
                  ))}
                </div>
                <ol class="tl-entries">
                  {correlations.map((c, i) => {
                    const key = `correlation:${i}`;
                    const on = filter?.key === key;
                    return (
                      <li key={key}>
                        <button
                          type="button"
                          data-testid="correlation"
                          data-rule-id={c.ruleId}
                          class={`tl-entry corr${on ? ' sel' : ''}`}
                          aria-pressed={on}
                          onClick={() => onFilter(on ? undefined : { key, label: `correlation ${c.ruleId}`, ids: new Set(c.signalIds) })}
                        >
                          <time class="mono tl-time" dateTime={c.time}>
                            {clock(c.time)}
                          </time>
                          <span class="corr-tag">◆ correlation</span>
                          <span class="tl-title" title={c.title}>
                            {c.title}
                          </span>
                          <span class="mono muted tl-rule">
                            {c.ruleId} · {c.signalIds.length} signal{c.signalIds.length === 1 ? '' : 's'}
                          </span>
                        </button>
                      </li>
                    );
                  })}
                </ol>
              </div>
            </section>
          ) : null}
        </div>
      </div>
      <aside class="tl-detail panel" aria-label="Signal details" data-testid="signal-detail">
        {sel ? (
          <SignalDetail e={sel} onClose={() => onSelect(undefined)} />
        ) : (
          <p class="muted">Click a signal in the timeline to see its target and attributes here.</p>
        )}
      </aside>
    </div>
  );
}

function SignalDetail({ e, onClose }: { e: Entry; onClose: () => void }) {
  const target = Object.entries(e.target ?? {}).filter(([, v]) => v !== undefined && v !== '');
  const attrs = Object.entries(e.attributes);
  return (
    <div>
      <div class="row tl-detail-head">
        <h3>Signal</h3>
        <button type="button" class="secondary" onClick={onClose}>
          Close
        </button>
      </div>
      <p class="tl-detail-title">{e.title}</p>
      <dl class="kv">
        <dt>Time</dt>
        <dd class="mono">{formatTime(e.time)}</dd>
        <dt>Source</dt>
        <dd>{e.source}</dd>
        <dt>Severity</dt>
        <dd>
          <SeverityBadge severity={e.severity} />
        </dd>
        <dt>Outcome</dt>
        <dd>
          <OutcomeTag outcome={e.outcome} />
        </dd>
        <dt>Rule</dt>
        <dd class="mono">{e.ruleId}</dd>
        <dt>Kind</dt>
        <dd class="mono">{e.kind}</dd>
        <dt>Actor</dt>
        <dd class="mono">{e.actor}</dd>
        <dt>Signal id</dt>
        <dd class="mono">{e.id}</dd>
        {e.mitre.length ? (
          <>
            <dt>MITRE</dt>
            <dd class="mono">{e.mitre.join(', ')}</dd>
          </>
        ) : null}
      </dl>
      <h4>Target</h4>
      {target.length ? (
        <dl class="kv">
          {target.map(([k, v]) => (
            <Fragment key={k}>
              <dt>{k}</dt>
              <dd class="mono">{typeof v === 'string' ? v : JSON.stringify(v)}</dd>
            </Fragment>
          ))}
        </dl>
      ) : (
        <p class="muted">none</p>
      )}
      <h4>Attributes</h4>
      {attrs.length ? (
        <dl class="kv">
          {attrs.map(([k, v]) => (
            <Fragment key={k}>
              <dt>{k}</dt>
              <dd class="mono">{v}</dd>
            </Fragment>
          ))}
        </dl>
      ) : (
        <p class="muted">none</p>
      )}
      {e.entities.length ? (
        <>
          <h4>Entities</h4>
          <ul class="plain mono">
            {e.entities.map((k) => (
              <li key={k}>{k}</li>
            ))}
          </ul>
        </>
      ) : null}
    </div>
  );
}
