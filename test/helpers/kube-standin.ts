/**
 * A stand-in for the Kubernetes API's list and watch, enforcing the contract the inventory relies
 * on: lists in pages (`limit`/`continue`) with the collection's resourceVersion, watches that
 * start after a given resourceVersion and stream ADDED/MODIFIED/DELETED/BOOKMARK events as JSON
 * lines, `410 Gone` for a resourceVersion older than what is kept (compaction), and 404 for
 * resources that are not served. Tests change objects and can drop or compact the watches.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { INVENTORY_PATHS } from '../../services/inventory/inventory.js';

/** The paths of a cluster without Istio, Gatekeeper or Kyverno: their CRDs answer 404. */
export const CORE_PATHS = INVENTORY_PATHS.filter((p) => !/istio|gatekeeper|kyverno/.test(p));

/** Credentials for a stand-in (plain HTTP, a dummy token). */
export function standInKubeConfig(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'stand-in-token' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

interface Obj {
  metadata: { name: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  [k: string]: unknown;
}

interface Change {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  obj: Obj;
}

export class KubeStandIn {
  private rv = 100;
  private readonly objects = new Map<string, Map<string, Obj>>();
  private readonly log = new Map<string, Change[]>();
  /** Changes older than this resourceVersion are forgotten: a watch from before it gets 410. */
  private compactedBefore = 0;
  private readonly watchers = new Set<{ path: string; res: ServerResponse }>();
  readonly served = new Set<string>();
  /** Requests seen, for assertions: `LIST /api/v1/pods`, `WATCH /api/v1/pods@123`. */
  readonly requests: string[] = [];
  private server = createServer((req, res) => this.handle(req, res));
  url = '';

  constructor(paths: string[]) {
    for (const p of paths) {
      this.served.add(p);
      this.objects.set(p, new Map());
      this.log.set(p, []);
    }
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    for (const w of this.watchers) w.res.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  put(path: string, obj: Obj): void {
    const store = this.objects.get(path)!;
    const key = `${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
    const type = store.has(key) ? 'MODIFIED' : 'ADDED';
    const o = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.rv) } };
    store.set(key, o);
    this.emit(path, { rv: this.rv, type, obj: o });
  }

  delete(path: string, namespace: string | undefined, name: string): void {
    const store = this.objects.get(path)!;
    const key = `${namespace ?? ''}/${name}`;
    const o = store.get(key);
    if (!o) return;
    store.delete(key);
    this.emit(path, { rv: ++this.rv, type: 'DELETED', obj: { ...o, metadata: { ...o.metadata, resourceVersion: String(this.rv) } } });
  }

  /** Changes an object without telling open watches (as if they were down), then compacts history. */
  silently(fn: () => void): void {
    const saved = [...this.watchers];
    this.watchers.clear();
    fn();
    for (const w of saved) this.watchers.add(w);
  }

  /** Forgets the change history: watches resuming from an older resourceVersion get 410 Gone. */
  compact(): void {
    this.compactedBefore = this.rv + 1;
    for (const l of this.log.values()) l.length = 0;
  }

  /** Closes every open watch (a network blip); clients resume from their last resourceVersion. */
  dropWatches(): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  /** Sends a bookmark on every open watch. */
  bookmark(): void {
    for (const w of this.watchers) w.res.write(`${JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: String(this.rv) } } })}\n`);
  }

  private emit(path: string, c: Change): void {
    this.log.get(path)!.push(c);
    for (const w of this.watchers) if (w.path === path) w.res.write(`${JSON.stringify({ type: c.type, object: c.obj })}\n`);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    if (!this.served.has(path)) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', code: 404, reason: 'NotFound', message: `the server could not find the requested resource ${path}` }));
      return;
    }
    if (url.searchParams.get('watch') === 'true') {
      const from = Number(url.searchParams.get('resourceVersion') ?? '0');
      this.requests.push(`WATCH ${path}@${from}`);
      if (from < this.compactedBefore - 1) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          `${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: `too old resource version: ${from}` } })}\n`,
        );
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      // The API server answers a watch at once; Node would hold the headers until the first event.
      res.flushHeaders();
      for (const c of this.log.get(path)!) if (c.rv > from) res.write(`${JSON.stringify({ type: c.type, object: c.obj })}\n`);
      const w = { path, res };
      this.watchers.add(w);
      req.on('close', () => this.watchers.delete(w));
      return;
    }
    this.requests.push(`LIST ${path}`);
    const all = [...this.objects.get(path)!.values()];
    const limit = Number(url.searchParams.get('limit') ?? '500');
    const start = Number(url.searchParams.get('continue') || '0');
    const page = all.slice(start, start + limit);
    const next = start + limit < all.length ? String(start + limit) : '';
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: 'List', metadata: { resourceVersion: String(this.rv), ...(next ? { continue: next } : {}) }, items: page }));
  }
}
