/**
 * Reloading configuration without a restart (SIGHUP, POST /-/reload), as Prometheus does: every
 * registered reloadable loads and validates its new state first and applies it only when it has
 * no problem; on a problem the running state stays and the problem is reported (the response, a
 * log line, `kubevigil_config_last_reload_successful` 0). Each process reloads only itself: in
 * distributed mode every process needs its own SIGHUP or request.
 */
import type { Request, Response } from 'express';
import { Gauge, type Registry } from 'prom-client';
import { formatProblem, type Problem } from '../correlator/detection/problems.js';
import { sendProblem } from '../platform/http.js';
import type { Logger } from './logging.js';

/** Loads and applies new state; resolves with the problems that kept it from applying (none: applied). */
export type Reloadable = () => Promise<Problem[]>;

/** What one reload found: the problems per reloadable (none for those that applied). */
export interface ReloadResult {
  ok: boolean;
  /** Reloadables in registration order, with their problems. */
  results: { name: string; problems: Problem[] }[];
}

/** The reloadables of one process, reloaded together, one reload at a time. */
export class ReloadRegistry {
  private readonly items = new Map<string, Reloadable>();
  private chain: Promise<unknown> = Promise.resolve();
  private readonly successful: Gauge;
  private readonly successTime: Gauge;

  constructor(
    private readonly logger: Logger,
    registry: Registry,
    private readonly now: () => number = Date.now,
  ) {
    this.successful = new Gauge({
      name: 'kubevigil_config_last_reload_successful',
      help: 'Whether the last configuration reload (SIGHUP, POST /-/reload) succeeded: 1, or 0 when a problem kept the running rules.',
      registers: [registry],
    });
    this.successTime = new Gauge({
      name: 'kubevigil_config_last_reload_success_timestamp_seconds',
      help: 'When the configuration was last loaded successfully (start-up or reload), in seconds since the epoch.',
      registers: [registry],
    });
    // What the process started with loaded without a problem (it would not have started otherwise).
    this.successful.set(1);
    this.successTime.set(this.now() / 1000);
  }

  /** Adds a reloadable under a unique name (rules, silences…); returns a function that removes it. */
  register(name: string, reload: Reloadable): () => void {
    if (this.items.has(name)) throw new Error(`a reloadable named ${name} is already registered`);
    this.items.set(name, reload);
    return () => {
      if (this.items.get(name) === reload) this.items.delete(name);
    };
  }

  /** Names of the registered reloadables, in order. */
  names(): string[] {
    return [...this.items.keys()];
  }

  /** Reloads everything registered; a reload asked for while one runs waits for it. Never rejects. */
  reload(trigger: string): Promise<ReloadResult> {
    const run = this.chain.then(() => this.run(trigger));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async run(trigger: string): Promise<ReloadResult> {
    const results: ReloadResult['results'] = [];
    for (const [name, reload] of this.items) {
      let problems: Problem[];
      try {
        problems = await reload();
      } catch (err) {
        problems = [{ file: '(reload)', item: name, field: '(reload)', message: (err as Error).message ?? String(err) }];
      }
      results.push({ name, problems });
    }
    const problems = results.flatMap((r) => r.problems);
    const ok = problems.length === 0;
    this.successful.set(ok ? 1 : 0);
    if (ok) {
      this.successTime.set(this.now() / 1000);
      this.logger.info({ trigger, reloaded: results.map((r) => r.name) }, 'configuration reloaded');
    } else
      this.logger.error(
        { trigger, problems: problems.slice(0, 50).map(formatProblem), count: problems.length },
        'configuration reload failed; the running configuration stays',
      );
    return { ok, results };
  }
}

/** POST /-/reload: 200 with what was reloaded, or 400 listing every problem (the running configuration stays). */
export function reloadHandler(registry: ReloadRegistry) {
  return async (_req: Request, res: Response): Promise<void> => {
    const r = await registry.reload('http');
    const reloaded = r.results.map((x) => x.name);
    if (r.ok) {
      res.json({ status: 'reloaded', reloaded });
      return;
    }
    const problems = r.results.flatMap((x) => x.problems.map((p) => ({ reloadable: x.name, ...p, text: formatProblem(p) })));
    sendProblem(
      res,
      400,
      'Bad Request',
      `the new configuration has ${problems.length} problem(s); the running configuration stays: ${problems
        .slice(0, 5)
        .map((p) => p.text)
        .join('; ')
        .slice(0, 2000)}`,
      { problems: problems.slice(0, 500) },
    );
  };
}
