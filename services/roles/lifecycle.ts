/**
 * One lifecycle for every part of a process (tracing, store, bus, each role, the HTTP server): a
 * {@link Component} starts and stops; a {@link Lifecycle} starts components in order and stops the
 * started ones in reverse order — at shutdown, and when a later start fails, so that a process that
 * cannot come up leaves nothing running. No component's stop has to know what else was started.
 * A stop can be bounded: past the bound it fails with {@link StopTimeoutError}, naming the
 * component that had not finished stopping.
 */
import type { Logger } from '../logging.js';

/** A part of the process with a start and a stop. */
export interface Component {
  /** For logs: which part failed to stop. */
  readonly name: string;
  /** Acquires what the component holds. A start that fails must leave nothing behind: it is not stopped. */
  start?(): void | Promise<void>;
  /** Releases it; called once, and only after a successful start. */
  stop?(): void | Promise<void>;
  /** For readiness: false while what it depends on (a broker, Redis) does not answer. */
  ready?(): Promise<boolean>;
}

/** Extra time the rest of a stop gets after the HTTP server's shutdown grace (bus, store, roles). */
export const STOP_MARGIN_MS = 5_000;

/** A stop that did not finish in time; `component` is the one still stopping. */
export class StopTimeoutError extends Error {
  constructor(
    readonly component: string,
    readonly timeoutMs: number,
  ) {
    super(`stopping did not finish within ${timeoutMs} ms: ${component} was still stopping`);
    this.name = 'StopTimeoutError';
  }
}

/** Starts components in order and stops the started ones in reverse order. */
export class Lifecycle {
  private readonly started: Component[] = [];
  private state: 'starting' | 'running' | 'stopping' = 'starting';
  private stopping?: Promise<void>;
  /** The component whose stop is under way, for a stop that hangs. */
  private current: string | undefined;

  constructor(private readonly logger: Logger) {}

  /**
   * Runs `wire`, which starts the components with {@link start}. If it throws — a start failed, or
   * anything between two starts — the components already started are stopped, last first, and the
   * error is rethrown; otherwise the lifecycle is running.
   */
  async run<T>(wire: () => Promise<T>): Promise<T> {
    try {
      const out = await wire();
      this.state = 'running';
      return out;
    } catch (e) {
      this.state = 'stopping';
      this.stopping = this.stopAll((c, err) => this.logger.debug({ err, component: c.name }, 'stopping after a failed start failed'));
      await this.stopping.catch(() => undefined);
      throw e;
    }
  }

  /** Starts a component (within {@link run}); it is stopped with the others from then on. */
  async start<C extends Component>(c: C): Promise<C> {
    if (this.state !== 'starting') throw new Error(`cannot start ${c.name}: the process is ${this.state}`);
    await c.start?.();
    this.started.push(c);
    return c;
  }

  /** True once everything started, until the stop begins, while every component is ready. */
  async ready(): Promise<boolean> {
    if (this.state !== 'running') return false;
    for (const c of this.started) if (c.ready && !(await c.ready())) return false;
    return true;
  }

  /**
   * Stops the started components, last started first. Each one is stopped even when one before it
   * failed to stop; the first failure is rethrown at the end. Idempotent. With `timeoutMs`, the
   * returned promise rejects with a {@link StopTimeoutError} once that time has passed (the stop
   * itself goes on: a hung component cannot be cancelled, only given up on).
   */
  stop(opts: { timeoutMs?: number } = {}): Promise<void> {
    this.state = 'stopping';
    this.stopping ??= this.stopAll((c, err) => this.logger.error({ err, component: c.name }, 'stopping a component failed'));
    const { timeoutMs } = opts;
    if (timeoutMs === undefined) return this.stopping;
    const stopping = this.stopping;
    return new Promise<void>((resolve, reject) => {
      // Not unref'd: a hung stop that holds no handle would otherwise let the process end silently.
      const timer = setTimeout(() => reject(new StopTimeoutError(this.current ?? 'a component', timeoutMs)), timeoutMs);
      stopping.then(
        () => (clearTimeout(timer), resolve()),
        (err: unknown) => (clearTimeout(timer), reject(err)),
      );
    });
  }

  private async stopAll(onError: (c: Component, err: unknown) => void): Promise<void> {
    const failures: unknown[] = [];
    for (const c of this.started.splice(0).reverse()) {
      this.current = c.name;
      try {
        await c.stop?.();
      } catch (err) {
        onError(c, err);
        failures.push(err);
      }
    }
    this.current = undefined;
    if (failures.length) throw failures[0];
  }
}

/** A component from a name and functions (for parts too small for a class). */
export function component(name: string, parts: Omit<Component, 'name'>): Component {
  return { name, ...parts };
}
