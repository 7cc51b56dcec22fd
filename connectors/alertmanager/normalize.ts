/**
 * One Alertmanager alert → {@link SourceEvent}. Alerts name no actor; their labels do by convention
 * (Istio's `source_*`, kube-state-metrics' `namespace`/`pod`, a service-account label, the scrape
 * `instance`), tried in a configurable order, so an alert about a workload lands on the same entity
 * key as the audit events and mesh logs about it. The key is (fingerprint, startsAt, status): the
 * same alert re-sent by an HA pair or on repeat_interval has the same key, its resolution a new one.
 */
import { isIP } from 'node:net';
import { actorFromIp, actorFromPod, actorFromSpiffe, actorFromUsername, ipKey, nsKey, podKey, saKey, userKey, type Actor } from '../../correlator/entities.js';
import { actorFields } from '../../correlator/detection/fields.js';
import type { EventDetails, SourceEvent, SourceSchema } from '../../correlator/detection/source-event.js';
import { boundedRedactedCopy, truncate } from '../../correlator/redact.js';
import type { Outcome, Target } from '../../correlator/signal.js';
import { alertTime, type AlertGroup, type AlertmanagerAlert } from './parse.js';

/** An alert with the group it was delivered in: the `raw` of an alert source event, what rule paths resolve against. */
export interface AlertRecord extends AlertmanagerAlert {
  group: AlertGroup;
}

/** The label conventions that can name an alert's actor. */
export const ACTOR_CONVENTIONS = ['istio-source', 'pod', 'service-account', 'instance'] as const;

/** One label convention for the actor (see {@link ACTOR_CONVENTIONS}). */
export type ActorConvention = (typeof ACTOR_CONVENTIONS)[number];

/** The order tried when none is configured: the most specific identity first. */
export const DEFAULT_ACTOR_CONVENTIONS: readonly ActorConvention[] = ACTOR_CONVENTIONS;

/** How alerts are normalized. */
export interface AlertNormalizeOptions {
  /** Conventions tried in order; the first that finds its labels names the actor. */
  actorConventions?: readonly ActorConvention[];
}

/** Whose labels named the actor. */
interface ActorMatch {
  actor: Actor;
  labels: string[];
}

type Labels = Record<string, string>;

// Istio fills labels it cannot determine with "unknown"; such a label names nobody.
const known = (v: string | undefined): v is string => v !== undefined && v !== '' && v !== 'unknown';

function pair(l: Labels, names: readonly (readonly [string, string])[]): [string, string, string, string] | undefined {
  for (const [a, b] of names) if (known(l[a]) && known(l[b])) return [a, b, l[a], l[b]];
  return undefined;
}

const POD_LABELS = [
  ['namespace', 'pod'],
  ['exported_namespace', 'exported_pod'],
  // A workload without its pod (Linkerd's `deployment`, kube-state-metrics' `deployment`, a
  // `workload` label): the pod-style key the cluster inventory resolves to its service account.
  ['namespace', 'deployment'],
  ['namespace', 'statefulset'],
  ['namespace', 'daemonset'],
  ['namespace', 'workload'],
] as const;

/** Instance labels are `host:port`, `[v6]:port` or a bare address; only addresses name an actor. */
export function instanceAddress(instance: string): string | undefined {
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(instance);
  if (v6) return isIP(v6[1]!) === 6 ? v6[1] : undefined;
  if (isIP(instance)) return instance;
  const i = instance.lastIndexOf(':');
  const host = i > 0 ? instance.slice(0, i) : instance;
  return isIP(host) === 4 ? host : undefined;
}

/** Each convention: the actor its labels name, or undefined when its labels are absent. */
const CONVENTIONS: Record<ActorConvention, (l: Labels) => ActorMatch | undefined> = {
  'istio-source': (l) => {
    if (known(l.source_principal)) {
      const sa = actorFromSpiffe(l.source_principal);
      if (sa) return { actor: sa, labels: ['source_principal'] };
    }
    const p = pair(l, [['source_workload_namespace', 'source_workload']]);
    // A workload is not a pod, but the pod-style key is what identity resolution and merging expect.
    return p && { actor: actorFromPod(p[2], p[3]), labels: [p[1], p[0]] };
  },
  pod: (l) => {
    const p = pair(l, POD_LABELS);
    return p && { actor: actorFromPod(p[2], p[3]), labels: [p[0], p[1]] };
  },
  'service-account': (l) => {
    for (const name of ['service_account', 'serviceaccount']) {
      const sa = l[name];
      if (!known(sa)) continue;
      if (sa.startsWith('system:serviceaccount:')) {
        const a = actorFromUsername(sa);
        if (a.type === 'serviceaccount') return { actor: a, labels: [name] };
      }
      if (known(l.namespace))
        return {
          actor: { key: saKey(l.namespace, sa), type: 'serviceaccount', name: `system:serviceaccount:${l.namespace}:${sa}`, namespace: l.namespace },
          labels: [name, 'namespace'],
        };
    }
    return undefined;
  },
  instance: (l) => {
    const addr = l.instance ? instanceAddress(l.instance) : undefined;
    return addr ? { actor: actorFromIp(addr), labels: ['instance'] } : undefined;
  },
};

/** Parses a comma-separated convention list (e.g. from an environment variable); problems name the bad entries. */
export function parseActorConventions(text: string): { conventions: ActorConvention[]; problems: string[] } {
  const conventions: ActorConvention[] = [];
  const problems: string[] = [];
  for (const part of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    if ((ACTOR_CONVENTIONS as readonly string[]).includes(part)) {
      if (!conventions.includes(part as ActorConvention)) conventions.push(part as ActorConvention);
    } else problems.push(`unknown actor convention "${part.slice(0, 40)}"; use a comma-separated list of ${ACTOR_CONVENTIONS.join(', ')}`);
  }
  if (conventions.length === 0 && problems.length === 0)
    problems.push(`no actor convention given; use a comma-separated list of ${ACTOR_CONVENTIONS.join(', ')}`);
  return { conventions, problems };
}

/** The actor an alert's labels name, trying the conventions in order; else `user:alertmanager/<alertname>`. */
export function actorOfAlert(labels: Labels, conventions: readonly ActorConvention[] = DEFAULT_ACTOR_CONVENTIONS): ActorMatch {
  for (const c of conventions) {
    const m = CONVENTIONS[c](labels);
    if (m) return m;
  }
  const name = `alertmanager/${labels.alertname || 'unnamed'}`;
  return { actor: { key: userKey(name), type: 'user', name }, labels: [] };
}

/** What an alert is about: Istio's destination workload, else the namespace and pod labels. */
export function targetOfAlert(l: Labels): Target {
  const dest = pair(l, [['destination_workload_namespace', 'destination_workload']]);
  if (dest) return { namespace: dest[2], resource: 'workloads', name: dest[3] };
  const pod = pair(l, POD_LABELS);
  if (pod) return { namespace: pod[2], resource: 'pods', name: pod[3] };
  const ns = [l.namespace, l.exported_namespace, l.destination_workload_namespace, l.destination_service_namespace].find(known);
  return ns ? { namespace: ns } : {};
}

const AUTH_CODES = new Set(['401', '403']);
const CODE_LABELS = ['code', 'response_code', 'status_code'] as const;

/** The 401/403 code an alert's labels carry, if any. */
function authCode(l: Labels): string | undefined {
  for (const k of CODE_LABELS) if (l[k] !== undefined && AUTH_CODES.has(l[k])) return l[k];
  return undefined;
}

const FAILURE_NAME = /fail|denied|forbidden|unauthori[sz]ed|reject/i;

/**
 * Computed fields of one alert, reachable from rules by their top-level name (see
 * {@link ALERTMANAGER_SCHEMA}). Getters compute on first use and cache.
 */
export class AlertDerived {
  private _actor?: ActorMatch;
  private _target?: Target;

  constructor(
    private readonly alert: AlertRecord,
    private readonly conventions: readonly ActorConvention[],
  ) {}

  /** `labels.alertname` ('' when absent). */
  get alertname(): string {
    return this.alert.labels.alertname ?? '';
  }

  /** True while the alert fires; false once resolved. */
  get firing(): boolean {
    return this.alert.status === 'firing';
  }

  /** The `severity` label, lower-cased (`none` when absent), so rules compare without caring about case. */
  get alertSeverity(): string {
    return this.alert.labels.severity?.toLowerCase() || 'none';
  }

  /** Who the alert is about, by label convention. */
  get actor(): Actor {
    return this.match.actor;
  }

  /** The labels that named the actor (empty for the `user:alertmanager/<alertname>` fallback). */
  get actorLabels(): string[] {
    return this.match.labels;
  }

  /** What the alert is about: destination workload, pod or namespace. */
  get target(): Target {
    return (this._target ??= targetOfAlert(this.alert.labels));
  }

  /** The target as one readable string, for rule outputs. */
  get targetText(): string {
    const t = this.target;
    return t.namespace && t.name ? `${t.namespace}/${t.name}` : (t.namespace ?? t.name ?? 'no target');
  }

  /** The `summary` annotation (else `description`, `message`, the alert name), bounded. */
  get summary(): string {
    const a = this.alert.annotations;
    return truncate(a.summary || a.description || a.message || this.alertname || 'alert', 200);
  }

  /** A 401/403 the alert's `code` / `response_code` / `status_code` label carries. */
  get authCode(): string | undefined {
    return authCode(this.alert.labels);
  }

  private get match(): ActorMatch {
    return (this._actor ??= actorOfAlert(this.alert.labels, this.conventions));
  }
}

/** The alert source as detection sees it: derived roots; rules are indexed on the alert's status. */
export const ALERTMANAGER_SCHEMA: SourceSchema = {
  name: 'alertmanager',
  derived: ['alertname', 'firing', 'alertSeverity', 'actor', 'actorLabels', 'target', 'targetText', 'summary', 'authCode'],
  indexField: 'status',
  fields: [
    { name: 'status', type: 'string', description: '`firing` or `resolved`.' },
    { name: 'labels.*', type: 'string', description: 'The alert’s labels, e.g. `labels.alertname`, `labels.namespace`, `labels.source_workload`.' },
    { name: 'annotations.*', type: 'string', description: 'The alert’s annotations, e.g. `annotations.summary`.' },
    { name: 'startsAt', type: 'string', description: 'When the alert started firing (RFC 3339).' },
    { name: 'endsAt', type: 'string', description: 'When it resolved (RFC 3339); Go’s zero time while firing.' },
    { name: 'generatorURL', type: 'string', description: 'Link to the expression that raised the alert.' },
    { name: 'fingerprint', type: 'string', description: 'Alertmanager’s fingerprint of the label set.' },
    { name: 'group.receiver', type: 'string', description: 'Receiver the notification was sent to.' },
    { name: 'group.status', type: 'string', description: 'Status of the notification group: `firing` or `resolved`.' },
    { name: 'group.groupLabels.*', type: 'string', description: 'Labels the group is keyed on.' },
    { name: 'group.commonLabels.*', type: 'string', description: 'Labels every alert of the group shares.' },
    { name: 'group.commonAnnotations.*', type: 'string', description: 'Annotations every alert of the group shares.' },
    { name: 'group.externalURL', type: 'string', description: 'Alertmanager’s external URL.' },
    { name: 'group.version', type: 'string', description: 'Webhook payload version.' },
    { name: 'group.groupKey', type: 'string', description: 'Key of the notification group.' },
    { name: 'group.truncatedAlerts', type: 'number', description: 'Alerts left out of the notification by `max_alerts`.' },
    { name: 'alertname', type: 'string', description: '`labels.alertname`, empty when absent.' },
    { name: 'firing', type: 'boolean', description: 'The alert fires (false once resolved).' },
    { name: 'alertSeverity', type: 'string', description: 'The `severity` label lower-cased; `none` when absent.' },
    ...actorFields('who the alert is about, by label convention (else `user:alertmanager/<alertname>`)'),
    { name: 'actorLabels', type: 'string[]', description: 'The labels that named the actor; empty for the fallback.' },
    { name: 'target.namespace', type: 'string', description: 'Namespace the alert is about (destination workload, pod or namespace labels).' },
    { name: 'target.resource', type: 'string', description: '`workloads` or `pods` when the labels name one.' },
    { name: 'target.name', type: 'string', description: 'Destination workload or pod name.' },
    { name: 'targetText', type: 'string', description: 'The target as `namespace/name` (or `no target`), for outputs.' },
    { name: 'summary', type: 'string', description: 'The `summary` annotation, else `description`, `message` or the alert name; bounded.' },
    { name: 'authCode', type: 'string', description: '`401` or `403` from the `code`, `response_code` or `status_code` label.' },
  ],
};

/** The deduplication key of an alert delivery: (fingerprint, startsAt, status). */
export function alertKey(a: AlertmanagerAlert): string {
  return `${a.fingerprint}/${a.startsAt}/${a.status}`;
}

/** Normalizes one validated alert delivered in `group`. `observedTime` is when kubevigil received it. */
export function normalizeAlert(alert: AlertmanagerAlert, group: AlertGroup, observedTime: number, opts: AlertNormalizeOptions = {}): AlertSourceEvent {
  return new AlertSourceEvent({ ...alert, group }, observedTime, opts.actorConventions ?? DEFAULT_ACTOR_CONVENTIONS);
}

/** An alert as detection sees it; details are computed only for alerts a rule matched. */
export class AlertSourceEvent implements SourceEvent {
  readonly source = 'alertmanager' as const;
  readonly final = true;
  readonly derived: AlertDerived;
  readonly key: string;
  private _details?: EventDetails;

  constructor(
    readonly raw: AlertRecord,
    readonly observedTime: number,
    conventions: readonly ActorConvention[],
  ) {
    this.derived = new AlertDerived(raw, conventions);
    this.key = alertKey(raw);
  }

  details(): EventDetails {
    return (this._details ??= alertDetails(this.raw, this.derived, this.observedTime));
  }
}

function alertDetails(a: AlertRecord, d: AlertDerived, observedTime: number): EventDetails {
  const l = a.labels;
  const actor = d.actor;
  const target = d.target;
  // A resolution happened when it ended; a firing alert when it started.
  const time = (a.status === 'resolved' ? alertTime(a.endsAt) : undefined) ?? alertTime(a.startsAt) ?? observedTime;

  const entities = new Set<string>();
  if (target.namespace) entities.add(nsKey(target.namespace));
  if (actor.namespace) entities.add(nsKey(actor.namespace));
  const pod = pair(l, POD_LABELS);
  if (pod) entities.add(podKey(pod[2], pod[3]));
  const addr = l.instance ? instanceAddress(l.instance) : undefined;
  if (addr) entities.add(ipKey(addr));
  entities.delete(actor.key);

  const attributes: Record<string, string> = {
    alertname: d.alertname,
    fingerprint: a.fingerprint,
    status: a.status,
    alertSeverity: d.alertSeverity,
    startsAt: a.startsAt,
  };
  if (a.status === 'resolved' && alertTime(a.endsAt) !== undefined) attributes.endsAt = a.endsAt;
  const dest = pair(l, [['destination_workload_namespace', 'destination_workload']]);
  if (dest) {
    attributes.destinationNamespace = dest[2];
    attributes.destinationWorkload = dest[3];
  } else if (target.namespace) attributes.destinationNamespace = target.namespace;
  if (known(l.source_workload)) attributes.sourceWorkload = l.source_workload;
  if (known(l.source_workload_namespace)) attributes.sourceNamespace = l.source_workload_namespace;
  if (d.actorLabels.length) attributes.actorLabels = d.actorLabels.join(',');
  if (a.group.receiver) attributes.receiver = a.group.receiver;
  if (a.generatorURL) attributes.generatorURL = truncate(a.generatorURL, 512);

  let outcome: Outcome = 'unknown';
  if (a.status === 'firing' && (d.authCode !== undefined || (known(l.response_flags) && l.response_flags !== '-') || FAILURE_NAME.test(d.alertname)))
    outcome = 'denied';

  const excerpt = boundedRedactedCopy({
    status: a.status,
    labels: a.labels,
    annotations: a.annotations,
    startsAt: a.startsAt,
    endsAt: a.endsAt,
    generatorURL: a.generatorURL,
    fingerprint: a.fingerprint,
    receiver: a.group.receiver,
    groupKey: a.group.groupKey,
    externalURL: a.group.externalURL,
  }) as Record<string, unknown>;
  return { time, actor, target, outcome, entities: [...entities], attributes, excerpt };
}
