/** The notifier role: incident changes from the incidents topic → the configured sinks, through the store's outbox. */
import { startNotifier, type Notifier } from '../notifier/index.js';
import type { Component } from './lifecycle.js';
import type { Stage } from './stage.js';

/** Delivers incident changes (work a previous run left in the outbox first). */
export class NotifierRole implements Component {
  readonly name = 'notifier';
  private notifier?: Notifier;
  private unsubscribe?: () => Promise<void>;

  constructor(private readonly s: Stage) {}

  start(): void {
    const { s } = this;
    const notifier = startNotifier({ config: s.config.notifier, store: s.store, logger: s.logger, registry: s.metrics.registry });
    this.notifier = notifier;
    this.unsubscribe = s.bus.subscribe(s.topics.incidents, 'notifier', (batch) => notifier.handle(batch.map((m) => m.value)));
  }

  async stop(): Promise<void> {
    await this.unsubscribe?.();
    await this.notifier?.stop();
  }
}
