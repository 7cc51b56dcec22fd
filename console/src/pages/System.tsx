/**
 * The system view at `/system`: health, mode and roles, ingest rates per source, signals per second,
 * the bus and its lag, the cluster inventory's sync and the correlator's budgets. Reads
 * GET /api/v1/system, or /readyz where that does not exist; refreshed every 5 s while the page is visible.
 */
import { Fragment } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../api';
import { ago, formatTime } from '../format';
import '../list.css';

interface Budget {
  openIncidents?: { used: number; max: number };
  windowEntries?: { used: number; max: number };
  prologueSignals?: { used: number; max: number };
  floodIncidents?: number;
  [k: string]: unknown;
}

interface Inventory {
  enabled?: boolean;
  synced?: boolean;
  pending?: { resource: string; error?: string }[];
  objects?: Record<string, number>;
  counts?: Record<string, number>;
  lastUpdate?: string | number;
  lastUpdated?: string | number;
  updatedAt?: string | number;
  [k: string]: unknown;
}

export interface SystemInfo {
  status?: 'ready' | 'not-ready';
  /** 'process': every value is the answering process's own (in distributed mode, not the deployment's). */
  scope?: 'process';
  version?: string;
  mode?: 'embedded' | 'distributed';
  roles?: string[];
  cluster?: string;
  uptimeSeconds?: number;
  ingest?: { source: string; eventsPerSecond?: number; eventsTotal?: number; rejectedTotal?: number }[];
  signalsPerSecond?: number;
  incidentsOpen?: number;
  bus?: { kind?: string; lagMessages?: number };
  inventory?: Inventory;
  budget?: Budget;
  stream?: { clients?: number };
}

const REFRESH_MS = 5000;

/** What the console knows: /api/v1/system, else /readyz (503 = not ready). */
async function loadSystem(signal: AbortSignal): Promise<{ info: SystemInfo; from: 'system' | 'readyz' }> {
  try {
    return { info: await api<SystemInfo>('/api/v1/system', { signal }), from: 'system' };
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) throw e;
  }
  const res = await fetch('/readyz', { signal, cache: 'no-store', credentials: 'omit', headers: { Accept: 'application/json' } });
  let body: SystemInfo = {};
  try {
    body = (await res.json()) as SystemInfo;
  } catch {
    /* a problem+json or nothing */
  }
  return { info: { ...body, status: res.ok ? 'ready' : 'not-ready' }, from: 'readyz' };
}

function uptime(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return '—';
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  if (m) return `${m} min ${Math.floor(s % 60)} s`;
  return `${Math.floor(s)} s`;
}

const rate = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '—' : n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const num = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '—' : n.toLocaleString('en-US'));

/** The last refresh failed: why, its HTTP status (an ApiError's), and since when the values shown are stale. */
interface Failure {
  message: string;
  status?: number;
  since: number;
}

const NOT_RUN = 'not run by this process';

export function SystemPage() {
  const [info, setInfo] = useState<SystemInfo | undefined>();
  const [from, setFrom] = useState<'system' | 'readyz'>('system');
  const [failure, setFailure] = useState<Failure | undefined>();
  const [at, setAt] = useState<number | undefined>();

  useEffect(() => {
    let ctrl: AbortController | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    const tick = async () => {
      timer = undefined;
      if (stopped) return;
      if (document.visibilityState === 'visible') {
        ctrl = new AbortController();
        try {
          const r = await loadSystem(ctrl.signal);
          if (stopped) return;
          setInfo(r.info);
          setFrom(r.from);
          setFailure(undefined);
          setAt(Date.now());
        } catch (e) {
          if (stopped) return;
          // Any failure (a 5xx through a proxy too) leaves the health unknown and what was shown stale.
          const message = e instanceof ApiError ? `${e.message} (HTTP ${e.status})` : `kubevigil could not be reached: ${String(e)}`;
          const status = e instanceof ApiError ? e.status : undefined;
          setFailure((f) => ({ message, status, since: f?.since ?? Date.now() }));
        }
      }
      if (!stopped) timer = setTimeout(() => void tick(), REFRESH_MS);
    };
    // Back to the page: refresh at once rather than up to 5 s later.
    const onVisible = () => {
      if (document.visibilityState === 'visible' && timer) {
        clearTimeout(timer);
        void tick();
      }
    };
    document.addEventListener('visibilitychange', onVisible);
    void tick();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      ctrl?.abort();
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, []);

  // Ready only when the last refresh succeeded and said so; a 503 means not ready; any other failure: unknown.
  const health: 'ready' | 'not-ready' | 'unknown' = failure
    ? failure.status === 503
      ? 'not-ready'
      : 'unknown'
    : info?.status === 'ready'
      ? 'ready'
      : 'not-ready';
  const stale = failure !== undefined && info !== undefined;
  const staleClass = stale ? 'stale muted' : '';
  // Rates are per process: in distributed mode an ingest or correlator rate means something only where that role runs.
  const distributed = info?.mode === 'distributed';
  const runs = (role: string) => !distributed || !info?.roles || info.roles.includes(role);
  const inv = info?.inventory;
  const budget = info?.budget;
  const budgetRows = budget
    ? (
        [
          ['openIncidents', 'Open incidents'],
          ['windowEntries', 'Correlation window entries'],
          ['prologueSignals', 'Prologue signals'],
        ] as const
      ).flatMap(([k, label]) => {
        const b = budget[k];
        return b && typeof b.used === 'number' && typeof b.max === 'number' ? [{ k, label, used: b.used, max: b.max }] : [];
      })
    : [];
  const invCounts = inv ? (inv.objects ?? inv.counts) : undefined;
  const invUpdated = inv ? (inv.lastUpdate ?? inv.lastUpdated ?? inv.updatedAt) : undefined;

  return (
    <section data-testid="system" aria-labelledby="system-h">
      <div class="page-head">
        <h1 id="system-h">System</h1>
        <p class="page-meta">
          {at ? <span>Updated {formatTime(at)} · refreshes every 5 s while visible</span> : <span role="status">Loading…</span>}
          {from === 'readyz' && info ? <span class="muted"> · from /readyz (this kubevigil has no /api/v1/system)</span> : null}
        </p>
      </div>
      {failure ? (
        <p class="error" role="alert">
          {failure.message}
        </p>
      ) : null}
      {stale ? (
        <p class="stale-note muted" role="status" data-testid="stale-note">
          Stale since {formatTime(failure.since)}: the values below are from the last successful refresh{at ? ` at ${formatTime(at)}` : ''}.
        </p>
      ) : null}
      {info || failure ? (
        <div class="system-grid">
          <div class="stat">
            <span class="label">Health</span>
            <span class={`value ${health === 'ready' ? 'health-ready' : health === 'not-ready' ? 'health-not-ready' : 'health-unknown muted'}`}>
              {/* The reason stays outside the testid'd text: only a successful "ready" answer may read "ready" there. */}
              <span data-testid="health">{health === 'ready' ? 'ready' : health === 'not-ready' ? 'not ready' : 'unknown — last refresh failed'}</span>
              {health === 'unknown' && failure ? `: ${failure.message}` : null}
            </span>
          </div>
          {info ? (
            <>
              <Stat label="Mode" value={info.mode} stale={stale} />
              <Stat label="Roles" value={info.roles?.join(', ')} stale={stale} />
              <Stat label="Cluster" value={info.cluster} stale={stale} />
              <Stat label="Version" value={info.version} stale={stale} />
              <Stat label="Uptime" value={info.uptimeSeconds === undefined ? undefined : uptime(info.uptimeSeconds)} stale={stale} />
            </>
          ) : null}
        </div>
      ) : null}
      {info ? (
        <div class={staleClass || undefined} data-testid={stale ? 'system-stale' : undefined}>
          {distributed ? (
            <p class="muted" data-testid="process-scope-note">
              Rates and lag are this API process's own; in distributed mode ingest and correlation run in other pods — see their /metrics
            </p>
          ) : null}
          <div class="system-grid">
            <Stat
              label="Signals per second"
              value={info.signalsPerSecond === undefined ? undefined : runs('correlator') ? rate(info.signalsPerSecond) : NOT_RUN}
            />
            <Stat label="Open incidents" value={info.incidentsOpen === undefined ? undefined : num(info.incidentsOpen)} />
            <Stat label="Bus" value={info.bus?.kind} />
            <Stat label="Bus lag (messages)" value={info.bus?.lagMessages === undefined ? undefined : num(info.bus.lagMessages)} />
            <Stat label="Stream clients" value={info.stream?.clients === undefined ? undefined : num(info.stream.clients)} />
          </div>

          {info.ingest && info.ingest.length > 0 && !runs('ingest') ? (
            <div class="system-section">
              <h2>Ingest</h2>
              <p class="muted" data-testid="ingest-not-run">
                Events per second: {NOT_RUN}
              </p>
            </div>
          ) : info.ingest && info.ingest.length > 0 ? (
            <div class="system-section">
              <h2>Ingest</h2>
              <div class="data-table">
                <table>
                  <caption class="visually-hidden">Ingest rates per source</caption>
                  <thead>
                    <tr>
                      <th scope="col">Source</th>
                      <th scope="col" class="num">
                        Events/s
                      </th>
                      <th scope="col" class="num">
                        Events total
                      </th>
                      <th scope="col" class="num">
                        Rejected total
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {info.ingest.map((s) => (
                      <tr key={s.source}>
                        <td>{s.source}</td>
                        <td class="num">{rate(s.eventsPerSecond)}</td>
                        <td class="num">{num(s.eventsTotal)}</td>
                        <td class={`num ${s.rejectedTotal ? 'error' : ''}`}>{num(s.rejectedTotal)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            </div>
          ) : null}

          <div class="system-section">
            <h2>Cluster inventory</h2>
            {!inv || inv.enabled === false ? (
              <p class="muted">Not configured: kubevigil does not watch the cluster here (no in-cluster or kubeconfig access).</p>
            ) : (
              <div class="panel">
                <p>
                  <strong class={inv.synced ? 'health-ready' : 'health-not-ready'}>{inv.synced ? 'Synced' : 'Not synced yet'}</strong>
                  {invUpdated !== undefined ? <span class="muted"> · last update {ago(new Date(invUpdated).toISOString(), Date.now())}</span> : null}
                </p>
                {invCounts && Object.keys(invCounts).length ? (
                  <p class="muted">
                    {Object.entries(invCounts)
                      .map(([k, v]) => `${k}: ${num(v)}`)
                      .join(' · ')}
                  </p>
                ) : null}
                {inv.pending && inv.pending.length ? (
                  <ul>
                    {inv.pending.map((p) => (
                      <li key={p.resource}>
                        <span class="mono">{p.resource}</span> {p.error ? <span class="error">— {p.error}</span> : <span class="muted">— not listed yet</span>}
                      </li>
                    ))}
                  </ul>
                ) : null}
              </div>
            )}
          </div>

          {budgetRows.length ? (
            <div class="system-section">
              <h2>Correlator budgets</h2>
              <div class="panel budget">
                {budgetRows.map((b) => (
                  <Fragment key={b.k}>
                    <label for={`budget-${b.k}`}>{b.label}</label>
                    <meter id={`budget-${b.k}`} min={0} max={Math.max(1, b.max)} value={b.used} low={b.max * 0.7} high={b.max * 0.9} optimum={0} />
                    <span class="mono">
                      {num(b.used)} / {num(b.max)}
                    </span>
                  </Fragment>
                ))}
                {typeof budget?.floodIncidents === 'number' ? (
                  <>
                    <span class="muted">Flood incidents</span>
                    <span />
                    <span class="mono">{num(budget.floodIncidents)}</span>
                  </>
                ) : null}
              </div>
            </div>
          ) : null}
        </div>
      ) : null}
    </section>
  );
}

function Stat({ label, value, stale }: { label: string; value: string | undefined; stale?: boolean }) {
  if (value === undefined || value === '') return null;
  return (
    <div class={stale ? 'stat stale muted' : 'stat'}>
      <span class="label">{label}</span>
      <span class="value">{value}</span>
    </div>
  );
}
