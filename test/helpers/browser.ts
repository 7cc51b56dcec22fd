/**
 * Browser harness for the console's tests: Debian's Chromium (scripts/chromium.sh install) driven by
 * playwright-core, a `kubevigil serve` process serving the console, the four-source demo attack sent
 * to it, axe-core run inside the page, and a watch on Content-Security-Policy violations and page
 * errors. Run `npm run build` first: the process serves dist/console and runs bin/kubevigil.js.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { fourSourceAttack, type Delivery } from '../../services/cli/scenario.js';
import { SEED_SCENARIO } from '../../connectors/k8s-audit/scenario.js';
import { startKubevigil, type KubevigilProcess } from './distributed.js';
import { waitFor } from './prometheus.js';

/** The Chromium binary: KUBEVIGIL_CHROMIUM, or Debian's. */
export const CHROMIUM = process.env.KUBEVIGIL_CHROMIUM || '/usr/bin/chromium';
const CONSOLE_INDEX = new URL('../../dist/console/index.html', import.meta.url).pathname;
const AXE = new URL('../../node_modules/axe-core/axe.min.js', import.meta.url).pathname;

/**
 * Why the browser tests cannot run here, or undefined. Under CI a missing Chromium is not a reason to
 * skip: the tests run and fail on it ({@link launchBrowser} says how to install it).
 */
export function skipReason(): string | undefined {
  if (existsSync(CHROMIUM) || process.env.CI) return undefined;
  return `no Chromium at ${CHROMIUM} (run scripts/chromium.sh install, or set KUBEVIGIL_CHROMIUM)`;
}

/** Headless Chromium. Fails with the fix when the binary or the built console is missing. */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: run scripts/chromium.sh install (as root), or set KUBEVIGIL_CHROMIUM`);
  if (!existsSync(CONSOLE_INDEX)) throw new Error(`${CONSOLE_INDEX} is missing: run npm run build`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
}

/** A `kubevigil serve` process (every role, embedded mode) and its base URL, ready. */
export interface ConsoleServer {
  url: string;
  process: KubevigilProcess;
}

/** Starts kubevigil on a free port with a data directory of its own; `env` adds tokens and the like. */
export async function startConsoleServer(env: Record<string, string> = {}): Promise<ConsoleServer> {
  // Embedded mode whatever the surrounding environment (scripts/with-services.sh exports Kafka and Redis);
  // the log level stays at info: the URL comes from the "kubevigil listening" line.
  const proc = startKubevigil('all', { KAFKA_BROKERS: '', REDIS_URL: '', KUBEVIGIL_HOST: '127.0.0.1', ...env });
  const url = await proc.url;
  await waitFor('kubevigil /readyz', async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined), 30_000, 100);
  return { url, process: proc };
}

/** Posts deliveries (path, content type, body) to kubevigil; throws on any answer that is not 2xx. */
export async function deliver(url: string, deliveries: Delivery[], ingestToken?: string): Promise<void> {
  for (const d of deliveries) {
    const headers: Record<string, string> = { 'content-type': d.contentType };
    if (ingestToken) headers.authorization = `Bearer ${ingestToken}`;
    const res = await fetch(`${url}${d.path}`, { method: 'POST', headers, body: d.body });
    if (res.status >= 300) throw new Error(`${d.path} answered ${res.status}: ${await res.text()}`);
  }
}

/** The seed attack as `kubevigil demo` sends it: audit webhook, Loki push, Alertmanager webhook and OTLP. */
export function sendDemoAttack(url: string, ingestToken?: string): Promise<void> {
  return deliver(url, fourSourceAttack(SEED_SCENARIO), ingestToken);
}

/** GET of an API path as JSON, with a bearer token when given; throws on a status that is not 200. */
export async function apiGet<T>(url: string, path: string, token?: string): Promise<T> {
  const res = await fetch(`${url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as T;
}

/** What goes wrong in a page: CSP violations (inline script or style, foreign origins) and uncaught errors. */
export interface PageWatch {
  csp: string[];
  errors: string[];
}

/** Records the page's CSP violations (the DOM event and the console message) and uncaught errors. */
export async function watchPage(page: Page): Promise<PageWatch> {
  const w: PageWatch = { csp: [], errors: [] };
  // exposeBinding and init scripts go through the DevTools protocol, not the page's CSP.
  await page.exposeBinding('__kvCspViolation', (_src, v: string) => void w.csp.push(v));
  await page.addInitScript(`document.addEventListener('securitypolicyviolation', (e) => {
    window.__kvCspViolation(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber + (e.sample ? ' (' + e.sample + ')' : ''));
  });`);
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) w.csp.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => void w.errors.push(e.message));
  return w;
}

/** Waits for a selector to be visible, failing with an error that names it (a page part that is missing). */
export async function present(page: Page, selector: string, timeout = 15_000): Promise<Locator> {
  const loc = page.locator(selector).first();
  try {
    await loc.waitFor({ state: 'visible', timeout });
  } catch {
    throw new Error(`missing ${selector} on ${new URL(page.url()).pathname} after ${timeout} ms`);
  }
  return loc;
}

/** Waits for an element matching `selector` whose whole text is `text` (trimmed), naming both on failure. */
export async function textIs(page: Page, selector: string, text: string, timeout = 15_000): Promise<Locator> {
  const escaped = text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const loc = page
    .locator(selector)
    .filter({ hasText: new RegExp(`^\\s*${escaped}\\s*$`) })
    .first();
  try {
    await loc.waitFor({ state: 'visible', timeout });
  } catch {
    const now = await page
      .locator(selector)
      .allTextContents()
      .catch(() => []);
    throw new Error(`${selector} never read "${text}" on ${new URL(page.url()).pathname} within ${timeout} ms (it reads ${JSON.stringify(now)})`);
  }
  return loc;
}

/** One axe-core violation, as the test reports it. */
export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  targets: string[];
  /** axe's explanation for the first element (for contrast: the ratio and the two colours). */
  summary: string;
}

/**
 * Runs axe-core in the page and returns the serious and critical violations. The source goes in
 * with `page.evaluate` (DevTools), since the console's CSP refuses a script tag.
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(readFileSync(AXE, 'utf8'));
  const all = await page.evaluate<AxeViolation[]>(`axe.run(document, { resultTypes: ['violations'] }).then((r) =>
    r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => n.target.join(' ')), summary: (v.nodes[0] && v.nodes[0].failureSummary) || '' })))`);
  return all.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** Violations as readable lines: id, impact, help and the first three elements. */
export function formatViolations(vs: AxeViolation[]): string {
  return vs
    .map(
      (v) =>
        `${v.id} (${v.impact}): ${v.help}\n    ${v.targets.slice(0, 3).join('\n    ')}${v.targets.length > 3 ? `\n    … ${v.targets.length - 3} more` : ''}`,
    )
    .join('\n');
}

/**
 * A TCP proxy in front of kubevigil that the test can cut: `cut()` drops every open connection
 * and refuses new ones until `restore()`, as a network outage does to the console's event stream.
 */
export interface CuttableProxy {
  url: string;
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function cuttableProxy(target: string): Promise<CuttableProxy> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let open = true;
  const server: Server = createServer((client) => {
    if (!open) return void client.destroy();
    const upstream = connect(Number(port), hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut: () => {
      open = false;
      for (const s of sockets) s.destroy();
    },
    restore: () => {
      open = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
