/**
 * Graceful shutdown of the built command (issue #19, "Bounded under attack"): on SIGTERM the event
 * streams end, the listener closes, idle keep-alive connections close at once, requests in flight
 * finish with `Connection: close`, and whatever is still open when KUBEVIGIL_SHUTDOWN_GRACE expires
 * is cut — the process always exits. Each case spawns `bin/kubevigil.js serve` (run `npm run build`
 * first) and talks raw HTTP/1.1 over sockets, so that a reset, a missing header or a connection left
 * open shows. Progress is followed through the server's log lines and socket events, not sleeps.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../services/logging.js';
import { Lifecycle, StopTimeoutError, component } from '../services/roles/lifecycle.js';
import { readReal } from './helpers/fixtures.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin/kubevigil.js');
const GRACE_EXPIRED = 'shutdown grace expired: cutting the connections still open';
const DRAINING = 'draining HTTP connections';

interface LogLine {
  msg: string;
  level: number;
  [k: string]: unknown;
}

/** A spawned `kubevigil serve`: its log lines as they come, its URL, and how it exited. */
interface Proc {
  child: ChildProcess;
  url: string;
  logs: LogLine[];
  /** Resolves with the first log line (already seen or still to come) with this message. */
  logged(msg: string): Promise<LogLine>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const dirs: string[] = [];
const running = new Set<ChildProcess>();

async function start(env: Record<string, string> = {}): Promise<Proc> {
  const dir = mkdtempSync(join(tmpdir(), 'kv-shutdown-'));
  dirs.push(dir);
  // Only what this test sets: no Kafka, Redis or tokens from the environment of the run.
  const child = spawn(process.execPath, [BIN, 'serve'], {
    env: { PATH: process.env.PATH, KUBEVIGIL_PORT: '0', KUBEVIGIL_DATA_DIR: dir, KUBEVIGIL_INVENTORY: 'off', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  void exited.then(() => running.delete(child));
  const logs: LogLine[] = [];
  const waiters: { msg: string; resolve: (l: LogLine) => void }[] = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      return;
    }
    logs.push(line);
    for (const w of waiters.filter((x) => x.msg === line.msg)) w.resolve(line);
  });
  const logged = (msg: string) =>
    new Promise<LogLine>((resolvePromise, reject) => {
      const seen = logs.find((l) => l.msg === msg);
      if (seen) return resolvePromise(seen);
      waiters.push({ msg, resolve: resolvePromise });
      void exited.then(() => setImmediate(() => reject(new Error(`kubevigil exited without logging "${msg}"\n${stderr}`))));
    });
  const listening = await Promise.race([
    logged('kubevigil listening'),
    exited.then(({ code }) => Promise.reject(new Error(`kubevigil exited with ${code} before listening:\n${stderr}`))),
  ]);
  return { child, url: String(listening.url), logs, logged, exited };
}

/** A raw HTTP/1.1 connection: everything the server sent, and how the connection ended. */
class Raw {
  readonly socket: Socket;
  text = '';
  /** The error code of a connection that did not end cleanly (ECONNRESET…). */
  error: string | undefined;
  /** True once the server half-closed the connection (FIN), the graceful way. */
  gotEnd = false;
  /** Resolves when the connection is closed, whichever way. */
  readonly closed: Promise<void>;
  private readonly watchers: (() => void)[] = [];

  constructor(url: string) {
    const { hostname, port } = new URL(url);
    this.socket = connect(Number(port), hostname);
    this.socket.setEncoding('utf8');
    this.socket.on('data', (d: string) => {
      this.text += d;
      for (const w of this.watchers) w();
    });
    this.socket.on('end', () => (this.gotEnd = true));
    this.socket.on('error', (e: NodeJS.ErrnoException) => (this.error = e.code ?? e.message));
    this.closed = new Promise((r) => this.socket.once('close', () => r()));
  }

  write(s: string): void {
    this.socket.write(s);
  }

  /** Resolves once what the server sent matches (or fails when the connection closes first). */
  until(re: RegExp): Promise<void> {
    return new Promise((resolvePromise, reject) => {
      const check = () => re.test(this.text) && resolvePromise();
      this.watchers.push(check);
      check();
      void this.closed.then(() => (re.test(this.text) ? resolvePromise() : reject(new Error(`closed before ${re}; got:\n${this.text}`))));
    });
  }

  /** The responses received, each as its status code, headers (lower-case names) and raw text. */
  responses(): { status: number; headers: Record<string, string>; raw: string }[] {
    return this.text
      .split(/(?=HTTP\/1\.1 \d{3} )/)
      .filter((r) => r.startsWith('HTTP/1.1 '))
      .map((raw) => {
        const [head = ''] = raw.split('\r\n\r\n');
        const [status = '', ...lines] = head.split('\r\n');
        const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
        return { status: Number(status.split(' ')[1]), headers, raw };
      });
  }
}

const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: kubevigil\r\n\r\n`;

afterEach(() => {
  // A failed case must not leave its server behind for the next.
  for (const c of running) c.kill('SIGKILL');
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('kubevigil serve on SIGTERM (the built command)', () => {
  it('ends an open event stream and exits 0 at once, far within the grace', async () => {
    const kv = await start({ KUBEVIGIL_SHUTDOWN_GRACE: '30s' });
    const sse = new Raw(kv.url);
    sse.write(`GET /api/v1/incidents/stream HTTP/1.1\r\nHost: kubevigil\r\nAccept: text/event-stream\r\n\r\n`);
    await sse.until(/retry: 5000\n\n/);
    const sent = Date.now();
    kv.child.kill('SIGTERM');
    await sse.closed;
    // The response ended (the last chunk of a chunked body) and the connection closed cleanly.
    expect(sse.text).toMatch(/\r\n0\r\n\r\n$/);
    expect(sse.gotEnd).toBe(true);
    expect(sse.error).toBeUndefined();
    expect(await kv.exited).toEqual({ code: 0, signal: null });
    // A stream holding the drain would show as a grace overrun (30 s, then exit 0 all the same).
    expect(Date.now() - sent).toBeLessThan(20_000);
    expect(kv.logs.map((l) => l.msg)).toEqual(expect.arrayContaining([DRAINING, 'HTTP connections drained', 'kubevigil stopped']));
    expect(kv.logs.map((l) => l.msg)).not.toContain(GRACE_EXPIRED);
  });

  it('lets an ingest request whose body is still arriving finish: answered, with Connection: close, not reset', async () => {
    const kv = await start({ KUBEVIGIL_SHUTDOWN_GRACE: '30s' });
    const body = Buffer.from(readReal('k8s-audit/falco-trace-files/exec_pod.json'));
    const post = new Raw(kv.url);
    // Expect: 100-continue: the "100 Continue" says the server has the request in hand.
    post.write(
      `POST /ingest/k8s-audit HTTP/1.1\r\nHost: kubevigil\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`,
    );
    await post.until(/^HTTP\/1\.1 100 Continue\r\n\r\n/);
    post.socket.write(body.subarray(0, 10));
    kv.child.kill('SIGTERM');
    const draining = await kv.logged(DRAINING);
    expect(draining.requests).toBe(1);
    post.socket.write(body.subarray(10));
    await post.closed;
    const [, res] = post.responses();
    expect(res?.status, post.text).toBe(200);
    expect(res?.headers.connection).toBe('close');
    expect(JSON.parse(res!.raw.slice(res!.raw.indexOf('\r\n\r\n') + 4))).toMatchObject({ accepted: 1 });
    expect(post.gotEnd).toBe(true);
    expect(post.error).toBeUndefined();
    expect(await kv.exited).toEqual({ code: 0, signal: null });
    expect(kv.logs.map((l) => l.msg)).not.toContain(GRACE_EXPIRED);
  });

  it('closes an idle keep-alive connection at once, without a reset, and answers requests that arrive on one during the drain', async () => {
    const kv = await start({ KUBEVIGIL_SHUTDOWN_GRACE: '30s' });
    const idle = new Raw(kv.url);
    idle.write(get('/healthz'));
    await idle.until(/"status":"ok"/);
    expect(idle.responses()[0]!.headers.connection).toBe('keep-alive');
    // Two kept-alive connections whose next request has begun (its first line and Host) when the
    // drain starts: sent in the same write as a first request, so the server has read it once it
    // answers that one. Their requests complete during the drain.
    const ready = new Raw(kv.url);
    const stream = new Raw(kv.url);
    ready.write(`${get('/healthz')}GET /readyz HTTP/1.1\r\nHost: kubevigil\r\n`);
    stream.write(`${get('/healthz')}GET /api/v1/incidents/stream HTTP/1.1\r\nHost: kubevigil\r\n`);
    await Promise.all([ready.until(/"status":"ok"/), stream.until(/"status":"ok"/)]);

    kv.child.kill('SIGTERM');
    await kv.logged(DRAINING);
    // The idle connection goes first, with a FIN, while the other two still hold the drain open.
    await idle.closed;
    expect(idle.gotEnd).toBe(true);
    expect(idle.error).toBeUndefined();
    expect(kv.child.exitCode).toBeNull();

    ready.write('\r\n');
    stream.write('\r\n');
    await Promise.all([ready.closed, stream.closed]);
    const readyz = ready.responses()[1];
    expect(readyz?.status, ready.text).toBe(503);
    expect(readyz?.headers.connection).toBe('close');
    const refused = stream.responses()[1];
    expect(refused?.status, stream.text).toBe(503);
    expect(refused?.headers.connection).toBe('close');
    expect(refused?.headers['retry-after']).toMatch(/^\d+$/);
    for (const c of [ready, stream]) {
      expect(c.gotEnd).toBe(true);
      expect(c.error).toBeUndefined();
    }
    expect(await kv.exited).toEqual({ code: 0, signal: null });
    expect(kv.logs.map((l) => l.msg)).not.toContain(GRACE_EXPIRED);
  });

  it('cuts a request that does not finish within the grace, logs it, and still exits (0)', async () => {
    const kv = await start({ KUBEVIGIL_SHUTDOWN_GRACE: '2s' });
    const stuck = new Raw(kv.url);
    stuck.write(`POST /ingest/k8s-audit HTTP/1.1\r\nHost: kubevigil\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n`);
    await stuck.until(/^HTTP\/1\.1 100 Continue\r\n\r\n/);
    stuck.write('[');
    const sent = Date.now();
    kv.child.kill('SIGTERM');
    const cut = await kv.logged(GRACE_EXPIRED);
    expect(cut).toMatchObject({ requests: 1, cut: ['POST /ingest/k8s-audit'], graceMs: 2000 });
    await stuck.closed;
    // Cut: nothing but the interim 100 Continue was ever answered.
    expect(stuck.responses().map((r) => r.status)).toEqual([100]);
    expect(await kv.exited).toEqual({ code: 0, signal: null });
    expect(kv.logs.map((l) => l.msg)).toContain('kubevigil stopped');
    // The 2 s grace plus the 5 s margin bound the whole stop; 15 s leaves room for a slow machine.
    expect(Date.now() - sent).toBeLessThan(15_000);
  });
});

describe('Lifecycle.stop bounded', () => {
  it('gives up on a component whose stop hangs, and names it', async () => {
    const lifecycle = new Lifecycle(createLogger('silent'));
    const stopped: string[] = [];
    await lifecycle.run(async () => {
      await lifecycle.start(component('store', { stop: () => void stopped.push('store') }));
      await lifecycle.start(component('bus', { stop: () => new Promise<void>(() => undefined) }));
      await lifecycle.start(component('http server', { stop: () => void stopped.push('http server') }));
    });
    const err = await lifecycle.stop({ timeoutMs: 50 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StopTimeoutError);
    expect(err).toMatchObject({ component: 'bus', timeoutMs: 50 });
    expect((err as Error).message).toMatch(/bus was still stopping/);
    expect(stopped).toEqual(['http server']);
    expect(await lifecycle.ready()).toBe(false);
  });
});
