/**
 * List-and-watch of one Kubernetes resource, keeping only what a projection makes of each object.
 * The official client authenticates (in-cluster service account, kubeconfig, exec plugins) and
 * streams the watch; this class drives it the way client-go's reflector does: list in pages, watch
 * from the list's resourceVersion with bookmarks, resume a dropped watch from the last
 * resourceVersion seen, and list again on `410 Gone` (the version was compacted away). Objects
 * that disappeared while the watch was down are removed by the relist.
 */
import { HttpMethod, RequestContext, Watch, type KubeConfig } from '@kubernetes/client-node';
import { fetch } from 'undici';
import type { Logger } from '../logging.js';

/** A Kubernetes object as the reflector reads it: only metadata is assumed. */
export interface KubeObject {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [k: string]: unknown;
}

/** What a reflector feeds: the store of one resource. */
export interface ReflectorSink<T> {
  /** Replaces everything (after a list): the keys given are all there is. */
  replace(items: Map<string, T>): void;
  upsert(key: string, item: T): void;
  remove(key: string): void;
}

export interface ReflectorOptions<T> {
  /** e.g. `/api/v1/pods`, `/apis/apps/v1/deployments`. */
  path: string;
  /** Resource name for metrics and logs. */
  resource: string;
  project: (o: KubeObject) => T | undefined;
  sink: ReflectorSink<T>;
  logger: Logger;
  /** Items per list page (default 500). */
  pageSize?: number;
  onEvent?: (kind: 'list' | 'watch-event' | 'restart' | 'relist-gone', at: number) => void;
  /** A custom resource whose CRD may be missing: a 404 counts as synced and empty, checked again every 5 minutes. */
  optional?: boolean;
}

const keyOf = (o: KubeObject) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

class NotFoundError extends Error {}

class GoneError extends Error {
  constructor() {
    super('410 Gone: the resourceVersion was compacted, relisting');
  }
}

/** Keeps one resource's projection in sync with the API server until stopped. */
export class Reflector<T> {
  private resourceVersion = '';
  private stopped = false;
  private abort?: AbortController;
  private wakeup?: () => void;
  synced = false;
  /** An optional resource whose API is not served (404). */
  absent = false;
  lastError?: string;
  /** Watches that failed and were started again (a watch the server ended on time is not counted). */
  restarts = 0;
  private readonly loop: Promise<void>;

  constructor(
    private readonly kc: KubeConfig,
    private readonly o: ReflectorOptions<T>,
  ) {
    this.loop = this.run();
  }

  /** Stops watching; a watch whose response has not started yet is abandoned after 2 s. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    this.wakeup?.();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.loop, new Promise<void>((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
  }

  private async run(): Promise<void> {
    let backoff = 0;
    while (!this.stopped) {
      try {
        if (!this.resourceVersion) await this.list();
        await this.watch();
        backoff = 0;
      } catch (e) {
        if (this.stopped) break;
        if (e instanceof GoneError) {
          this.resourceVersion = '';
          this.o.onEvent?.('relist-gone', Date.now());
          continue;
        }
        if (e instanceof NotFoundError && this.o.optional) {
          // The CRD is not installed: nothing to watch, and nothing missing.
          this.o.sink.replace(new Map());
          this.synced = true;
          this.absent = true;
          this.lastError = undefined;
          await this.sleep(300_000);
          continue;
        }
        this.lastError = (e as Error).message;
        this.restarts++;
        this.o.onEvent?.('restart', Date.now());
        backoff = Math.min(30_000, backoff ? backoff * 2 : 1000);
        this.o.logger.warn({ resource: this.o.resource, err: e, retryInMs: backoff }, 'inventory watch failed; retrying');
        await this.sleep(backoff);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      t.unref?.();
      this.wakeup = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /** Lists every page, then replaces the store's contents at once. */
  private async list(): Promise<void> {
    const items = new Map<string, T>();
    let cont = '';
    let rv = '';
    do {
      const url = new URL(this.serverURL() + this.o.path);
      url.searchParams.set('limit', String(this.o.pageSize ?? 500));
      if (cont) url.searchParams.set('continue', cont);
      const body = await this.get(url);
      if (!Array.isArray(body.items)) throw new Error(`${this.o.path}: the list has no items`);
      for (const o of body.items as KubeObject[]) {
        const p = this.o.project(o);
        if (p !== undefined) items.set(keyOf(o), p);
      }
      const meta = (body.metadata ?? {}) as { continue?: string; resourceVersion?: string };
      cont = meta.continue ?? '';
      rv = meta.resourceVersion ?? rv;
    } while (cont && !this.stopped);
    this.o.sink.replace(items);
    this.resourceVersion = rv;
    this.synced = true;
    this.lastError = undefined;
    this.o.onEvent?.('list', Date.now());
  }

  private serverURL(): string {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    return cluster.server.replace(/\/$/, '');
  }

  private async get(url: URL): Promise<Record<string, unknown>> {
    const ctx = new RequestContext(url.toString(), HttpMethod.GET);
    await this.kc.applySecurityAuthentication(ctx);
    this.abort = new AbortController();
    const res = await fetch(url, { method: 'GET', headers: ctx.getHeaders(), dispatcher: ctx.getDispatcher(), signal: this.abort.signal });
    if (res.status === 410) throw new GoneError();
    if (res.status === 404) throw new NotFoundError(`GET ${url.pathname}: 404`);
    if (res.status !== 200) throw new Error(`GET ${url.pathname}: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
    return (await res.json()) as Record<string, unknown>;
  }

  /** Watches from the current resourceVersion until the stream ends (timeout, error, stop). */
  private watch(): Promise<void> {
    const w = new Watch(this.kc);
    // The server ends a watch after timeoutSeconds (below the client's 30 s inactivity timeout, which
    // bookmarks and events reset); either way the loop resumes from the last resourceVersion.
    return new Promise<void>((resolve, reject) => {
      let gone = false;
      void w
        .watch(
          this.o.path,
          { resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 25 },
          (phase: string, obj: KubeObject) => {
            if (phase === 'ERROR') {
              if ((obj as { code?: number }).code === 410) gone = true;
              return;
            }
            const rv = obj.metadata?.resourceVersion;
            if (phase === 'ADDED' || phase === 'MODIFIED') {
              const p = this.o.project(obj);
              if (p !== undefined) this.o.sink.upsert(keyOf(obj), p);
              else this.o.sink.remove(keyOf(obj));
            } else if (phase === 'DELETED') this.o.sink.remove(keyOf(obj));
            if (rv) this.resourceVersion = rv;
            this.o.onEvent?.('watch-event', Date.now());
          },
          (err: unknown) => {
            const code = (err as { statusCode?: number; code?: number } | null)?.statusCode ?? (err as { code?: number } | null)?.code;
            if (gone || code === 410) reject(new GoneError());
            else if (err && (err as Error).name !== 'TimeoutError' && (err as Error).name !== 'AbortError') reject(err as Error);
            else resolve();
          },
        )
        .then((ctrl) => {
          this.abort = ctrl;
          if (this.stopped) ctrl.abort();
        }, reject);
    });
  }
}
