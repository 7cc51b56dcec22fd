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
  /** Per incident, the commands waiting for the version that shows them applied. */
  private readonly waiters = new Map<string, { done: (i: Incident) => boolean; resolve: (i: Incident) => void }[]>();

  constructor(
    private readonly bus: Bus,
    private readonly t: Topics,
    private readonly store: IncidentStore,
    private readonly timeoutMs = 10_000,
  ) {}

  /** Called with every incident version the API role receives. */
  seen(incidents: Incident[]): void {
    for (const i of incidents) {
      const ws = this.waiters.get(i.id);
      if (!ws) continue;
      const left = ws.filter((w) => !w.done(i));
      if (left.length) this.waiters.set(i.id, left);
      else this.waiters.delete(i.id);
      for (const w of ws) if (!left.includes(w)) w.resolve(i);
    }
  }

  async transition(id: string, to: IncidentStatus, note: string, by?: string): Promise<Incident | undefined> {
    const current = await this.store.get(id);
    if (!current) return undefined;
    // The correlator applies the same table; checking here answers 409 at once instead of after a timeout.
    if (!TRANSITIONS[current.status].includes(to)) throw new InvalidTransitionError(current.status, to);
    return this.send(current, { command: 'transition', incidentId: id, to, note, ...(by ? { by } : {}) }, (i) => i.status === to);
  }

  async assign(id: string, assignee: string): Promise<Incident | undefined> {
    const current = await this.store.get(id);
    if (!current) return undefined;
    // The correlator changes nothing here either (IncidentManager.assign): answer at once.
    if (current.status === 'resolved' || current.assignee === assignee) return current;
    return this.send(current, { command: 'assign', incidentId: id, assignee }, (i) => i.assignee === assignee || i.status === 'resolved');
  }

  /** Sends a command keyed by the incident's actor and waits for the version for which `done` holds. */
  private async send(current: Incident, cmd: IncidentCommand, done: (i: Incident) => boolean): Promise<Incident> {
    const id = current.id;
    let waiter: { done: (i: Incident) => boolean; resolve: (i: Incident) => void } | undefined;
    const applied = new Promise<Incident>((resolve) => {
      waiter = { done, resolve };
      this.waiters.set(id, [...(this.waiters.get(id) ?? []), waiter]);
    });
    const forget = () => {
      const left = (this.waiters.get(id) ?? []).filter((w) => w !== waiter);
      if (left.length) this.waiters.set(id, left);
      else this.waiters.delete(id);
    };
    let timer: NodeJS.Timeout | undefined;
    try {
      await this.bus.publish(this.t.signals, [{ key: current.actor.key, value: cmd }]);
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          forget();
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
      return await Promise.race([applied, timeout]);
    } catch (e) {
      forget();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }
}
