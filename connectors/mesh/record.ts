/**
 * The structured record every mesh proxy parser produces (Istio and Envoy access logs, Linkerd
 * proxy lines), and the classification shared by all of them: was this a failed mutual TLS
 * handshake, a denial by an authorization policy, or a plain 401/403 between services?
 */
import type { MeshPeer } from './identity.js';

/** One proxy log line, parsed. Fields a format does not carry are absent. */
export interface AccessLogRecord {
  kind: 'istio' | 'envoy' | 'linkerd';
  format: 'text' | 'json';
  /** Which proxy wrote the line: the caller's, the callee's, a gateway's, or a standalone proxy's. */
  reporter: 'source' | 'destination' | 'gateway' | 'proxy';
  direction: 'inbound' | 'outbound' | 'unknown';
  /** A connection-level (TCP) line rather than an HTTP request. */
  tcp: boolean;
  /** Time the proxy wrote into the line, ms since epoch (Linkerd logs uptime only: absent). */
  startTime?: number;
  method?: string;
  path?: string;
  protocol?: string;
  authority?: string;
  userAgent?: string;
  requestId?: string;
  /** HTTP status; 0 when no response was sent (TCP, reset). */
  responseCode?: number;
  /** Envoy response flags (`UF`, `URX`, `NR`...); empty when `-`. */
  responseFlags: string[];
  responseCodeDetails?: string;
  connectionTerminationDetails?: string;
  upstreamTransportFailureReason?: string;
  upstreamCluster?: string;
  /**
   * TEXT lines only: quotes inside client-controlled fields (user agent, path, authority) broke the
   * field layout, so the addresses after them were dropped rather than trusted.
   */
  malformed?: boolean;
  /** X-Forwarded-For as sent by the client: informative only, never used for attribution. */
  forwardedFor?: string[];
  /** The connection failed mutual TLS: plaintext refused, or a certificate not trusted. */
  mtlsFailure: boolean;
  /** Which side saw the TLS failure: the server refusing a client, or the client refusing a server. */
  tlsSide?: 'server' | 'client';
  /** The short reason (`filter_chain_not_found`, `CERTIFICATE_VERIFY_FAILED`, `UnknownIssuer`...). */
  tlsReason?: string;
  /** A mesh authorization policy refused the call. */
  authzDenied: boolean;
  authzEngine?: 'rbac' | 'ext_authz' | 'linkerd';
  /** The policy that denied: `<ns>/<name>` (Istio), `none` (no ALLOW policy matched), or a Linkerd server. */
  policy?: string;
  /** Index of the matched rule in an Istio AuthorizationPolicy. */
  policyRule?: number;
  /** A 401/403 answered by the application itself (not by a mesh policy). */
  authFailed: boolean;
  source: MeshPeer;
  destination: MeshPeer;
  /** Linkerd: log level, the message before its fields, and the `error=` field. */
  level?: string;
  message?: string;
  error?: string;
}

/** Longest string copied from a line into a record: paths and user agents are attacker-chosen. */
export const MAX_FIELD = 1024;

/** Truncates a field to {@link MAX_FIELD} characters. */
export const clip = (s: string): string => (s.length > MAX_FIELD ? `${s.slice(0, MAX_FIELD)}…` : s);

const TLS_MARKERS =
  /(CERTIFICATE_VERIFY_FAILED|WRONG_VERSION_NUMBER|TLSV1_ALERT_[A-Z_]+|SSLV3_ALERT_[A-Z_]+|TLSV1_ALERT|verify_cert_failed|TLS[_ ]error|UnknownIssuer|BadCertificate|NotValidForName|invalid peer certificate|handshake failure)/i;
// Most specific first: the reason an operator acts on.
const TLS_REASONS = ['CERTIFICATE_VERIFY_FAILED', 'WRONG_VERSION_NUMBER', 'UnknownIssuer', 'BadCertificate', 'NotValidForName', 'handshake failure'];

/** The TLS failure named in free text (Envoy details, transport failure reason, Linkerd errors), if any. */
export function tlsFailureIn(...texts: (string | undefined)[]): string | undefined {
  for (const t of texts) {
    if (!t) continue;
    const m = TLS_MARKERS.exec(t);
    if (!m) continue;
    for (const r of TLS_REASONS) if (t.includes(r)) return r;
    const alert = /(TLSV1_ALERT_[A-Z_]+|SSLV3_ALERT_[A-Z_]+)/.exec(t);
    if (alert) return alert[1]!;
    return m[1]!.startsWith('TLS') ? 'TLS_error' : m[1]!;
  }
  return undefined;
}

const RBAC_POLICY = /^rbac_access_denied_matched_policy\[(?:ns\[([^\]]*)\]-policy\[([^\]]*)\]-rule\[(\d+)\]|(none))\]/;

/** An Istio/Envoy RBAC denial in response-code or connection-termination details. */
export function rbacDenial(details: string | undefined): { policy: string; rule?: number } | undefined {
  if (!details || !details.startsWith('rbac_access_denied')) return undefined;
  const m = RBAC_POLICY.exec(details);
  if (!m) return { policy: 'unknown' };
  if (m[4]) return { policy: 'none' };
  return { policy: `${m[1]}/${m[2]}`, rule: Number(m[3]) };
}
