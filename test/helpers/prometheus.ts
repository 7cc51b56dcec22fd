/**
 * Real Prometheus and Alertmanager (Debian's packages, `scripts/prometheus.sh install`) as plain
 * processes for a test: a metrics endpoint whose gauges the test sets, Prometheus scraping it and
 * evaluating alerting rules every second, and Alertmanager routing every alert to one webhook URL
 * with one-second grouping. Each run gets free ports and its own config and storage directory,
 * removed on stop; the processes are killed when the test process exits, whatever happens.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Debian's Prometheus binary. */
export const PROMETHEUS_BIN = '/usr/bin/prometheus';
/** Debian's Alertmanager binary. */
export const ALERTMANAGER_BIN = '/usr/bin/prometheus-alertmanager';

/** The binaries this harness needs that are not installed (empty when it can run). */
export function missingBinaries(): string[] {
  return [PROMETHEUS_BIN, ALERTMANAGER_BIN].filter((b) => !existsSync(b));
}

/** A free loopback TCP port (free when asked; the process that binds it next is expected to win the race). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs` naming `what`. */
export async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/** A Prometheus text-format endpoint (`GET /metrics`) serving gauges the test sets. */
export class GaugeEndpoint {
  private readonly series = new Map<string, { name: string; labels: Record<string, string>; value: number }>();
  private server?: Server;
  url = '';

  /** Sets (or creates) one series of a gauge. */
  set(name: string, labels: Record<string, string>, value: number): void {
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    this.series.set(key, { name, labels, value });
  }

  /** The exposition text, one TYPE line per gauge. */
  render(): string {
    const byName = new Map<string, string[]>();
    for (const s of this.series.values()) {
      const labels = Object.entries(s.labels)
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
        .join(',');
      const lines = byName.get(s.name) ?? [];
      lines.push(`${s.name}{${labels}} ${s.value}`);
      byName.set(s.name, lines);
    }
    return [...byName].map(([name, lines]) => `# TYPE ${name} gauge\n${lines.join('\n')}\n`).join('');
  }

  /** Starts serving on a free loopback port; `url` is the scrape target (`host:port`). */
  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      if (req.url === '/metrics') res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(this.render());
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }
}

const children = new Set<ChildProcess>();
let exitHookInstalled = false;

function killAllOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A crashed or interrupted test must not leave Prometheus or Alertmanager running.
  process.on('exit', () => {
    for (const c of children) if (c.exitCode === null && c.pid) c.kill('SIGKILL');
  });
}

/** One started server process, its log and how to stop it. */
export interface ManagedProcess {
  readonly name: string;
  readonly url: string;
  readonly logFile: string;
  /** The last lines of its log, for failure messages. */
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

async function startProcess(name: string, bin: string, args: string[], url: string, logFile: string): Promise<ManagedProcess> {
  killAllOnExit();
  const fd = openSync(logFile, 'a');
  const child = spawn(bin, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => children.delete(child));
  const logTail = (lines = 30) => {
    try {
      return readFileSync(logFile, 'utf8').trim().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  };
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(killer);
  };
  try {
    await waitFor(
      `${name} to become ready at ${url}/-/ready`,
      async () => {
        if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${logTail()}`);
        const res = await fetch(`${url}/-/ready`).catch(() => undefined);
        return res?.ok ? true : undefined;
      },
      30_000,
      100,
    );
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}\n--- ${name} log ---\n${logTail()}`, { cause: e });
  }
  return { name, url, logFile, logTail, stop };
}

/** What to run: the scrape target, the alerting rules and where Alertmanager delivers. */
export interface StackOptions {
  /** `host:port` serving `/metrics` (a {@link GaugeEndpoint}, or a kubevigil). */
  scrapeTarget: string;
  /**
   * Bearer token Prometheus presents to the target: kubevigil's `/metrics` asks for one once it has
   * tokens. Read from a file, as deploy/compose/prometheus/prometheus.yml reads its Compose secret.
   */
  scrapeToken?: string;
  /** Prometheus rule file content (YAML `groups:`). */
  rules: string;
  /** The webhook URL Alertmanager posts every notification to. */
  webhookUrl: string;
  /** Alertmanager's repeat_interval (default 2s, so repeat deliveries happen within a test). */
  repeatInterval?: string;
}

/** A running Prometheus + Alertmanager pair. */
export interface PrometheusStack {
  prometheus: ManagedProcess;
  alertmanager: ManagedProcess;
  dir: string;
  stop(): Promise<void>;
}

/** Starts Alertmanager, then Prometheus pointed at it, each on a free port with its own directory. */
export async function startPrometheusStack(opts: StackOptions): Promise<PrometheusStack> {
  const dir = mkdtempSync(join(tmpdir(), 'kubevigil-prom-'));
  const [amPort, promPort] = [await freePort(), await freePort()];
  writeFileSync(
    join(dir, 'alertmanager.yml'),
    [
      'route:',
      '  receiver: kubevigil',
      '  group_by: [alertname]',
      '  group_wait: 1s',
      '  group_interval: 1s',
      `  repeat_interval: ${opts.repeatInterval ?? '2s'}`,
      'receivers:',
      '  - name: kubevigil',
      '    webhook_configs:',
      `      - url: ${JSON.stringify(opts.webhookUrl)}`,
      '        send_resolved: true',
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'rules.yml'), opts.rules);
  const tokenFile = join(dir, 'scrape-token');
  if (opts.scrapeToken !== undefined) writeFileSync(tokenFile, opts.scrapeToken, { mode: 0o600 });
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global:',
      '  scrape_interval: 1s',
      '  evaluation_interval: 1s',
      'rule_files: [rules.yml]',
      'alerting:',
      '  alertmanagers:',
      `    - static_configs: [{ targets: ["127.0.0.1:${amPort}"] }]`,
      'scrape_configs:',
      '  - job_name: kubevigil-test',
      `    static_configs: [{ targets: [${JSON.stringify(opts.scrapeTarget)}] }]`,
      ...(opts.scrapeToken !== undefined ? [`    authorization: { type: Bearer, credentials_file: ${JSON.stringify(tokenFile)} }`] : []),
      '',
    ].join('\n'),
  );
  const alertmanager = await startProcess(
    'alertmanager',
    ALERTMANAGER_BIN,
    [
      `--config.file=${join(dir, 'alertmanager.yml')}`,
      `--storage.path=${join(dir, 'am-data')}`,
      `--web.listen-address=127.0.0.1:${amPort}`,
      '--cluster.listen-address=',
      '--log.level=debug',
    ],
    `http://127.0.0.1:${amPort}`,
    join(dir, 'alertmanager.log'),
  );
  let prometheus: ManagedProcess;
  try {
    prometheus = await startProcess(
      'prometheus',
      PROMETHEUS_BIN,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'prom-data')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        // Firing alerts are re-sent to Alertmanager every resend delay (1m by default).
        '--rules.alert.resend-delay=1s',
      ],
      `http://127.0.0.1:${promPort}`,
      join(dir, 'prometheus.log'),
    );
  } catch (e) {
    await alertmanager.stop();
    throw e;
  }
  return {
    prometheus,
    alertmanager,
    dir,
    async stop() {
      await prometheus.stop();
      await alertmanager.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
