/**
 * Loki log entry → {@link SourceEvent}. The raw event is the entry as Loki holds it
 * (`{line, labels, metadata, tenant, time}`); the derived fields are what the mesh and admission
 * parsers make of the line (`mesh`, `gatekeeper`, `format`), who acted (`actor`) and the pod that
 * wrote it (`emitter`). The line is parsed once, on first use; `details()` runs only for matches.
 */
import { createHash } from 'node:crypto';
import { actorFields } from '../../correlator/detection/fields.js';
import type { EventDetails, SourceEvent, SourceSchema } from '../../correlator/detection/source-event.js';
import { actorFromIp, actorFromPod, actorFromUsername, ipKey, nsKey, podKey, policyKey, type Actor } from '../../correlator/entities.js';
import { boundedRedactedCopy, redactText, truncate } from '../../correlator/redact.js';
import type { Outcome, Target } from '../../correlator/signal.js';
import { emitterFromLabels, type Emitter, type MeshPeer } from '../mesh/identity.js';
import type { GatekeeperDecision } from '../mesh/gatekeeper.js';
import { parseLogLine, type ParsedLine } from '../mesh/parse.js';
import type { AccessLogRecord } from '../mesh/record.js';
import { formatLabelSet } from './labels.js';
import type { LokiEntry } from './push.js';

/** The Loki source as detection sees it: rules reach `line`, `labels.*`, `metadata.*`, `tenant` raw and these derived roots. */
export const LOKI_SCHEMA: SourceSchema = {
  name: 'loki',
  derived: ['format', 'mesh', 'gatekeeper', 'actor', 'emitter'],
  fields: [
    { name: 'line', type: 'string', description: 'The log line as sent.' },
    { name: 'labels.*', type: 'string', description: 'Stream labels, e.g. `labels.namespace`, `labels.pod`, `labels.container`.' },
    { name: 'metadata.*', type: 'string', description: 'Structured metadata of the entry (Loki 3).' },
    { name: 'tenant', type: 'string', description: 'Loki tenant (`X-Scope-OrgID`); `fake` when none was given.' },
    { name: 'time', type: 'string', description: 'Entry time, nanoseconds since the epoch as a decimal string.' },
    { name: 'format', type: 'string', description: 'What the line was recognized as: `istio`, `envoy`, `linkerd`, `gatekeeper`; absent when not understood.' },
    { name: 'mesh.kind', type: 'string', description: 'Mesh proxy access log: `istio`, `envoy` or `linkerd`.' },
    { name: 'mesh.format', type: 'string', description: '`text` or `json` access log line.' },
    { name: 'mesh.reporter', type: 'string', description: 'Proxy that wrote the line: `source`, `destination`, `gateway` or `proxy`.' },
    { name: 'mesh.direction', type: 'string', description: '`inbound`, `outbound` or `unknown`.' },
    { name: 'mesh.tcp', type: 'boolean', description: 'A connection-level (TCP) line rather than an HTTP request.' },
    { name: 'mesh.startTime', type: 'number', description: 'Time written in the line, ms since the epoch (absent for Linkerd).' },
    { name: 'mesh.method', type: 'string', description: 'HTTP method.' },
    { name: 'mesh.path', type: 'string', description: 'HTTP path.' },
    { name: 'mesh.protocol', type: 'string', description: 'Protocol, e.g. `HTTP/1.1`.' },
    { name: 'mesh.authority', type: 'string', description: 'HTTP authority (host).' },
    { name: 'mesh.userAgent', type: 'string', description: 'User agent.' },
    { name: 'mesh.requestId', type: 'string', description: 'Request id (`x-request-id`).' },
    { name: 'mesh.responseCode', type: 'number', description: 'HTTP status; 0 when no response was sent.' },
    { name: 'mesh.responseFlags', type: 'string[]', description: 'Envoy response flags (`UF`, `URX`, `NR`…).' },
    { name: 'mesh.responseCodeDetails', type: 'string', description: 'Envoy response code details, e.g. `rbac_access_denied_matched_policy[none]`.' },
    { name: 'mesh.connectionTerminationDetails', type: 'string', description: 'Envoy connection termination details.' },
    { name: 'mesh.upstreamTransportFailureReason', type: 'string', description: 'Why the upstream connection failed (often a TLS error).' },
    { name: 'mesh.upstreamCluster', type: 'string', description: 'Envoy upstream cluster.' },
    { name: 'mesh.malformed', type: 'boolean', description: 'Quotes in client-controlled fields broke a text line; the addresses after them were dropped.' },
    { name: 'mesh.forwardedFor', type: 'string[]', description: 'X-Forwarded-For as sent by the client (informative, never used for attribution).' },
    { name: 'mesh.mtlsFailure', type: 'boolean', description: 'The connection failed mutual TLS.' },
    { name: 'mesh.tlsSide', type: 'string', description: '`server` (refused a client) or `client` (refused a server).' },
    { name: 'mesh.tlsReason', type: 'string', description: 'Short TLS failure reason (`filter_chain_not_found`, `CERTIFICATE_VERIFY_FAILED`…).' },
    { name: 'mesh.authzDenied', type: 'boolean', description: 'A mesh authorization policy refused the call.' },
    { name: 'mesh.authzEngine', type: 'string', description: '`rbac`, `ext_authz` or `linkerd`.' },
    { name: 'mesh.policy', type: 'string', description: 'The policy that denied (`<ns>/<name>`, `none`, or a Linkerd server).' },
    { name: 'mesh.policyRule', type: 'number', description: 'Index of the matched rule in an Istio AuthorizationPolicy.' },
    { name: 'mesh.authFailed', type: 'boolean', description: 'A 401/403 answered by the application itself.' },
    ...(['source', 'destination'] as const).flatMap((side) => [
      { name: `mesh.${side}.ip`, type: 'string' as const, description: `IP of the ${side}.` },
      { name: `mesh.${side}.port`, type: 'number' as const, description: `Port of the ${side}.` },
      { name: `mesh.${side}.pod`, type: 'string' as const, description: `Pod of the ${side} (known only for the pod that wrote the line).` },
      { name: `mesh.${side}.workload`, type: 'string' as const, description: `Workload (app or service) of the ${side}.` },
      { name: `mesh.${side}.namespace`, type: 'string' as const, description: `Namespace of the ${side}.` },
      { name: `mesh.${side}.host`, type: 'string' as const, description: `Host name of the ${side} when it is not a cluster service.` },
      { name: `mesh.${side}.principal`, type: 'string' as const, description: `Identity of the ${side} as logged (SPIFFE or Linkerd).` },
      {
        name: `mesh.${side}.serviceAccount.namespace`,
        type: 'string' as const,
        description: `Namespace of the service account the ${side}’s principal names.`,
      },
      { name: `mesh.${side}.serviceAccount.name`, type: 'string' as const, description: `Name of that service account.` },
    ]),
    { name: 'mesh.level', type: 'string', description: 'Linkerd log level.' },
    { name: 'mesh.message', type: 'string', description: 'Linkerd message before its fields.' },
    { name: 'mesh.error', type: 'string', description: 'Linkerd `error=` field.' },
    { name: 'gatekeeper.process', type: 'string', description: 'Gatekeeper decision: `admission` (a request) or `audit` (an existing object).' },
    { name: 'gatekeeper.action', type: 'string', description: '`deny`, `warn` or `dryrun`.' },
    { name: 'gatekeeper.denied', type: 'boolean', description: 'The request was refused.' },
    { name: 'gatekeeper.constraint.name', type: 'string', description: 'Name of the constraint.' },
    { name: 'gatekeeper.constraint.kind', type: 'string', description: 'Kind of the constraint (its template).' },
    { name: 'gatekeeper.constraint.group', type: 'string', description: 'API group of the constraint.' },
    { name: 'gatekeeper.constraint.apiVersion', type: 'string', description: 'API version of the constraint.' },
    { name: 'gatekeeper.resource.group', type: 'string', description: 'API group of the object.' },
    { name: 'gatekeeper.resource.apiVersion', type: 'string', description: 'API version of the object.' },
    { name: 'gatekeeper.resource.kind', type: 'string', description: 'Kind of the object, e.g. `Pod`.' },
    { name: 'gatekeeper.resource.namespace', type: 'string', description: 'Namespace of the object.' },
    { name: 'gatekeeper.resource.name', type: 'string', description: 'Name of the object.' },
    { name: 'gatekeeper.username', type: 'string', description: 'Kubernetes username that made the request.' },
    { name: 'gatekeeper.message', type: 'string', description: 'The violation message.' },
    { name: 'gatekeeper.time', type: 'number', description: 'Time of the log line, ms since the epoch.' },
    ...actorFields('who acted: the requester of an admission decision, or the caller of a mesh connection'),
    { name: 'emitter.namespace', type: 'string', description: 'Namespace of the pod that wrote the line (from stream labels).' },
    { name: 'emitter.pod', type: 'string', description: 'Pod that wrote the line.' },
    { name: 'emitter.workload', type: 'string', description: 'Workload of that pod.' },
    { name: 'emitter.container', type: 'string', description: 'Container that wrote the line.' },
    { name: 'emitter.gateway', type: 'boolean', description: 'The pod is a mesh gateway (ingress/egress).' },
  ],
};

const UNKNOWN_ACTOR: Actor = Object.freeze(actorFromIp('unknown'));

/** The actor of a mesh record: the caller's service account, else its pod, else its address. */
export function meshActor(m: AccessLogRecord): Actor {
  const s = m.source;
  if (s.serviceAccount) return actorFromUsername(`system:serviceaccount:${s.serviceAccount.namespace}:${s.serviceAccount.name}`);
  if (s.pod && s.namespace) return actorFromPod(s.namespace, s.pod);
  if (s.ip) return actorFromIp(s.ip);
  return UNKNOWN_ACTOR;
}

/** Computed fields of one Loki entry; getters parse on first use and cache. */
export class LokiDerived {
  private _parsed?: ParsedLine | null;
  private _actor?: Actor;
  private _emitter?: Emitter;

  constructor(private readonly entry: LokiEntry) {}

  /** What the line was recognized as, or undefined when kubevigil does not understand it. */
  get parsed(): ParsedLine | undefined {
    if (this._parsed === undefined) this._parsed = parseLogLine(this.entry.line, this.entry.labels) ?? null;
    return this._parsed ?? undefined;
  }

  /** `istio`, `envoy`, `linkerd`, `gatekeeper`, or undefined. */
  get format(): ParsedLine['format'] | undefined {
    return this.parsed?.format;
  }

  /** The mesh proxy record (Istio, Envoy, Linkerd). */
  get mesh(): AccessLogRecord | undefined {
    const p = this.parsed;
    return p && 'mesh' in p ? p.mesh : undefined;
  }

  /** The Gatekeeper decision. */
  get gatekeeper(): GatekeeperDecision | undefined {
    const p = this.parsed;
    return p && 'gatekeeper' in p ? p.gatekeeper : undefined;
  }

  /** Who acted: the requester of an admission decision, or the caller of a mesh connection. */
  get actor(): Actor {
    if (this._actor) return this._actor;
    const gk = this.gatekeeper;
    const mesh = this.mesh;
    this._actor = gk ? actorFromUsername(gk.username ?? 'unknown') : mesh ? meshActor(mesh) : UNKNOWN_ACTOR;
    return this._actor;
  }

  /** The pod that wrote the line, from its stream labels. */
  get emitter(): Emitter {
    return (this._emitter ??= emitterFromLabels(this.entry.labels));
  }
}

/** Nanosecond decimal string → ms since epoch. */
export function nsToMs(ns: string): number {
  return ns.length > 6 ? Number(ns.slice(0, -6)) : 0;
}

const hash = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 20);
// Entries of one stream share one frozen labels object: hash it once per stream, not per line.
const LABEL_HASHES = new WeakMap<object, string>();
function labelsHash(labels: Readonly<Record<string, string>>): string {
  let h = LABEL_HASHES.get(labels);
  if (h === undefined) LABEL_HASHES.set(labels, (h = hash(formatLabelSet(labels))));
  return h;
}

/** A Loki log entry as detection sees it. */
export class LokiSourceEvent implements SourceEvent {
  readonly source = 'loki' as const;
  readonly final = true;
  readonly derived: LokiDerived;
  private _key?: string;
  private _details?: EventDetails;

  constructor(
    readonly raw: LokiEntry,
    readonly observedTime: number,
  ) {
    this.derived = new LokiDerived(raw);
  }

  /** `<tenant>/<ns time>/<hash of the stream labels>/<hash of the line>`: Loki's own identity of an entry. */
  get key(): string {
    return (this._key ??= `${this.raw.tenant}/${this.raw.time}/${labelsHash(this.raw.labels)}/${hash(this.raw.line)}`);
  }

  /** True when the line was recognized: only those are worth running detection on. */
  get understood(): boolean {
    return this.derived.parsed !== undefined;
  }

  details(): EventDetails {
    return (this._details ??= lokiDetails(this.raw, this.derived, this.observedTime));
  }
}

/** Normalizes one entry; `observedTime` is when kubevigil received it. */
export function normalizeLokiEntry(entry: LokiEntry, observedTime: number): LokiSourceEvent {
  return new LokiSourceEvent(entry, observedTime);
}

const MAX_ATTR = 256;

function set(attrs: Record<string, string>, k: string, v: string | number | undefined): void {
  if (v !== undefined && v !== '') attrs[k] = truncate(redactText(String(v)), MAX_ATTR);
}

function peerAttrs(attrs: Record<string, string>, prefix: 'source' | 'destination', p: MeshPeer): void {
  set(attrs, `${prefix}IP`, p.ip);
  set(attrs, `${prefix}Workload`, p.workload ?? p.host);
  set(attrs, `${prefix}Namespace`, p.namespace);
  set(attrs, `${prefix}Pod`, p.pod);
  set(attrs, `${prefix}Principal`, p.principal);
}

/** `Pod` → `pods`, `NetworkPolicy` → `networkpolicies`, `Ingress` → `ingresses`. */
function resourceOfKind(kind: string): string {
  const k = kind.toLowerCase();
  if (/(s|x|ch|sh)$/.test(k)) return `${k}es`;
  if (/[^aeiou]y$/.test(k)) return `${k.slice(0, -1)}ies`;
  return `${k}s`;
}

function meshDetails(m: AccessLogRecord, actor: Actor, entities: string[], attrs: Record<string, string>): { target: Target; outcome: Outcome } {
  const d = m.destination;
  const s = m.source;
  const target: Target = {};
  if (d.namespace) target.namespace = d.namespace;
  const name = d.workload ?? d.pod ?? d.host ?? d.ip;
  if (name) target.name = name;
  const verb = m.method ?? (m.tcp ? 'connect' : undefined);
  if (verb) target.verb = verb;

  if (d.namespace) entities.push(nsKey(d.namespace));
  if (d.pod && d.namespace) entities.push(podKey(d.namespace, d.pod));
  if (d.ip) entities.push(ipKey(d.ip));
  if (s.ip && actor.key !== ipKey(s.ip)) entities.push(ipKey(s.ip));
  if (s.pod && s.namespace && actor.key !== podKey(s.namespace, s.pod)) entities.push(podKey(s.namespace, s.pod));
  if (s.pod && s.namespace) attrs.actorPod = `${s.namespace}/${s.pod}`;
  if (m.authzDenied && m.policy && m.policy !== 'none' && m.policy !== 'unknown') {
    const engine = m.kind === 'linkerd' ? 'linkerd' : 'istio';
    const policy = m.kind === 'linkerd' && d.namespace ? `${d.namespace}/${m.policy}` : m.policy;
    entities.push(policyKey(engine, policy));
  }

  set(attrs, 'meshKind', m.kind);
  set(attrs, 'reporter', m.reporter);
  peerAttrs(attrs, 'source', s);
  peerAttrs(attrs, 'destination', d);
  set(attrs, 'responseCode', m.responseCode);
  set(attrs, 'responseFlags', m.responseFlags.join(','));
  set(attrs, 'responseCodeDetails', m.responseCodeDetails);
  set(attrs, 'policy', m.policy);
  set(attrs, 'policyEngine', m.authzEngine);
  set(attrs, 'tlsReason', m.tlsReason);
  set(attrs, 'tlsSide', m.tlsSide);
  set(attrs, 'method', m.method);
  set(attrs, 'path', m.path);
  set(attrs, 'error', m.error);

  const code = m.responseCode ?? 0;
  const outcome: Outcome = m.authzDenied || m.mtlsFailure || m.authFailed ? 'denied' : code > 0 && code < 400 ? 'allowed' : 'unknown';
  return { target, outcome };
}

function gatekeeperDetails(g: GatekeeperDecision, entities: string[], attrs: Record<string, string>): { target: Target; outcome: Outcome } {
  const r = g.resource;
  const target: Target = {};
  if (r.namespace) target.namespace = r.namespace;
  if (r.kind) target.resource = resourceOfKind(r.kind);
  if (r.group) target.apiGroup = r.group;
  if (r.name) target.name = r.name;
  if (r.namespace) entities.push(nsKey(r.namespace));
  if (r.kind === 'Pod' && r.namespace && r.name) entities.push(podKey(r.namespace, r.name));
  entities.push(policyKey('gatekeeper', g.constraint.name));
  // The same attribute names the audit connector uses for admission denials, so root cause treats both alike.
  attrs.admissionEngine = 'gatekeeper';
  set(attrs, 'admissionPolicies', g.constraint.name);
  set(attrs, 'constraintKind', g.constraint.kind);
  set(attrs, 'enforcementAction', g.action);
  set(attrs, 'message', g.message);
  return { target, outcome: g.denied ? 'denied' : 'allowed' };
}

function lokiDetails(e: LokiEntry, derived: LokiDerived, observedTime: number): EventDetails {
  const actor = derived.actor;
  const entities: string[] = [];
  const attributes: Record<string, string> = {};
  set(attributes, 'tenant', e.tenant);
  let target: Target = {};
  let outcome: Outcome = 'unknown';
  let lineTime: number | undefined;
  const mesh = derived.mesh;
  const gk = derived.gatekeeper;
  if (mesh) {
    ({ target, outcome } = meshDetails(mesh, actor, entities, attributes));
    lineTime = mesh.startTime;
  } else if (gk) {
    ({ target, outcome } = gatekeeperDetails(gk, entities, attributes));
    lineTime = gk.time;
  }
  const entryTime = nsToMs(e.time);
  const excerpt = boundedRedactedCopy({
    tenant: e.tenant,
    time: e.time,
    labels: e.labels,
    ...(Object.keys(e.metadata).length ? { metadata: e.metadata } : {}),
    line: truncate(redactText(e.line), 1024),
  }) as Record<string, unknown>;
  return { time: lineTime ?? (entryTime > 0 ? entryTime : observedTime), actor, target, outcome, entities: [...new Set(entities)], attributes, excerpt };
}
