/**
 * The API role: keeps what the HTTP API serves up to date. It reads the incidents topic (into its
 * own store in distributed mode, where each API replica has a consumer group of its own) and feeds
 * the event stream; it reads the signals topic a second time for GET /api/v1/signals, which a
 * correlator or ingest process does not pay for.
 */
import { isCommand } from '../bus/topics.js';
import type { IncidentCommands } from '../correlate.js';
import type { RecentSignals } from '../recent-signals.js';
import { BusCommands } from './bus-commands.js';
import type { Component } from './lifecycle.js';
import type { Stage } from './stage.js';

/** Subscriptions behind the API's incidents, event stream and recent signals. */
export class ApiRole implements Component {
  readonly name = 'api';
  /** Lifecycle commands: the embedded correlator, or sent over the bus to the distributed ones. */
  readonly commands?: IncidentCommands;
  private readonly busCommands?: BusCommands;
  private readonly unsubscribes: (() => Promise<void>)[] = [];

  constructor(
    private readonly s: Stage,
    private readonly recent: RecentSignals,
    /** The embedded correlator, which applies commands itself. */
    correlator?: IncidentCommands,
  ) {
    if (s.distributed) this.busCommands = new BusCommands(s.bus, s.topics, s.store);
    this.commands = this.busCommands ?? correlator;
  }

  start(): void {
    const { s } = this;
    // Embedded, the store is the correlator's; distributed, every API replica reads all incidents
    // into its own store, in a group of its own that is deleted when it stops.
    this.unsubscribes.push(
      s.bus.subscribe(
        s.topics.incidents,
        s.distributed ? `api-${s.instance}` : 'api-stream',
        async (batch) => {
          const incidents = batch.map((m) => m.value);
          if (s.distributed) await s.store.upsert(incidents);
          this.busCommands?.seen(incidents);
          s.stream.publish(incidents);
        },
        { ephemeral: s.distributed },
      ),
    );
    this.unsubscribes.push(
      s.bus.subscribe(
        s.topics.signals,
        s.distributed ? `recent-${s.instance}` : 'recent',
        async (batch) => {
          this.recent.add(batch.flatMap((m) => (isCommand(m.value) ? [] : [m.value])));
        },
        { ephemeral: s.distributed },
      ),
    );
  }

  async stop(): Promise<void> {
    for (const unsubscribe of this.unsubscribes.splice(0).reverse()) await unsubscribe();
  }
}
