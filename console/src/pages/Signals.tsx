/**
 * The signals explorer at `/signals`: the most recent signals (GET /api/v1/signals), filtered by the
 * server (severity, kind, actor) and here (source, free text), every filter in the URL. A row opens
 * its details (target, attributes, entities, MITRE) as text.
 */
import { Fragment } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, ApiError, query } from '../api';
import { SeverityBadge } from '../components/Badges';
import { anyOf, SelectField, SEVERITY_OPTIONS } from '../components/SelectField';
import { matchesSignal, parseSignalFilters, SIGNAL_LIMITS, signalRule, signalServerQuery, signalText, SOURCES, type SignalFilters } from '../filters';
import { formatTime } from '../format';
import { countText } from '../incidents-store';
import { setSearch, useLocation } from '../router';
import type { Signal } from '../types';
import '../list.css';

export function SignalsPage() {
  const loc = useLocation();
  const searchKey = loc.search.toString();
  const f = useMemo(() => parseSignalFilters(loc.search), [searchKey]);
  const serverKey = JSON.stringify(signalServerQuery(f));
  const [items, setItems] = useState<Signal[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [loading, setLoading] = useState(false);
  const [refreshes, setRefreshes] = useState(0);
  const [open, setOpen] = useState<ReadonlySet<string>>(new Set());

  useEffect(() => {
    const ctrl = new AbortController();
    setLoading(true);
    setError(undefined);
    api<{ items: Signal[] }>(`/api/v1/signals${query(signalServerQuery(f))}`, { signal: ctrl.signal })
      .then((r) => {
        if (ctrl.signal.aborted) return;
        // Most recent event first (the server lists them as they were observed).
        const list = Array.isArray(r.items) ? r.items.slice() : [];
        list.sort((a, b) => (a.eventTime < b.eventTime ? 1 : a.eventTime > b.eventTime ? -1 : 0));
        setItems(list);
      })
      .catch((e: unknown) => {
        if (ctrl.signal.aborted) return;
        setError(
          e instanceof ApiError && e.status === 404
            ? 'This kubevigil does not keep recent signals (no api role here).'
            : e instanceof ApiError
              ? `${e.message} (HTTP ${e.status})`
              : `Could not load the signals: ${String(e)}`,
        );
      })
      .finally(() => {
        if (!ctrl.signal.aborted) setLoading(false);
      });
    return () => ctrl.abort();
  }, [serverKey, refreshes]);

  // The search text of each signal is computed once per load, not on every keystroke.
  const texts = useMemo(() => new Map((items ?? []).map((s) => [s.id, signalText(s)])), [items]);
  const shown = useMemo(() => (items ?? []).filter((s) => matchesSignal(s, f, (x) => texts.get(x.id) ?? signalText(x))), [items, texts, f.source, f.q]);
  const toggle = (id: string) =>
    setOpen((o) => {
      const n = new Set(o);
      if (n.has(id)) n.delete(id);
      else n.add(id);
      return n;
    });

  return (
    <section>
      <div class="page-head">
        <h1>Signals</h1>
        <p class="page-meta">
          <span data-testid="signal-count">
            {items ? `${countText(shown.length, 'signal')}${shown.length !== items.length ? ` of ${items.length} loaded` : ''}` : ''}
          </span>
          {loading ? (
            <span class="muted" role="status">
              {' '}
              · loading…
            </span>
          ) : null}
        </p>
      </div>
      <SignalFilterBar f={f} onRefresh={() => setRefreshes((n) => n + 1)} loading={loading} />
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      {items && shown.length === 0 && !error ? (
        <p class="empty">{items.length === 0 ? 'No signals yet — kubevigil is listening' : 'No signals match these filters'}</p>
      ) : null}
      {shown.length > 0 ? (
        <div class="data-table table-scroll">
          <table data-testid="signals-table">
            <caption class="visually-hidden">Recent signals, most recent first; select a row to see its details</caption>
            <thead>
              <tr>
                <th scope="col">
                  <span class="visually-hidden">Details</span>
                </th>
                <th scope="col">Time</th>
                <th scope="col">Severity</th>
                <th scope="col">Source</th>
                <th scope="col">Kind</th>
                <th scope="col">Actor</th>
                <th scope="col">Title</th>
                <th scope="col">Outcome</th>
                <th scope="col">Rule</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((s) => {
                const isOpen = open.has(s.id);
                return (
                  <Fragment key={s.id}>
                    <tr class={`signal-row${isOpen ? ' expanded' : ''}`} data-testid="signal-row" data-signal-id={s.id} onClick={() => toggle(s.id)}>
                      <td>
                        <button
                          type="button"
                          class="expander"
                          aria-expanded={isOpen}
                          aria-controls={`sig-${s.id}`}
                          aria-label={`${isOpen ? 'Hide' : 'Show'} details of signal ${s.id}`}
                          onClick={(e) => {
                            e.stopPropagation();
                            toggle(s.id);
                          }}
                        >
                          <span class="chev" aria-hidden="true">
                            ▸
                          </span>
                        </button>
                      </td>
                      <td class="mono nowrap">{formatTime(s.eventTime)}</td>
                      <td>
                        <SeverityBadge severity={s.severity} />
                      </td>
                      <td class="nowrap">{s.source}</td>
                      <td class="mono">{s.kind}</td>
                      <td class="mono">{s.actor?.key ?? ''}</td>
                      <td>{s.title}</td>
                      <td class={s.outcome ? `outcome-${s.outcome}` : ''}>{s.outcome ?? ''}</td>
                      <td class="mono" title={signalRule(s).title || undefined}>
                        {signalRule(s).id}
                      </td>
                    </tr>
                    {isOpen ? (
                      <tr class="signal-details" id={`sig-${s.id}`}>
                        <td colSpan={9}>
                          <SignalDetails s={s} />
                        </td>
                      </tr>
                    ) : null}
                  </Fragment>
                );
              })}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}

function kv(o: Record<string, unknown> | undefined): string {
  if (!o) return '';
  return Object.entries(o)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join('\n');
}

/** The rule's conditions as evaluated: "authError exists → PERMISSION_DENIED". */
function matched(m: unknown): string {
  if (!Array.isArray(m)) return '';
  return m
    .map((c: { field?: unknown; op?: unknown; expected?: unknown; actual?: unknown }) =>
      [String(c.field ?? ''), String(c.op ?? ''), JSON.stringify(c.expected), c.actual === undefined ? '' : `→ ${JSON.stringify(c.actual)}`]
        .filter(Boolean)
        .join(' '),
    )
    .join('\n');
}

function SignalDetails({ s }: { s: Signal }) {
  const rule = signalRule(s);
  const rows: [string, string][] = [
    ['Signal', s.id],
    ['Actor', [s.actor?.key, s.actor?.name && s.actor.name !== s.actor.key ? `(${s.actor.name})` : ''].filter(Boolean).join(' ')],
    ['Event time', formatTime(s.eventTime)],
    ['Observed', formatTime(s.observedTime)],
    ['Target', kv(s.target)],
    ['Attributes', kv(s.attributes)],
    ['Entities', (s.entities ?? []).join('\n')],
    ['Rule', [rule.id, rule.title ? `(${rule.title})` : ''].filter(Boolean).join(' ')],
    ['MITRE ATT&CK', (s.mitre ?? []).join(', ')],
    ['Matched', matched(s.matched)],
  ];
  return (
    <dl class="details-grid">
      {rows
        .filter(([, v]) => v)
        .map(([k, v]) => (
          <Fragment key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </Fragment>
        ))}
    </dl>
  );
}

type TextKey = 'kind' | 'actor' | 'q';
const TEXT_KEYS: readonly TextKey[] = ['kind', 'actor', 'q'];
type TextFields = Record<TextKey, string>;
/** A text field's value as the URL keeps it (kind and actor are trimmed, the free text is not). */
const norm = (k: TextKey, v: string) => (k === 'q' ? v : v.trim());

function SignalFilterBar({ f, onRefresh, loading }: { f: SignalFilters; onRefresh: () => void; loading: boolean }) {
  const [text, setTextState] = useState<TextFields>({ kind: f.kind, actor: f.actor, q: f.q });
  // The latest typed text, read by the debounce when it fires (not the text of the render that armed it).
  const textRef = useRef(text);
  const setText = (next: TextFields) => {
    textRef.current = next;
    setTextState(next);
  };
  // The URL's values at the previous sync, and the values this bar last wrote to the URL itself.
  const urlRef = useRef<TextFields>({ kind: f.kind, actor: f.actor, q: f.q });
  const wrote = useRef<Partial<TextFields>>({});
  useEffect(() => {
    const prev = urlRef.current;
    const url: TextFields = { kind: f.kind, actor: f.actor, q: f.q };
    urlRef.current = url;
    let next = textRef.current;
    for (const k of TEXT_KEYS) {
      // Only a field whose URL value changed is re-synced, and not when the change is this bar's own
      // write (the user may have typed on since) or already what the field shows.
      if (url[k] === prev[k]) continue;
      const ours = wrote.current[k] === url[k];
      delete wrote.current[k];
      if (ours || norm(k, next[k]) === url[k]) continue;
      next = { ...next, [k]: url[k] };
    }
    if (next !== textRef.current) setText(next);
  }, [f.kind, f.actor, f.q]);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(timer.current), []);
  /** Puts every text field in the URL at once (the debounce and the submit both do). */
  const apply = () => {
    clearTimeout(timer.current);
    timer.current = undefined;
    const t = textRef.current;
    const params: TextFields = { kind: norm('kind', t.kind), actor: norm('actor', t.actor), q: norm('q', t.q) };
    for (const k of TEXT_KEYS) if (params[k] !== urlRef.current[k]) wrote.current[k] = params[k];
    setSearch(params);
  };
  const typed = (k: TextKey, v: string) => {
    setText({ ...textRef.current, [k]: v });
    clearTimeout(timer.current);
    timer.current = setTimeout(apply, k === 'q' ? 250 : 500);
  };
  const input = (k: TextKey, label: string, placeholder: string) => (
    <div class="field">
      <label for={`s-${k}`}>{label}</label>
      <input
        id={`s-${k}`}
        name={k}
        type="search"
        autocomplete="off"
        spellcheck={false}
        placeholder={placeholder}
        value={text[k]}
        onInput={(e) => typed(k, (e.target as HTMLInputElement).value)}
      />
    </div>
  );
  return (
    <form
      class="filters"
      data-testid="signal-filters"
      aria-label="Filter signals"
      onSubmit={(e) => {
        e.preventDefault();
        apply();
      }}
    >
      <SelectField
        id="s-severity"
        name="severity"
        label="Severity"
        value={f.severity}
        options={SEVERITY_OPTIONS}
        onChange={(v) => setSearch({ severity: v })}
      />
      <SelectField id="s-source" name="source" label="Source" value={f.source} options={anyOf(SOURCES)} onChange={(v) => setSearch({ source: v })} />
      {input('kind', 'Kind', 'e.g. secret.read')}
      {input('actor', 'Actor', 'sa:namespace/name')}
      {input('q', 'Search', 'title, rule, target…')}
      <div class="field">
        <label for="s-limit">Load</label>
        <select
          id="s-limit"
          name="limit"
          value={f.limit}
          onChange={(e) => setSearch({ limit: (e.target as HTMLSelectElement).value === '250' ? '' : (e.target as HTMLSelectElement).value })}
        >
          {SIGNAL_LIMITS.map((l) => (
            <option key={l} value={l}>
              {l} most recent
            </option>
          ))}
        </select>
      </div>
      <div class="field actions">
        <button type="button" class="secondary" onClick={onRefresh} disabled={loading}>
          Refresh
        </button>
      </div>
    </form>
  );
}
