/**
 * Span → {@link SourceEvent}: who called whom, with which outcome, and the facts span rules need —
 * the HTTP or gRPC status, whether it is an authentication or authorization failure, whether a mesh
 * proxy or its external authorizer refused the call, whether TLS failed. Derived fields are lazy:
 * most spans are successful calls that no rule looks at twice.
 *
 * Who acted depends on the span's side of the call. A client span is written by the caller, so the
 * actor is the span's resource (the pod, its SPIFFE id, its IP, else its service name). A server
 * span is written by the callee, so the actor is the caller named in the span (a SPIFFE principal
 * or a client address) and the resource is the target; only when the caller is unknown does the
 * resource stand in, and `actorFrom` says so.
 */
import { actorFromIp, actorFromPod, actorFromSpiffe, ipKey, nsKey, podKey, userKey, type Actor } from '../../correlator/entities.js';
import { actorFields } from '../../correlator/detection/fields.js';
import type { EventDetails, SourceEvent, SourceSchema } from '../../correlator/detection/source-event.js';
import { boundedRedactedCopy, isSecretKey, REDACTED } from '../../correlator/redact.js';
import type { Outcome, Target } from '../../correlator/signal.js';
import { spanTimeMs, type AttrValue, type OtlpSpan } from './parse.js';

/** gRPC status codes by number (google.rpc.Code). */
export const GRPC_CODES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

// The HTTP status a gRPC code corresponds to (google.rpc.Code documentation, as grpc-gateway maps it).
const GRPC_TO_HTTP: Record<string, number> = {
  OK: 200,
  CANCELLED: 499,
  UNKNOWN: 500,
  INVALID_ARGUMENT: 400,
  DEADLINE_EXCEEDED: 504,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  PERMISSION_DENIED: 403,
  RESOURCE_EXHAUSTED: 429,
  FAILED_PRECONDITION: 400,
  ABORTED: 409,
  OUT_OF_RANGE: 400,
  UNIMPLEMENTED: 501,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  DATA_LOSS: 500,
  UNAUTHENTICATED: 401,
};

/** An authentication (401, gRPC 16) or authorization (403, gRPC 7) failure, by its gRPC name. */
export type AuthError = 'UNAUTHENTICATED' | 'PERMISSION_DENIED';

const SPIFFE_RE = /^spiffe:\/\/[^/\s]+\/\S*$/;
const CALLER_KEY = /(^|[._-])(source|src|client|downstream|caller)([._-]|$)/i;
const CALLEE_KEY = /(^|[._-])(destination|dest|dst|server|upstream|callee)([._-]|$)/i;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const K8S_SERVICE_HOST = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc(\.|$)/;
const TLS_ERROR =
  /CERTIFICATE_VERIFY_FAILED|TLS_error|tls: |SSL routines|ssl_handshake|handshake failure|bad certificate|certificate (?:verify|has expired|signed by unknown|is not valid)|unknown (?:ca|authority)|x509:|SSLHandshakeException|ERR_TLS|ERR_SSL|UNABLE_TO_VERIFY_LEAF_SIGNATURE|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|CERT_HAS_EXPIRED|peer did not return a certificate/i;

const str = (v: AttrValue | undefined): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function int(v: AttrValue | undefined): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) ? v : undefined;
  if (typeof v === 'string' && /^\d{1,4}$/.test(v)) return Number(v);
  return undefined;
}

/** An address without its port, brackets or scheme (`10.0.0.1:443` → `10.0.0.1`, `[::1]:80` → `::1`). */
function hostOf(v: string): string {
  let s = v;
  const scheme = s.indexOf('://');
  if (scheme >= 0) {
    try {
      return new URL(s).hostname.replace(/^\[|\]$/g, '');
    } catch {
      s = s.slice(scheme + 3);
    }
  }
  if (s.startsWith('[')) return s.slice(1, s.indexOf(']') > 0 ? s.indexOf(']') : undefined);
  const colons = s.split(':').length - 1;
  if (colons === 1) s = s.slice(0, s.indexOf(':'));
  if (s.startsWith('::ffff:') && IPV4.test(s.slice(7))) s = s.slice(7);
  return s;
}

const isIp = (s: string): boolean => IPV4.test(s) || (s.includes(':') && /^[0-9a-fA-F:.]+$/.test(s));

function first(attrs: Record<string, AttrValue>, keys: readonly string[]): string | undefined {
  for (const k of keys) {
    const v = attrs[k];
    if (typeof v === 'string' && v !== '') return v;
    if (typeof v === 'number') return String(v);
  }
  return undefined;
}

const CALLEE_NAME_KEYS = ['peer.service', 'server.address', 'net.peer.name', 'rpc.service'] as const;
const CALLEE_ADDR_KEYS = ['server.socket.address', 'network.peer.address', 'net.sock.peer.addr', 'net.peer.ip', 'peer.address'] as const;
const CALLER_ADDR_KEYS = [
  'client.address',
  'client.socket.address',
  'network.peer.address',
  'net.sock.peer.addr',
  'net.peer.ip',
  'http.client_ip',
  'peer.address',
] as const;
// Envoy's outbound cluster names the service called: `outbound|8080||payments.payments.svc.cluster.local`.
const ENVOY_OUTBOUND = /^outbound\|\d*\|[^|]*\|(.+)$/;

interface SpiffeIds {
  /** The identity that made the call. */
  caller?: string;
  /** The identity that was called. */
  callee?: string;
}

/** What an Envoy/Istio/Linkerd proxy writes on its spans. */
function isProxySpan(span: OtlpSpan): boolean {
  const a = span.attributes;
  if (a.component === 'proxy' || a.upstream_cluster !== undefined || a.response_flags !== undefined || a.ext_authz_status !== undefined) return true;
  if (Object.keys(a).some((k) => k.startsWith('istio.'))) return true;
  const who = `${span.scope.name} ${str(span.resource['service.name']) ?? ''} ${str(span.resource['telemetry.sdk.name']) ?? ''}`.toLowerCase();
  return /envoy|istio-proxy|linkerd-proxy|ztunnel|waypoint/.test(who);
}

/**
 * Computed fields of one span, reachable from rules by their top-level name (see {@link OTLP_SCHEMA}).
 * Getters compute on first use and cache.
 */
export class OtlpDerived {
  private _http?: number | null;
  private _grpc?: string | null;
  private _spiffe?: SpiffeIds;
  private _actor?: { actor: Actor; from: 'resource' | 'span' };
  private _peer?: string | null;
  private _destNs?: string | null;
  private _tls?: string | null;
  private _mesh?: 'ext_authz' | 'rbac' | null;
  private _proxy?: boolean;

  constructor(private readonly span: OtlpSpan) {}

  /** True when the span was written by the caller's side (client, producer, internal). */
  get outbound(): boolean {
    return this.span.kind !== 'server' && this.span.kind !== 'consumer';
  }

  /** `service.name` of the span's resource. */
  get serviceName(): string | undefined {
    return str(this.span.resource['service.name']);
  }

  /** The HTTP status (`http.response.status_code`, `http.status_code`), or the HTTP equivalent of a gRPC status. */
  get httpStatus(): number | undefined {
    if (this._http === undefined) {
      const a = this.span.attributes;
      const grpc = this.grpcStatus;
      this._http = int(a['http.response.status_code']) ?? int(a['http.status_code']) ?? (grpc ? GRPC_TO_HTTP[grpc] : undefined) ?? null;
    }
    return this._http ?? undefined;
  }

  /** The gRPC status name (`PERMISSION_DENIED`) from `rpc.grpc.status_code`, `rpc.response.status_code` or Connect's error code. */
  get grpcStatus(): string | undefined {
    if (this._grpc === undefined) {
      const a = this.span.attributes;
      let name: string | undefined;
      for (const v of [a['rpc.grpc.status_code'], a['rpc.response.status_code'], a['grpc.status_code']]) {
        const n = int(v);
        if (n !== undefined) name = GRPC_CODES[n];
        else if (typeof v === 'string' && (GRPC_CODES as readonly string[]).includes(v.toUpperCase())) name = v.toUpperCase();
        if (name) break;
      }
      const connect = str(a['rpc.connect_rpc.error_code']);
      if (!name && connect) name = connect.toUpperCase();
      this._grpc = name ?? null;
    }
    return this._grpc ?? undefined;
  }

  /** `UNAUTHENTICATED` (401, gRPC 16) or `PERMISSION_DENIED` (403, gRPC 7); undefined otherwise. */
  get authError(): AuthError | undefined {
    const g = this.grpcStatus;
    if (g === 'UNAUTHENTICATED' || g === 'PERMISSION_DENIED') return g;
    const h = this.httpStatus;
    return h === 401 ? 'UNAUTHENTICATED' : h === 403 ? 'PERMISSION_DENIED' : undefined;
  }

  /** The other party: the service called (outbound spans) or the caller's address (inbound spans). */
  get peer(): string | undefined {
    if (this._peer === undefined) {
      const a = this.span.attributes;
      let p: string | undefined;
      if (this.outbound) {
        p = first(a, CALLEE_NAME_KEYS);
        if (!p) {
          const url = str(a['url.full']) ?? str(a['http.url']);
          const host = str(a['http.host']);
          const cluster = ENVOY_OUTBOUND.exec(str(a.upstream_cluster) ?? '');
          p = url ? hostOf(url) : host ? hostOf(host) : (cluster?.[1] ?? first(a, CALLEE_ADDR_KEYS));
        }
      } else p = first(a, CALLER_ADDR_KEYS) ?? str(a['net.peer.name']);
      this._peer = p && p.includes(':') && !isIp(p) ? hostOf(p) : (p ?? null);
    }
    return this._peer ?? undefined;
  }

  /** The SPIFFE id of the identity that made the call, if the span or its resource carries one. */
  get spiffe(): string | undefined {
    return this.spiffeIds.caller;
  }

  /** The SPIFFE id of the identity that was called, if known. */
  get peerSpiffe(): string | undefined {
    return this.spiffeIds.callee;
  }

  /** The namespace of the workload that was called (from its SPIFFE id, a `<svc>.<ns>.svc` host, or the resource of a server span). */
  get destinationNamespace(): string | undefined {
    if (this._destNs === undefined) {
      let ns = this.peerSpiffe ? actorFromSpiffe(this.peerSpiffe)?.namespace : undefined;
      if (!ns && this.outbound) {
        const m = this.peer ? K8S_SERVICE_HOST.exec(this.peer) : null;
        ns = m?.[3] ?? str(this.span.attributes['istio.destination.namespace']) ?? str(this.span.attributes['destination.namespace']);
      }
      if (!ns && !this.outbound) ns = str(this.span.resource['k8s.namespace.name']);
      this._destNs = ns ?? null;
    }
    return this._destNs ?? undefined;
  }

  /** True for spans written by a mesh proxy (Envoy, Istio, Linkerd, ztunnel). */
  get proxy(): boolean {
    return (this._proxy ??= isProxySpan(this.span));
  }

  /** `ext_authz` or `rbac` when a mesh proxy or its external authorizer refused the call. */
  get meshDenial(): 'ext_authz' | 'rbac' | undefined {
    if (this._mesh === undefined) {
      const a = this.span.attributes;
      const flags = str(a.response_flags) ?? '';
      const details = str(a.response_code_details) ?? str(a['envoy.response_code_details']) ?? '';
      const message = `${this.span.status.message ?? ''} ${str(a['error.message']) ?? ''}`;
      let d: 'ext_authz' | 'rbac' | null = null;
      // The authorizer's own Check span (ext_authz_status=ext_authz_unauthorized) is not counted: the
      // request span beside it carries UAEX, and one denial must raise one signal.
      if (/(^|,)UAEX(,|$)/.test(flags) || details.startsWith('ext_authz_denied')) d = 'ext_authz';
      else if (details.startsWith('rbac_access_denied') || /RBAC: access denied/.test(message)) d = 'rbac';
      this._mesh = d;
    }
    return this._mesh ?? undefined;
  }

  /** The TLS or certificate error that failed the call, from the status, `error.type` or an exception event. */
  get tlsError(): string | undefined {
    if (this._tls === undefined) {
      const s = this.span;
      const a = s.attributes;
      const texts = [s.status.message, str(a['error.type']), str(a['error.message']), str(a['upstream_transport_failure_reason']), str(a['exception.message'])];
      for (const e of s.events ?? []) if (e.name === 'exception') texts.push(str(e.attributes['exception.message']), str(e.attributes['exception.type']));
      this._tls = texts.find((t): t is string => t !== undefined && TLS_ERROR.test(t))?.slice(0, 300) ?? null;
    }
    return this._tls ?? undefined;
  }

  /** The identity that acted (see the module header). */
  get actor(): Actor {
    return this.actorAndSource.actor;
  }

  /** `span` when the actor was named by the span (a server span's caller), `resource` when it is the span's own workload. */
  get actorFrom(): 'resource' | 'span' {
    return this.actorAndSource.from;
  }

  private get actorAndSource(): { actor: Actor; from: 'resource' | 'span' } {
    if (this._actor) return this._actor;
    if (!this.outbound) {
      const bySpiffe = this.spiffe ? actorFromSpiffe(this.spiffe) : undefined;
      if (bySpiffe) return (this._actor = { actor: bySpiffe, from: 'span' });
      const addr = first(this.span.attributes, CALLER_ADDR_KEYS);
      const host = addr ? hostOf(addr) : undefined;
      if (host && isIp(host)) return (this._actor = { actor: actorFromIp(host), from: 'span' });
    }
    return (this._actor = { actor: resourceActor(this.span.resource, this.outbound ? this.spiffe : undefined), from: 'resource' });
  }

  private get spiffeIds(): SpiffeIds {
    if (this._spiffe) return this._spiffe;
    const ids: SpiffeIds = {};
    let unclassified: string | undefined;
    for (const [k, v] of Object.entries(this.span.attributes)) {
      if (typeof v !== 'string' || !v.startsWith('spiffe://') || !SPIFFE_RE.test(v)) continue;
      if (CALLER_KEY.test(k)) ids.caller ??= v;
      else if (CALLEE_KEY.test(k)) ids.callee ??= v;
      else unclassified ??= v;
    }
    const own = resourceSpiffe(this.span.resource);
    // A principal with no side in its name (peer.principal) is the remote end of the call.
    if (this.outbound) {
      ids.caller ??= own;
      ids.callee ??= unclassified;
    } else {
      ids.caller ??= unclassified;
      ids.callee ??= own;
    }
    return (this._spiffe = ids);
  }
}

function resourceSpiffe(resource: Record<string, AttrValue>): string | undefined {
  for (const v of Object.values(resource)) if (typeof v === 'string' && v.startsWith('spiffe://') && SPIFFE_RE.test(v)) return v;
  return undefined;
}

/** The workload a resource describes: its pod, else its workload, else its SPIFFE id, else its IP, else its service name. */
export function resourceActor(resource: Record<string, AttrValue>, spiffe = resourceSpiffe(resource)): Actor {
  const pod = str(resource['k8s.pod.name']);
  const ns = str(resource['k8s.namespace.name']);
  if (pod && ns) return actorFromPod(ns, pod);
  // A workload named without its pod (OTel's k8s.deployment.name…): the pod-style key the cluster
  // inventory resolves to the service account its pods run as.
  const workload = str(resource['k8s.deployment.name']) ?? str(resource['k8s.statefulset.name']) ?? str(resource['k8s.daemonset.name']);
  if (workload && ns) return actorFromPod(ns, workload);
  const bySpiffe = spiffe ? actorFromSpiffe(spiffe) : undefined;
  if (bySpiffe) return bySpiffe;
  const ip = str(resource['k8s.pod.ip']);
  if (ip) return actorFromIp(ip);
  const service = str(resource['service.name']) ?? 'unknown_service';
  const name = `otel/${ns ? `${ns}/` : ''}${service}`;
  return { key: userKey(name), type: 'user', name, ...(ns ? { namespace: ns } : {}) };
}

/** The span source as detection sees it: the derived roots rules may use. */
export const OTLP_SCHEMA: SourceSchema = {
  name: 'otlp',
  derived: [
    'httpStatus',
    'grpcStatus',
    'authError',
    'peer',
    'serviceName',
    'spiffe',
    'peerSpiffe',
    'destinationNamespace',
    'proxy',
    'meshDenial',
    'tlsError',
    'actor',
    'actorFrom',
    'outbound',
  ],
  fields: [
    { name: 'traceId', type: 'string', description: 'Trace id, 32 lowercase hex characters.' },
    { name: 'spanId', type: 'string', description: 'Span id, 16 lowercase hex characters.' },
    { name: 'parentSpanId', type: 'string', description: 'Parent span id, absent for a root span.' },
    { name: 'traceState', type: 'string', description: 'W3C trace state.' },
    { name: 'name', type: 'string', description: 'Span name, e.g. `GET /api/orders` or `payments.Charge/Refund`.' },
    { name: 'kind', type: 'string', description: '`unspecified`, `internal`, `server`, `client`, `producer` or `consumer`.' },
    { name: 'startTimeUnixNano', type: 'string', description: 'Start, nanoseconds since the epoch as a decimal string.' },
    { name: 'endTimeUnixNano', type: 'string', description: 'End, nanoseconds since the epoch as a decimal string.' },
    { name: 'status.code', type: 'string', description: '`unset`, `ok` or `error`.' },
    { name: 'status.message', type: 'string', description: 'Status message of an error.' },
    { name: 'attributes.*', type: 'any', description: 'Span attributes, flattened: `attributes["http.response.status_code"]`.' },
    { name: 'resource.*', type: 'any', description: 'Resource attributes: `resource["k8s.pod.name"]`, `resource["service.name"]`.' },
    { name: 'scope.name', type: 'string', description: 'Instrumentation scope name.' },
    { name: 'scope.version', type: 'string', description: 'Instrumentation scope version.' },
    { name: 'events.*', type: 'any', description: 'Span events: `events[*].name`, `events[*].attributes["exception.message"]`.' },
    { name: 'outbound', type: 'boolean', description: 'Written by the caller’s side (client, producer, internal spans).' },
    { name: 'serviceName', type: 'string', description: '`service.name` of the span’s resource.' },
    { name: 'httpStatus', type: 'number', description: 'HTTP status from the span’s attributes, else the HTTP equivalent of its gRPC status.' },
    { name: 'grpcStatus', type: 'string', description: 'gRPC status name, e.g. `PERMISSION_DENIED` (also from Connect error codes).' },
    { name: 'authError', type: 'string', description: '`UNAUTHENTICATED` (401, gRPC 16) or `PERMISSION_DENIED` (403, gRPC 7).' },
    { name: 'peer', type: 'string', description: 'The other party: the service called (outbound spans) or the caller’s address (inbound spans).' },
    { name: 'spiffe', type: 'string', description: 'SPIFFE id of the caller, if the span or its resource carries one.' },
    { name: 'peerSpiffe', type: 'string', description: 'SPIFFE id of the identity called, if known.' },
    {
      name: 'destinationNamespace',
      type: 'string',
      description: 'Namespace of the workload called (SPIFFE id, `<svc>.<ns>.svc` host, or a server span’s resource).',
    },
    { name: 'proxy', type: 'boolean', description: 'Written by a mesh proxy (Envoy, Istio, Linkerd, ztunnel).' },
    { name: 'meshDenial', type: 'string', description: '`ext_authz` or `rbac` when a mesh proxy or its external authorizer refused the call.' },
    { name: 'tlsError', type: 'string', description: 'The TLS or certificate error that failed the call, bounded.' },
    ...actorFields('the workload that acted: a client span’s resource, or a server span’s caller'),
    {
      name: 'actorFrom',
      type: 'string',
      description: '`span` when the span named the actor (a server span’s caller), `resource` when it is the span’s own workload.',
    },
  ],
};

/** Normalizes one parsed span. `observedTime` is when kubevigil received it. */
export function normalizeSpan(span: OtlpSpan, observedTime: number): OtlpSourceEvent {
  return new OtlpSourceEvent(span, observedTime);
}

/** A span as detection sees it; one object per span until a rule matches. */
export class OtlpSourceEvent implements SourceEvent {
  readonly source = 'otlp' as const;
  readonly final = true;
  readonly derived: OtlpDerived;
  private _details?: EventDetails;

  constructor(
    readonly raw: OtlpSpan,
    readonly observedTime: number,
  ) {
    this.derived = new OtlpDerived(raw);
  }

  get key(): string {
    return `${this.raw.traceId}/${this.raw.spanId}`;
  }

  details(): EventDetails {
    return (this._details ??= spanDetails(this.raw, this.derived, this.observedTime));
  }
}

function outcomeOf(span: OtlpSpan, d: OtlpDerived): Outcome {
  if (d.authError || d.meshDenial || d.tlsError) return 'denied';
  const h = d.httpStatus;
  if (h !== undefined) return h < 400 ? 'allowed' : 'unknown';
  if (span.status.code === 'ok') return 'allowed';
  return 'unknown';
}

/** Attribute keys whose last segment names a secret (`http.request.header.authorization`). */
function redactAttributes(attrs: Record<string, AttrValue>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(attrs)) {
    const last = k.slice(k.lastIndexOf('.') + 1);
    out[k] = isSecretKey(last) || /cookie|api[-_]?key/i.test(last) ? REDACTED : v;
  }
  return out;
}

function spanDetails(span: OtlpSpan, d: OtlpDerived, observedTime: number): EventDetails {
  const actor = d.actor;
  const res = span.resource;
  const a = span.attributes;
  const ownNs = str(res['k8s.namespace.name']);
  const ownPod = str(res['k8s.pod.name']);
  const destNs = d.destinationNamespace;
  const peer = d.peer;
  const service = d.serviceName;

  const target: Target = { resource: 'services' };
  const verb = str(a['http.request.method']) ?? str(a['http.method']) ?? str(a['rpc.method']);
  if (verb) target.verb = verb;
  let destination: string | undefined;
  if (d.outbound) {
    if (destNs) target.namespace = destNs;
    const m = peer ? K8S_SERVICE_HOST.exec(peer) : null;
    destination = m ? `${m[3]}/${m[1]}` : peer;
    const name = m?.[1] ?? peer;
    if (name) target.name = name;
  } else {
    if (destNs) target.namespace = destNs;
    destination = service ? (ownNs ? `${ownNs}/${service}` : service) : undefined;
    if (service) target.name = service;
  }

  const entities = new Set<string>();
  if (ownPod && ownNs) entities.add(podKey(ownNs, ownPod));
  if (ownNs) entities.add(nsKey(ownNs));
  if (destNs) entities.add(nsKey(destNs));
  const podIp = str(res['k8s.pod.ip']);
  if (podIp) entities.add(ipKey(podIp));
  for (const id of [d.spiffe, d.peerSpiffe]) {
    const sa = id ? actorFromSpiffe(id) : undefined;
    if (sa) entities.add(sa.key);
  }
  if (peer && isIp(peer)) entities.add(ipKey(peer));
  entities.delete(actor.key);

  const attributes: Record<string, string> = { traceId: span.traceId, spanId: span.spanId, spanKind: span.kind, spanName: span.name.slice(0, 200) };
  if (service) attributes.service = service;
  if (destination) attributes.destination = destination;
  if (d.httpStatus !== undefined) attributes.httpStatus = String(d.httpStatus);
  if (d.grpcStatus) attributes.grpcStatus = d.grpcStatus;
  if (d.authError) attributes.authError = d.authError;
  if (d.meshDenial) attributes.meshDenial = d.meshDenial;
  if (d.spiffe) attributes.spiffe = d.spiffe;
  if (d.peerSpiffe) attributes.peerSpiffe = d.peerSpiffe;
  if (ownPod && ownNs) attributes.pod = `${ownNs}/${ownPod}`;
  attributes.actorFrom = d.actorFrom;

  const excerpt = boundedRedactedCopy({
    traceId: span.traceId,
    spanId: span.spanId,
    parentSpanId: span.parentSpanId,
    name: span.name,
    kind: span.kind,
    status: span.status,
    startTimeUnixNano: span.startTimeUnixNano,
    endTimeUnixNano: span.endTimeUnixNano,
    attributes: redactAttributes(a),
    resource: redactAttributes(res),
    scope: span.scope,
  }) as Record<string, unknown>;
  return { time: spanTimeMs(span) ?? observedTime, actor, target, outcome: outcomeOf(span, d), entities: [...entities], attributes, excerpt };
}
