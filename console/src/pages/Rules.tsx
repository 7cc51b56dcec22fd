/**
 * The rules page at `/rules`: the detection and correlation rules loaded (GET /api/v1/rules), their
 * MITRE ATT&CK ids, and what fired recently: detections counted over the recent signals, correlations
 * over the recent incidents' `correlations`. A text filter and "only rules that fired" live in the URL.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, ApiError } from '../api';
import { SeverityBadge } from '../components/Badges';
import { signalRule } from '../filters';
import { ago, formatTime } from '../format';
import { countText, firedCounts, type Fired } from '../incidents-store';
import { setSearch, useLocation } from '../router';
import type { CorrelationRuleInfo, DetectionRuleInfo, IncidentSummary, Signal } from '../types';
import '../list.css';

function ruleText(r: DetectionRuleInfo | CorrelationRuleInfo): string {
  const extra = 'rules' in r ? r.rules.join(' ') : `${r.source} ${r.kind}`;
  return `${r.id} ${r.title} ${r.description ?? ''} ${r.severity} ${r.mitre.join(' ')} ${r.file} ${extra}`.toLowerCase();
}

function span(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return '';
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}

export function RulesPage() {
  const loc = useLocation();
  const q = loc.search.get('q') ?? '';
  const onlyFired = loc.search.get('fired') === '1';
  const [rules, setRules] = useState<{ items: DetectionRuleInfo[]; correlations: CorrelationRuleInfo[] } | undefined>();
  const [signals, setSignals] = useState<Signal[]>([]);
  const [incidents, setIncidents] = useState<IncidentSummary[]>([]);
  const [error, setError] = useState<string | undefined>();
  const [note, setNote] = useState<string | undefined>();
  const [text, setText] = useState(q);
  useEffect(() => setText(q), [q]);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(timer.current), []);

  useEffect(() => {
    const ctrl = new AbortController();
    api<{ items: DetectionRuleInfo[]; correlations: CorrelationRuleInfo[] }>('/api/v1/rules', { signal: ctrl.signal })
      .then((r) => setRules({ items: r.items ?? [], correlations: r.correlations ?? [] }))
      .catch((e: unknown) => {
        if (!ctrl.signal.aborted) setError(e instanceof ApiError ? `${e.message} (HTTP ${e.status})` : `Could not load the rules: ${String(e)}`);
      });
    const missing: string[] = [];
    const done = () => {
      if (!ctrl.signal.aborted && missing.length) setNote(`Recent ${missing.join(' and ')} could not be read; counts may be incomplete.`);
    };
    void Promise.all([
      api<{ items: Signal[] }>('/api/v1/signals?limit=1000', { signal: ctrl.signal })
        .then((r) => setSignals(r.items ?? []))
        .catch(() => missing.push('signals')),
      api<{ items: IncidentSummary[] }>('/api/v1/incidents?limit=500', { signal: ctrl.signal })
        .then((r) => setIncidents(r.items ?? []))
        .catch(() => missing.push('incidents')),
    ]).then(done);
    return () => ctrl.abort();
  }, []);

  const detFired = useMemo(() => firedCounts(signals, (s, add) => add(signalRule(s).id, s.eventTime)), [signals]);
  const corrFired = useMemo(() => firedCounts(incidents, (i, add) => (i.correlations ?? []).forEach((c) => add(c.ruleId, c.time))), [incidents]);

  const needle = q.trim().toLowerCase();
  const keep = (r: DetectionRuleInfo | CorrelationRuleInfo, fired: Map<string, Fired>) =>
    (!needle || needle.split(/\s+/).every((w) => ruleText(r).includes(w))) && (!onlyFired || fired.has(r.id));
  const detections = useMemo(() => (rules?.items ?? []).filter((r) => keep(r, detFired)), [rules, detFired, needle, onlyFired]);
  const correlations = useMemo(() => (rules?.correlations ?? []).filter((r) => keep(r, corrFired)), [rules, corrFired, needle, onlyFired]);
  const now = Date.now();

  const firedCell = (f: Fired | undefined) =>
    f ? (
      <>
        <td class="num fired">{f.count}</td>
        <td class="nowrap" title={formatTime(f.last)}>
          {ago(new Date(f.last).toISOString(), now)}
        </td>
      </>
    ) : (
      <>
        <td class="num not-fired">0</td>
        <td class="not-fired">—</td>
      </>
    );

  return (
    <section>
      <div class="page-head">
        <h1>Rules</h1>
        <p class="page-meta">
          {rules
            ? `${countText(rules.items.length, 'detection rule')}, ${countText(rules.correlations.length, 'correlation rule')}; fired counts over the last ${countText(signals.length, 'signal')} and ${countText(incidents.length)}`
            : ''}
        </p>
      </div>
      <form
        class="filters"
        aria-label="Filter rules"
        onSubmit={(e) => {
          e.preventDefault();
          clearTimeout(timer.current);
          setSearch({ q: text.trim() });
        }}
      >
        <div class="field">
          <label for="r-q">Filter</label>
          <input
            id="r-q"
            name="q"
            type="search"
            autocomplete="off"
            spellcheck={false}
            placeholder="id, title, MITRE id, file…"
            value={text}
            onInput={(e) => {
              const v = (e.target as HTMLInputElement).value;
              setText(v);
              clearTimeout(timer.current);
              timer.current = setTimeout(() => setSearch({ q: v.trim() }), 250);
            }}
          />
        </div>
        <div class="field check">
          <input
            id="r-fired"
            name="fired"
            type="checkbox"
            checked={onlyFired}
            onChange={(e) => setSearch({ fired: (e.target as HTMLInputElement).checked ? '1' : '' })}
          />
          <label for="r-fired">Only rules that fired recently</label>
        </div>
      </form>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      {note ? <p class="muted">{note}</p> : null}
      {rules ? (
        <>
          <h2>Detection rules ({detections.length})</h2>
          {detections.length === 0 ? (
            <p class="empty">No detection rules match.</p>
          ) : (
            <div class="data-table table-scroll">
              <table data-testid="rules-table" data-type="detection">
                <caption class="visually-hidden">Detection rules with how often they fired recently</caption>
                <thead>
                  <tr>
                    <th scope="col">Id</th>
                    <th scope="col">Title</th>
                    <th scope="col">Severity</th>
                    <th scope="col">Source</th>
                    <th scope="col">Kind</th>
                    <th scope="col">MITRE</th>
                    <th scope="col" class="num">
                      Fired
                    </th>
                    <th scope="col">Last fired</th>
                    <th scope="col">File</th>
                  </tr>
                </thead>
                <tbody>
                  {detections.map((r) => (
                    <tr key={r.id} data-testid="rule-row" data-rule-id={r.id}>
                      <td class="mono">{r.id}</td>
                      <td title={r.description ?? undefined}>{r.title}</td>
                      <td>
                        <SeverityBadge severity={r.severity} />
                      </td>
                      <td class="nowrap">{r.source}</td>
                      <td class="mono">{r.kind}</td>
                      <td class="mono">{r.mitre.join(', ')}</td>
                      {firedCell(detFired.get(r.id))}
                      <td class="mono muted">{r.file}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <h2>Correlation rules ({correlations.length})</h2>
          {correlations.length === 0 ? (
            <p class="empty">No correlation rules match.</p>
          ) : (
            <div class="data-table table-scroll">
              <table data-testid="rules-table" data-type="correlation">
                <caption class="visually-hidden">Correlation rules with how often they fired in recent incidents</caption>
                <thead>
                  <tr>
                    <th scope="col">Id</th>
                    <th scope="col">Title</th>
                    <th scope="col">Severity</th>
                    <th scope="col">Type</th>
                    <th scope="col">Rules</th>
                    <th scope="col">Timespan</th>
                    <th scope="col">MITRE</th>
                    <th scope="col" class="num">
                      Fired
                    </th>
                    <th scope="col">Last fired</th>
                    <th scope="col">File</th>
                  </tr>
                </thead>
                <tbody>
                  {correlations.map((r) => (
                    <tr key={r.id} data-testid="rule-row" data-rule-id={r.id}>
                      <td class="mono">{r.id}</td>
                      <td title={r.description ?? undefined}>{r.title}</td>
                      <td>
                        <SeverityBadge severity={r.severity} />
                      </td>
                      <td class="nowrap">{r.type}</td>
                      <td class="mono">{r.rules.join(', ')}</td>
                      <td class="nowrap">{span(r.timespanMs)}</td>
                      <td class="mono">{r.mitre.join(', ')}</td>
                      {firedCell(corrFired.get(r.id))}
                      <td class="mono muted">{r.file}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      ) : error ? null : (
        <p class="muted" role="status">
          Loading the rules…
        </p>
      )}
    </section>
  );
}
