/**
 * Distributed-mode harness: `kubevigil serve --role …` as separate processes against the real Kafka
 * broker (KAFKA_BROKERS, from scripts/with-services.sh), a Redis of the test's own, and the HTTP
 * calls the tests make of them. Run `npm run build` first: the processes run bin/kubevigil.js.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import type { AuditEvent } from '../../connectors/k8s-audit/parse.js';
import { SEED_SCENARIO, type AttackScenario } from '../../connectors/k8s-audit/scenario.js';
import type { Incident } from '../../correlator/incident.js';
import { freePort, waitFor } from './prometheus.js';

const BIN = new URL('../../bin/kubevigil.js', import.meta.url).pathname;

/** A running kubevigil process: its URL once it listens, and how to stop it. */
export interface KubevigilProcess {
  child: ChildProcess;
  url: Promise<string>;
  /** Sends `signal` and resolves once the process exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Its log records so far (JSON lines on stdout), the latest {@link KEPT_LOG_LINES}. */
  logs(): Record<string, unknown>[];
}

/** Log lines a test keeps of each process. */
const KEPT_LOG_LINES = 5000;

/** Processes and directories to clean up after the tests of a file ({@link cleanUp}). */
const children = new Set<ChildProcess>();
const dirs: string[] = [];

/** Kills what the harness started and deletes its directories (call it in `afterAll`). */
export function cleanUp(): void {
  for (const c of children) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** Starts `kubevigil serve --role roles` with its own data directory; `env` adds to or overrides the test's environment. */
export function startKubevigil(roles: string, env: Record<string, string>): KubevigilProcess {
  const child = spawn(process.execPath, [BIN, 'serve', '--role', roles], {
    env: {
      ...process.env,
      KUBEVIGIL_PORT: '0',
      KUBEVIGIL_DATA_DIR: tempDir('kv-proc-'),
      KUBEVIGIL_KAFKA_SESSION_TIMEOUT_MS: '6000',
      KUBEVIGIL_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const exited = once(child, 'exit').then(() => void children.delete(child));
  const lines: string[] = [];
  const url = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (lines.push(line) > KEPT_LOG_LINES) lines.shift();
      if (line.includes('kubevigil listening')) resolve((JSON.parse(line) as { url: string }).url);
    });
    child.on('exit', (code) => reject(new Error(`kubevigil ${roles} exited with ${code}`)));
  });
  url.catch(() => undefined);
  child.stderr!.resume();
  return {
    child,
    url,
    stop: async (signal = 'SIGTERM') => {
      if (children.has(child)) child.kill(signal);
      await exited;
    },
    logs: () =>
      lines.flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      }),
  };
}

/** A redis-server of the test's own, without persistence: what a restart or FLUSHALL does to it harms no other test. */
export async function startRedis(): Promise<{ url: string; client: Redis }> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tempDir('kv-redis-')], {
    stdio: 'ignore',
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  const url = `redis://127.0.0.1:${port}`;
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  await waitFor('redis-server to answer', async () => ((await client.ping()) === 'PONG' ? true : undefined), 30_000, 100);
  return { url, client };
}

/** Posts audit events to ingest, retrying while it is not ready; resolves to the number of signals ingest published. */
export async function postAudit(url: string, events: AuditEvent[]): Promise<number> {
  const body = JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items: events });
  return waitFor(
    'ingest to accept the events',
    async () => {
      const r = await fetch(`${url}/ingest/k8s-audit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      return r.status === 200 ? ((await r.json()) as { signals: number }).signals : undefined;
    },
    60_000,
    250,
  );
}

/** Every incident the API has, in full, merged ones included. */
export async function allIncidents(url: string): Promise<Incident[]> {
  const page = (await (await fetch(`${url}/api/v1/incidents?limit=500&status=open,acknowledged,resolved`)).json()) as { items: { id: string }[] };
  return Promise.all(page.items.map(async (i) => (await (await fetch(`${url}/api/v1/incidents/${i.id}`)).json()) as Incident));
}

/**
 * Waits until the API at `url` holds as many unmerged incidents as `baseline`, with as many signals
 * in all (every signal correlated), and returns them.
 */
export function everySignalIn(url: string, baseline: Incident[], timeoutMs = 120_000): Promise<Incident[]> {
  const signals = baseline.reduce((n, i) => n + i.signalCount, 0);
  return waitFor(
    'every incident with every signal',
    async () => {
      const incs = (await allIncidents(url)).filter((i) => i.resolution !== 'merged');
      return incs.length === baseline.length && incs.reduce((n, i) => n + i.signalCount, 0) === signals ? incs : undefined;
    },
    timeoutMs,
    250,
  );
}

/** The value of one series on a process's /metrics (0 when absent); `series` is the name with its labels, as exposed. */
export async function metricValue(url: string, series: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** A metric's value summed over all its series (labels) on a process's /metrics (0 when absent). */
export async function metricTotal(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const l of text.split('\n')) if (l.startsWith(`${name} `) || l.startsWith(`${name}{`)) sum += Number(l.slice(l.lastIndexOf(' ') + 1));
  return sum;
}

/** The seed attack, the i-th of many: its own namespace, service account, pod, bindings and target. */
export function numberedScenario(i: number): AttackScenario {
  return {
    ...SEED_SCENARIO,
    namespace: `team-${i}`,
    serviceAccount: `app-${i}`,
    pod: `app-${i}-6d8f9c-x${i}`,
    podIP: `10.9.${Math.floor(i / 250)}.${i % 250}`,
    binding: `legacy-read-${i}`,
    ownBinding: `deployer-${i}`,
    targetNamespace: `data-${i % 7}`,
    secrets: [`db-${i}`],
    targetPod: `db-${i}-0`,
    start: SEED_SCENARIO.start + i * 1000,
  };
}

/**
 * What two runs over the same input must agree on, per actor: severity, signals, correlations and
 * the enabling binding, and with `remediations` the commands and manifests of each remediation.
 */
export function incidentSummary(incs: Incident[], opts: { remediations?: boolean } = {}) {
  return incs
    .filter((i) => i.resolution !== 'merged')
    .map((i) => ({
      actor: i.actor.key,
      severity: i.severity,
      signals: i.signalCount,
      correlations: [...new Set(i.correlations.map((c) => c.ruleId))].sort(),
      binding: i.rootCause.enablingBinding?.name,
      ...(opts.remediations ? { remediations: i.remediations.map((r) => ({ kind: r.kind, commands: r.commands, manifests: r.manifests })) } : {}),
    }))
    .sort((a, b) => a.actor.localeCompare(b.actor));
}
