/** The state the parts of one Kafka bus share: broker connectivity, closed, and the work close waits for. */

/** Shared by the parts of one bus; each records what it learns of the brokers. */
export class BusState {
  /** Whether the last exchange with the brokers succeeded. */
  connected = false;
  /** Set by close once subscriptions stopped and in-flight work settled: nothing new starts. */
  closed = false;
  private readonly inflight = new Set<Promise<unknown>>();

  /** Lets close wait for `p` (a send or read), whatever its outcome. */
  track(p: Promise<unknown>): void {
    const settled = p.then(
      () => undefined,
      () => undefined,
    );
    this.inflight.add(settled);
    void settled.then(() => this.inflight.delete(settled));
  }

  /** Resolves once what is in flight now has settled. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
  }
}
