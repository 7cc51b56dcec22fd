/**
 * Incidents as Alertmanager alerts (POST /api/v2/alerts), so the routing a team already has
 * (PagerDuty, Opsgenie, e-mail) applies. One alert per incident, labelled alertname=KubevigilIncident,
 * severity, namespace, actor, incident_id and, when named, cluster. Alertmanager ends an alert that is not re-sent at its
 * `endsAt`; an open incident's alert is given a far `endsAt` and ended when the incident resolves.
 */
import type { Incident } from '../../correlator/incident.js';
import type { Severity } from '../../correlator/severity.js';
import { post } from './http.js';
import { incidentUrl } from './slack/format.js';
import { newestPerIncident, outcomeOf, type Claimed, type DeliveryContext, type DeliveryResult, type Outcome, type Sink } from './sink.js';
import { urlId } from './webhook/sink.js';

/** The alertname of every kubevigil alert. */
export const ALERT_NAME = 'KubevigilIncident';

/** How long an open incident's alert lasts without news; a resolution ends it sooner. */
const OPEN_ALERT_TTL_MS = 24 * 3_600_000;

/** One alert in the shape of Alertmanager's API v2 `postableAlert`. */
export interface PostableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL?: string;
}

function labels(inc: Incident, severity: Severity): Record<string, string> {
  return {
    alertname: ALERT_NAME,
    severity,
    namespace: inc.actor.namespace ?? inc.blastRadius.namespaces[0] ?? '',
    actor: inc.actor.key,
    incident_id: inc.id,
    ...(inc.cluster ? { cluster: inc.cluster } : {}),
  };
}

/** The alerts for one incident change: the incident's, and the end of the one under its old severity (labels name an alert). */
export function alertsFor(inc: Incident, previousSeverity: Severity | undefined, now: number, apiBaseUrl?: string): PostableAlert[] {
  const resolved = inc.status === 'resolved';
  const alert: PostableAlert = {
    labels: labels(inc, inc.severity),
    annotations: {
      summary: inc.title,
      description: inc.rootCause.summary,
      namespaces: inc.blastRadius.namespaces.join(', '),
      signals: String(inc.signalCount),
      remediations: inc.remediations.map((r) => r.title).join('; '),
      status: inc.status,
    },
    startsAt: new Date(inc.firstSeen).toISOString(),
    endsAt: new Date(resolved ? (inc.resolvedAt ?? now) : now + OPEN_ALERT_TTL_MS).toISOString(),
    ...(apiBaseUrl ? { generatorURL: incidentUrl(apiBaseUrl, inc.id) } : {}),
  };
  const alerts = [alert];
  if (previousSeverity && previousSeverity !== inc.severity)
    alerts.push({ ...alert, labels: labels(inc, previousSeverity), endsAt: new Date(now).toISOString() });
  return alerts;
}

/** Incidents to one Alertmanager. */
export class AlertmanagerSink implements Sink {
  readonly kind = 'alertmanager' as const;
  readonly id: string;
  readonly lane: string;
  readonly minIntervalMs = 0;

  constructor(
    private readonly baseUrl: string,
    private readonly timeoutMs: number,
    private readonly apiBaseUrl?: string,
  ) {
    this.id = `alertmanager:${urlId(baseUrl)}`;
    this.lane = this.id;
  }

  wants(_inc: Incident): boolean {
    return true;
  }

  async deliver(items: Claimed[], ctx: DeliveryContext): Promise<DeliveryResult> {
    const outcomes = new Map<number, Outcome>();
    const { latest, superseded } = newestPerIncident(items);
    for (const s of superseded) outcomes.set(s.seq, { status: 'done', note: 'superseded' });
    if (latest.length === 0) return { outcomes, requests: 0 };
    const now = ctx.now();
    const alerts = latest.flatMap((i) => alertsFor(i.notification.incident, i.notification.change.severity?.from, now, this.apiBaseUrl));
    try {
      await post(
        `Alertmanager ${this.id}`,
        `${this.baseUrl.replace(/\/+$/, '')}/api/v2/alerts`,
        JSON.stringify(alerts),
        {},
        { timeoutMs: this.timeoutMs, now },
      );
      ctx.metrics.sent.inc({ sink: this.kind, kind: 'alert' });
      for (const i of latest) outcomes.set(i.seq, { status: 'done' });
    } catch (err) {
      for (const i of latest) outcomes.set(i.seq, outcomeOf(err));
    }
    return { outcomes, requests: 1 };
  }
}
