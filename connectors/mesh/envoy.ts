/**
 * Istio and Envoy access logs, in the default TEXT formats (Istio's since 1.9, Envoy's own with or
 * without %RESPONSE_CODE_DETAILS%) and Istio's JSON format (see test/fixtures/real/mesh/formats.txt).
 *
 * Attribution is the security-critical part: who called whom. In the TEXT format the user agent,
 * authority and path are quoted but not escaped, so a client can put `" "` into its User-Agent and
 * shift every later field — including the addresses. Addresses after the quoted client fields are
 * therefore trusted only when the line has exactly the format's number of fields and each of them
 * has the shape of an address; otherwise the record keeps the proxy's own verdict (code, flags,
 * details) and drops the addresses. X-Forwarded-For is never used for attribution.
 */
import { emitterFromLabels, mergePeer, peerFromEmitter, peerFromHost, splitHostPort, withPrincipal, type Emitter, type MeshPeer } from './identity.js';
import { clip, rbacDenial, tlsFailureIn, type AccessLogRecord } from './record.js';

/** Lines longer than this are not access logs worth parsing (Envoy caps headers at 60 KiB). */
const MAX_LINE = 96 * 1024;
const MAX_TOKENS = 40;

interface Token {
  v: string;
  quoted: boolean;
}

/** Splits the part of a line from `[START_TIME]` on into bare, quoted and bracketed tokens. */
function tokenize(s: string): Token[] | undefined {
  const out: Token[] = [];
  const n = s.length;
  let i = 0;
  while (i < n) {
    while (i < n && s[i] === ' ') i++;
    if (i >= n) break;
    if (out.length >= MAX_TOKENS) return undefined;
    const c = s[i];
    if (c === '"') {
      // A quoted field ends at a quote followed by a space or the end of the line.
      let j = i + 1;
      for (;;) {
        j = s.indexOf('"', j);
        if (j < 0) return undefined;
        if (j + 1 === n || s[j + 1] === ' ') break;
        j++;
      }
      out.push({ v: s.slice(i + 1, j), quoted: true });
      i = j + 1;
    } else if (c === '[') {
      const j = s.indexOf(']', i);
      if (j < 0) return undefined;
      out.push({ v: s.slice(i + 1, j), quoted: false });
      i = j + 1;
    } else {
      let j = s.indexOf(' ', i);
      if (j < 0) j = n;
      out.push({ v: s.slice(i, j), quoted: false });
      i = j;
    }
  }
  return out;
}

const unset = (v: string | undefined | null): string | undefined => (v === undefined || v === null || v === '-' || v === '' ? undefined : v);
const FLAG = /^[A-Z]{2,5}$/;
const START = /\[(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))\] "/;
const ADDRESS = (v: string) => v === '-' || splitHostPort(v) !== undefined || /^envoy:\/\/[^\s"]+$/.test(v);
const CLUSTER = /^[A-Za-z0-9_|.:*-]+$/;

function flagsOf(v: string | undefined | null): string[] | undefined {
  const s = unset(v);
  if (s === undefined) return [];
  const parts = s.split(',');
  return parts.every((p) => FLAG.test(p)) ? parts : undefined;
}

function codeOf(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{1,3}$/.test(v) ? Number(v) : NaN;
  return Number.isInteger(n) && n >= 0 && n < 1000 ? n : undefined;
}

/** The raw fields a parser found, before direction and peers are worked out. */
interface Fields {
  kind: 'istio' | 'envoy';
  format: 'text' | 'json';
  startTime?: string;
  request?: { method?: string; path?: string; protocol?: string };
  responseCode: number;
  responseFlags: string[];
  details?: string;
  termination?: string;
  transportFailure?: string;
  forwardedFor?: string;
  userAgent?: string;
  requestId?: string;
  authority?: string;
  upstreamHost?: string;
  upstreamCluster?: string;
  upstreamLocal?: string;
  downstreamLocal?: string;
  downstreamRemote?: string;
  sni?: string;
  /** The fields after the client-controlled ones did not have the format's layout; addresses were dropped. */
  malformed?: boolean;
  /** Identities and workloads a custom JSON format may add. */
  sourcePrincipal?: string;
  destinationPrincipal?: string;
  sourceWorkload?: string;
  sourceNamespace?: string;
  destinationWorkload?: string;
  destinationNamespace?: string;
}

/** Parses an Istio or Envoy TEXT access log line (any prefix before `[START_TIME]` is skipped). */
export function parseEnvoyText(line: string, labels: Readonly<Record<string, string>> = {}): AccessLogRecord | undefined {
  if (line.length > MAX_LINE) return undefined;
  const m = START.exec(line);
  if (!m) return undefined;
  const t = tokenize(line.slice(m.index));
  if (!t || t.length < 13) return undefined;
  const req = t[1]!;
  const code = codeOf(t[2]!.v);
  const flags = flagsOf(t[3]!.v);
  if (!req.quoted || code === undefined || !flags) return undefined;
  const reqParts = req.v.split(' ');
  const request = reqParts.length === 3 ? { method: reqParts[0], path: reqParts[1], protocol: reqParts[2] } : undefined;
  const num = (k: number) => t[k] !== undefined && !t[k]!.quoted && /^(\d+|-)$/.test(t[k]!.v);
  const f: Fields = { kind: 'envoy', format: 'text', startTime: m[1], request, responseCode: code, responseFlags: flags };
  const q = (k: number) => (t[k]?.quoted ? unset(t[k]!.v) : undefined);

  if (!t[4]!.quoted && !t[5]!.quoted && t[6]?.quoted && num(7) && num(8) && num(9)) {
    // Istio: ... details termination "transport failure" bytes_in bytes_out duration svc_time "xff" "ua" "id" "authority" "upstream" cluster up_local down_local down_remote sni route
    f.kind = 'istio';
    f.details = unset(t[4]!.v);
    f.termination = unset(t[5]!.v);
    f.transportFailure = q(6);
    f.forwardedFor = q(11);
    f.userAgent = q(12);
    f.requestId = q(13);
    f.authority = q(14);
    const trailing = t.slice(16);
    // Exactly 22 fields (21 when the route name is cut off), and every trailing field address-shaped.
    if (
      (t.length === 22 || t.length === 21) &&
      t[15]?.quoted &&
      trailing.every((x) => !x.quoted) &&
      (trailing[0]!.v === '-' || CLUSTER.test(trailing[0]!.v)) &&
      trailing.slice(1, 4).every((x) => ADDRESS(x.v))
    ) {
      f.upstreamHost = q(15);
      f.upstreamCluster = unset(trailing[0]!.v);
      f.upstreamLocal = unset(trailing[1]!.v);
      f.downstreamLocal = unset(trailing[2]!.v);
      f.downstreamRemote = unset(trailing[3]!.v);
      f.sni = unset(trailing[4]?.v);
    } else f.malformed = true;
  } else {
    // Envoy default: ... bytes_in bytes_out duration svc_time "xff" "ua" "id" "authority" "upstream"; optionally details after the flags.
    const d = num(4) ? 0 : 1;
    if (!num(4 + d) || !num(5 + d) || !num(6 + d)) return undefined;
    if (d === 1) f.details = unset(t[4]!.v);
    f.forwardedFor = q(8 + d);
    f.userAgent = q(9 + d);
    f.requestId = q(10 + d);
    f.authority = q(11 + d);
    if (t.length === 13 + d && t[12 + d]?.quoted) {
      const up = q(12 + d);
      if (up === undefined || ADDRESS(up)) f.upstreamHost = up;
      else f.malformed = true;
    } else f.malformed = true;
  }
  return build(f, labels);
}

const str = (o: Record<string, unknown>, k: string): string | undefined => {
  const v = o[k];
  return typeof v === 'string' ? unset(v) : typeof v === 'number' ? String(v) : undefined;
};
const firstStr = (o: Record<string, unknown>, keys: readonly string[]) => {
  for (const k of keys) {
    const v = str(o, k);
    if (v !== undefined) return v;
  }
  return undefined;
};

/** True when a JSON object looks like an Envoy/Istio access log entry. */
export function isEnvoyJson(o: Record<string, unknown>): boolean {
  return ('response_flags' in o || 'response_code_details' in o || 'upstream_cluster' in o) && ('response_code' in o || 'start_time' in o);
}

/** Parses an Istio/Envoy JSON access log entry (already JSON-decoded). */
export function parseEnvoyJson(o: Record<string, unknown>, labels: Readonly<Record<string, string>> = {}): AccessLogRecord | undefined {
  if (!isEnvoyJson(o)) return undefined;
  const code = o.response_code === null || o.response_code === undefined ? 0 : codeOf(o.response_code);
  const flags = flagsOf(typeof o.response_flags === 'string' ? o.response_flags : null);
  if (code === undefined || !flags) return undefined;
  const method = str(o, 'method');
  const cluster = str(o, 'upstream_cluster');
  const f: Fields = {
    kind: (cluster && /^(inbound|outbound)\|/.test(cluster)) || 'route_name' in o || labels.container === 'istio-proxy' ? 'istio' : 'envoy',
    format: 'json',
    startTime: str(o, 'start_time'),
    request: { method, path: str(o, 'path'), protocol: str(o, 'protocol') },
    responseCode: code,
    responseFlags: flags,
    details: str(o, 'response_code_details'),
    termination: str(o, 'connection_termination_details'),
    transportFailure: str(o, 'upstream_transport_failure_reason'),
    forwardedFor: str(o, 'x_forwarded_for'),
    userAgent: str(o, 'user_agent'),
    requestId: str(o, 'request_id'),
    authority: str(o, 'authority'),
    upstreamHost: str(o, 'upstream_host'),
    upstreamCluster: cluster,
    upstreamLocal: str(o, 'upstream_local_address'),
    downstreamLocal: str(o, 'downstream_local_address'),
    downstreamRemote: str(o, 'downstream_remote_address'),
    sni: str(o, 'requested_server_name'),
    sourcePrincipal: firstStr(o, ['source_principal', 'downstream_peer_uri_san', 'downstream_peer_principal']),
    destinationPrincipal: firstStr(o, ['destination_principal', 'upstream_peer_uri_san']),
    sourceWorkload: str(o, 'source_workload'),
    sourceNamespace: str(o, 'source_namespace'),
    destinationWorkload: firstStr(o, ['destination_workload', 'destination_service_name']),
    destinationNamespace: str(o, 'destination_namespace'),
  };
  return build(f, labels);
}

function addrPeer(addr: string | undefined): MeshPeer {
  const hp = addr ? splitHostPort(addr) : undefined;
  return hp ? { ip: hp.ip, port: hp.port } : {};
}

/** `outbound|8080|v1|reviews.default.svc.cluster.local` → the service; `outbound_.8000_._.probe.starfleet.svc.cluster.local` (SNI) too. */
function serviceOfCluster(name: string | undefined): MeshPeer {
  if (!name) return {};
  const pipe = name.split('|');
  if (pipe.length === 4 && pipe[3]) return peerFromHost(pipe[3]);
  const sni = /^outbound_\.\d+_\.[^_]*_\.(.+)$/.exec(name);
  if (sni) return peerFromHost(sni[1]!);
  return {};
}

function directionOf(f: Fields): AccessLogRecord['direction'] {
  const c = f.upstreamCluster ?? '';
  if (c.startsWith('inbound|') || c === 'InboundPassthroughCluster' || c === 'InboundPassthroughClusterIpv4' || c === 'InboundPassthroughClusterIpv6')
    return 'inbound';
  if (c.startsWith('outbound|') || c === 'PassthroughCluster' || c === 'BlackHoleCluster') return 'outbound';
  // A listener with no filter chain for the connection is the server's inbound listener refusing it.
  if (f.responseFlags.includes('NR') && f.details === 'filter_chain_not_found') return 'inbound';
  return 'unknown';
}

function timeOf(s: string | undefined): number | undefined {
  if (!s) return undefined;
  const t = Date.parse(s);
  return Number.isFinite(t) ? t : undefined;
}

function build(f: Fields, labels: Readonly<Record<string, string>>): AccessLogRecord {
  const emitter: Emitter = emitterFromLabels(labels);
  const direction = directionOf(f);
  const reporter: AccessLogRecord['reporter'] = emitter.gateway
    ? 'gateway'
    : direction === 'inbound'
      ? 'destination'
      : direction === 'outbound'
        ? 'source'
        : 'proxy';
  const me = peerFromEmitter(emitter);
  const local = addrPeer(f.downstreamLocal);
  const remote = addrPeer(f.downstreamRemote);
  let source: MeshPeer;
  let destination: MeshPeer;
  if (reporter === 'destination') {
    source = remote;
    destination = mergePeer(mergePeer(me, { ip: local.ip, port: local.port }), serviceOfCluster(f.sni));
  } else if (reporter === 'source') {
    source = mergePeer(me, remote);
    destination = mergePeer(addrPeer(f.upstreamHost), serviceOfCluster(f.upstreamCluster));
  } else {
    source = remote;
    destination = mergePeer(addrPeer(f.upstreamHost), serviceOfCluster(f.upstreamCluster));
  }
  if (f.authority && !destination.workload && !destination.host) destination = mergePeer(destination, peerFromHost(f.authority));
  if (f.sourceWorkload) source = mergePeer(source, { workload: f.sourceWorkload });
  if (f.sourceNamespace) source = mergePeer(source, { namespace: f.sourceNamespace });
  if (f.destinationWorkload) destination = mergePeer(destination, { workload: f.destinationWorkload });
  if (f.destinationNamespace) destination = mergePeer(destination, { namespace: f.destinationNamespace });
  source = withPrincipal(source, f.sourcePrincipal);
  destination = withPrincipal(destination, f.destinationPrincipal);

  const method = f.request?.method && f.request.method !== '-' ? f.request.method : undefined;
  const rec: AccessLogRecord = {
    kind: f.kind,
    format: f.format,
    reporter,
    direction,
    tcp: method === undefined,
    responseCode: f.responseCode,
    responseFlags: f.responseFlags,
    mtlsFailure: false,
    authzDenied: false,
    authFailed: false,
    source,
    destination,
  };
  if (f.malformed) rec.malformed = true;
  const start = timeOf(f.startTime);
  if (start !== undefined) rec.startTime = start;
  if (method) rec.method = clip(method);
  if (f.request?.path && f.request.path !== '-') rec.path = clip(f.request.path);
  if (f.request?.protocol && f.request.protocol !== '-') rec.protocol = clip(f.request.protocol);
  if (f.authority) rec.authority = clip(f.authority);
  if (f.userAgent) rec.userAgent = clip(f.userAgent);
  if (f.requestId) rec.requestId = clip(f.requestId);
  if (f.details) rec.responseCodeDetails = clip(f.details);
  if (f.termination) rec.connectionTerminationDetails = clip(f.termination);
  if (f.transportFailure) rec.upstreamTransportFailureReason = clip(f.transportFailure);
  if (f.upstreamCluster) rec.upstreamCluster = clip(f.upstreamCluster);
  if (f.forwardedFor)
    rec.forwardedFor = f.forwardedFor
      .split(',')
      .slice(0, 8)
      .map((s) => clip(s.trim()));

  if (f.responseFlags.includes('NR') && f.details === 'filter_chain_not_found') {
    rec.mtlsFailure = true;
    rec.tlsSide = 'server';
    rec.tlsReason = 'filter_chain_not_found';
  } else {
    const tls = tlsFailureIn(f.transportFailure, f.details, f.termination);
    if (tls) {
      rec.mtlsFailure = true;
      rec.tlsSide = reporter === 'destination' ? 'server' : 'client';
      rec.tlsReason = tls;
    }
  }
  const rbac = rbacDenial(f.details) ?? rbacDenial(f.termination);
  if (rbac) {
    rec.authzDenied = true;
    rec.authzEngine = 'rbac';
    rec.policy = rbac.policy;
    if (rbac.rule !== undefined) rec.policyRule = rbac.rule;
  } else if (f.details === 'ext_authz_denied' || (f.responseFlags.includes('UAEX') && f.details !== 'ext_authz_error')) {
    rec.authzDenied = true;
    rec.authzEngine = 'ext_authz';
  }
  if (!rec.authzDenied && (f.responseCode === 401 || f.responseCode === 403)) rec.authFailed = true;
  return rec;
}
