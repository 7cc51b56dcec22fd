/**
 * Lifecycle commands in distributed mode: checked against the API's copy of the incident (404/409
 * at once), then sent on the signals topic keyed by the incident's actor, so the correlator that
 * owns the actor's partition applies it in order with the signals; answered when the new version
 * comes back on the incidents topic.
 */
import { KubevigilError } from '../../correlator/errors.js';
import type { Incident, IncidentStatus } from '../../correlator/incident.js';
import { InvalidTransitionError, TRANSITIONS } from '../../correlator/incidents.js';
import type { Bus } from '../bus/bus.js';
import type { IncidentCommand } from '../bus/topics.js';
import type { IncidentCommands } from '../correlate.js';
import type { IncidentStore } from '../store/store.js';
import type { Topics } from './stage.js';

/** {@link IncidentCommands} over the bus, for API processes without the correlator. */
export class BusCommands implements IncidentCommands {
  private readonly waiters = new Map<string, { to: IncidentStatus; resolve: (i: Incident) => void }>();

  constructor(
    private readonly bus: Bus,
    private readonly t: Topics,
    private readonly store: IncidentStore,
    private readonly timeoutMs = 10_000,
  ) {}

  /** Called with every incident version the API role receives. */
  seen(incidents: Incident[]): void {
    for (const i of incidents) {
      const w = this.waiters.get(i.id);
      if (w && i.status === w.to) {
        this.waiters.delete(i.id);
        w.resolve(i);
      }
    }
  }

  async transition(id: string, to: IncidentStatus, note: string, by?: string): Promise<Incident | undefined> {
    const current = await this.store.get(id);
    if (!current) return undefined;
    // The correlator applies the same table; checking here answers 409 at once instead of after a timeout.
    if (!TRANSITIONS[current.status].includes(to)) throw new InvalidTransitionError(current.status, to);
    const done = new Promise<Incident>((resolve) => this.waiters.set(id, { to, resolve }));
    const cmd: IncidentCommand = { command: 'transition', incidentId: id, to, note, ...(by ? { by } : {}) };
    await this.bus.publish(this.t.signals, [{ key: current.actor.key, value: cmd }]);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.waiters.delete(id);
        reject(
          new KubevigilError(
            'COMMAND_PENDING',
            `the correlator did not confirm within ${this.timeoutMs / 1000}s; the command is queued and will apply`,
            true,
            5,
          ),
        );
      }, this.timeoutMs);
    });
    try {
      return await Promise.race([done, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
