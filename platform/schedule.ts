/**
 * A job on a node-cron schedule that never runs twice at once (pollers, the incident sweeper): a
 * call while a run is in progress joins it, and stopping waits for it.
 */
import { schedule, validate, type ScheduledTask } from 'node-cron';

/** Runs `poll` on a node-cron schedule, never twice at once; concurrent {@link pollOnce} calls share the run in progress. */
export class PollSchedule<R> {
  private task?: ScheduledTask;
  private running?: Promise<R>;

  /** `poll` must not reject: the caller reports its errors (in its result, or in a log). */
  constructor(
    private readonly name: string,
    private readonly cron: string,
    private readonly poll: () => Promise<R>,
  ) {
    if (!validate(cron)) throw new RangeError(`${name}: "${cron}" is not a cron expression`);
  }

  /** Starts polling on the schedule. */
  start(): void {
    this.task ??= schedule(
      this.cron,
      async () => {
        await this.pollOnce();
      },
      { name: this.name, noOverlap: true },
    );
  }

  /**
   * Stops the schedule and waits for a run in progress. The task is destroyed, not only stopped:
   * node-cron keeps every task it scheduled in a process-wide registry until it is destroyed, and a
   * stopped one would hold `poll` and all it reaches (a whole kubevigil, for the incident sweeper)
   * for the life of the process.
   */
  async stop(): Promise<void> {
    await this.task?.destroy();
    this.task = undefined;
    await this.running?.catch(() => undefined);
  }

  /** Runs now, or joins the run in progress. */
  pollOnce(): Promise<R> {
    this.running ??= this.poll().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }
}
