/**
 * What the roles of one process share: its configuration, metrics, bus, store and the incident
 * event stream. Built by `serve()` once the infrastructure components have started.
 */
import type { Incident } from '../../correlator/incident.js';
import type { Clock } from '../../correlator/ports.js';
import type { ClusterInventory } from '../../correlator/inventory.js';
import type { IncidentStream } from '../api/stream.js';
import type { Bus } from '../bus/bus.js';
import type { KafkaBus } from '../bus/kafka.js';
import type { topics } from '../bus/topics.js';
import type { Config } from '../config.js';
import type { Logger } from '../logging.js';
import type { Metrics } from '../metrics.js';
import type { LoadedRules } from '../rules.js';
import type { IncidentStore } from '../store/store.js';
import type { UsageProfiler } from '../usage.js';
import type { Silences } from '../silences.js';

/** The topics of this deployment (prefixed). */
export type Topics = ReturnType<typeof topics>;

/** The shared parts every role is built from. */
export interface Stage {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly rules: LoadedRules;
  readonly topics: Topics;
  readonly bus: Bus;
  /** The Kafka bus in distributed mode (the same object as `bus`). */
  readonly kafka?: KafkaBus;
  readonly distributed: boolean;
  /** Incidents: the correlator's in embedded mode, the API role's copy of the incidents topic otherwise. */
  readonly store: IncidentStore;
  /** Incident changes for the API's event-stream listeners. */
  readonly stream: IncidentStream;
  /** Permission use per identity, fed by ingest and read by remediation plans. */
  readonly usage: UsageProfiler;
  /** A name of this process alone, for consumer groups that are deleted when it stops. */
  readonly instance: string;
  /** The live cluster (KUBEVIGIL_INVENTORY); absent when off. */
  readonly inventory?: ClusterInventory;
  /** Silences (services/silences.ts); absent in distributed mode without REDIS_URL. */
  readonly silences?: Silences;
}

/** Publishes changed incidents on the incidents topic, keyed by incident id. */
export function incidentPublisher(s: Pick<Stage, 'bus' | 'topics'>): (incidents: Incident[]) => Promise<void> {
  return (incidents) =>
    s.bus.publish(
      s.topics.incidents,
      incidents.map((i) => ({ key: i.id, value: i })),
    );
}
