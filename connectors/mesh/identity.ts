/**
 * Who is at either end of a mesh connection: addresses, Kubernetes service host names, workload
 * identities (SPIFFE ids, Linkerd identities) and the pod that wrote the log line, named by the
 * labels its log shipper attached. Pure functions; nothing here throws.
 */

/** One end of a connection, as far as a log line tells. */
export interface MeshPeer {
  ip?: string;
  port?: number;
  /** Pod name: known only for the pod that wrote the line (from its stream labels). */
  pod?: string;
  /** Workload (app or service) name. */
  workload?: string;
  namespace?: string;
  /** A host name that is not a cluster service (external hosts, short authorities). */
  host?: string;
  /** The peer's identity as logged: a SPIFFE id or a Linkerd identity. */
  principal?: string;
  /** The service account the principal names. */
  serviceAccount?: { namespace: string; name: string };
}

/** The pod that wrote a log line, from its stream labels. */
export interface Emitter {
  namespace?: string;
  pod?: string;
  workload?: string;
  container?: string;
  /** The pod is a mesh gateway (ingress/egress), not the source or destination of its traffic. */
  gateway: boolean;
}

// Label names used by Promtail/Alloy Kubernetes discovery, the OpenTelemetry collector and Fluent Bit.
const NS_LABELS = ['namespace', 'k8s_namespace_name', 'kubernetes_namespace', 'namespace_name', 'kubernetes_namespace_name'];
const POD_LABELS = ['pod', 'k8s_pod_name', 'pod_name', 'kubernetes_pod_name'];
const CONTAINER_LABELS = ['container', 'k8s_container_name', 'container_name', 'kubernetes_container_name'];
const WORKLOAD_LABELS = ['app', 'app_kubernetes_io_name', 'k8s_deployment_name', 'k8s_statefulset_name', 'k8s_daemonset_name', 'workload', 'service_name'];

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** True for a valid Kubernetes namespace name. */
export const isNamespaceName = (s: string): boolean => DNS_LABEL.test(s);
/** True for a valid Kubernetes object name (DNS subdomain). */
export const isObjectName = (s: string): boolean => DNS_SUBDOMAIN.test(s);

function firstLabel(labels: Readonly<Record<string, string>>, names: readonly string[], valid: (s: string) => boolean): string | undefined {
  for (const n of names) {
    const v = labels[n];
    if (typeof v === 'string' && v !== '' && valid(v)) return v;
  }
  return undefined;
}

// Deployment pods: <name>-<pod-template-hash>-<5>; DaemonSet/Job pods: <name>-<5>; StatefulSet: <name>-<ordinal>.
// Generated suffixes use Kubernetes' SafeEncodeString alphabet (no vowels), so `node-exporter-x7k2p` keeps `exporter`.
const REPLICASET_POD = /^(.+)-[bcdfghjklmnpqrstvwxz2456789]{6,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$/;
const SHORT_SUFFIX_POD = /^(.+)-(?:[bcdfghjklmnpqrstvwxz2456789]{5}|\d{1,4})$/;

/** A pod's workload name guessed from its generated name (`web-7d9c4b5f6-xk2pq` → `web`). */
export function workloadFromPod(pod: string): string {
  return REPLICASET_POD.exec(pod)?.[1] ?? SHORT_SUFFIX_POD.exec(pod)?.[1] ?? pod;
}

/** The pod that wrote a line, from its stream labels; values that are not valid names are ignored. */
export function emitterFromLabels(labels: Readonly<Record<string, string>>): Emitter {
  const namespace = firstLabel(labels, NS_LABELS, isNamespaceName);
  const pod = firstLabel(labels, POD_LABELS, isObjectName);
  const container = firstLabel(labels, CONTAINER_LABELS, isObjectName);
  const named = firstLabel(labels, WORKLOAD_LABELS, (v) => isObjectName(v) && v !== 'unknown_service');
  const workload = named ?? (pod ? workloadFromPod(pod) : undefined);
  const istio = labels.istio ?? '';
  const gateway = /gateway/.test(istio) || /gateway/.test(named ?? '') || /(^|-)(ingress|egress)gateway(-|$)/.test(pod ?? '');
  const out: Emitter = { gateway };
  if (namespace) out.namespace = namespace;
  if (pod) out.pod = pod;
  if (workload) out.workload = workload;
  if (container) out.container = container;
  return out;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const IPV6 = /^[0-9a-fA-F:.]{2,45}$/;

/** True for a literal IPv4 or IPv6 address. */
export function isIp(s: string): boolean {
  const m = IPV4.exec(s);
  if (m) return m.slice(1).every((o) => Number(o) <= 255);
  return s.includes(':') && IPV6.test(s);
}

/** Splits `10.0.0.1:8080` or `[fd00::1]:80` into address and port; undefined for anything else. */
export function splitHostPort(addr: string): { ip: string; port: number } | undefined {
  let host: string;
  let port: string;
  if (addr.startsWith('[')) {
    const close = addr.indexOf(']:');
    if (close < 0) return undefined;
    host = addr.slice(1, close);
    port = addr.slice(close + 2);
  } else {
    const i = addr.lastIndexOf(':');
    if (i <= 0) return undefined;
    host = addr.slice(0, i);
    port = addr.slice(i + 1);
  }
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535 || !isIp(host)) return undefined;
  return { ip: host, port: Number(port) };
}

const SVC_HOST = /^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)\.([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.svc(\.[a-z0-9.-]+)?)?\.?$/;

/**
 * A cluster service named by a host (`payments.shop.svc.cluster.local`, `payments.shop`) as
 * workload and namespace; other hosts (external names, bare `payments`) are returned as `host`.
 */
export function peerFromHost(hostPort: string): MeshPeer {
  const hp = splitHostPort(hostPort);
  if (hp) return { ip: hp.ip, port: hp.port };
  const host = hostPort.replace(/:\d{1,5}$/, '').toLowerCase();
  if (isIp(host)) return { ip: host };
  const m = SVC_HOST.exec(host);
  // Two labels without `.svc` may be an external domain (`httpbin.org`): only trust the pair with .svc.
  if (m && m[5]) return { workload: m[1]!, namespace: m[3]! };
  return host && /^[a-z0-9.-]{1,253}$/.test(host) ? { host } : {};
}

const SPIFFE_SA = /^spiffe:\/\/[^/\s]+\/ns\/([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)\/sa\/([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)$/;
// Linkerd: <sa>.<ns>.serviceaccount.identity.<control-plane-ns>.<trust-domain>; namespaces have no dots, names may.
const LINKERD_ID = /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)\.([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)\.serviceaccount\.identity\.[a-z0-9.-]+$/;

/** The service account a workload identity names: a SPIFFE id (Istio) or a Linkerd identity. */
export function serviceAccountOf(principal: string): { namespace: string; name: string } | undefined {
  const s = SPIFFE_SA.exec(principal);
  if (s) return { namespace: s[1]!, name: s[3]! };
  const l = LINKERD_ID.exec(principal);
  if (l) return { namespace: l[3]!, name: l[1]! };
  return undefined;
}

/** Adds a principal (and the service account it names) to a peer, when it is a recognized identity. */
export function withPrincipal(peer: MeshPeer, principal: string | undefined): MeshPeer {
  if (!principal) return peer;
  const sa = serviceAccountOf(principal);
  if (!sa) return peer;
  return { ...peer, principal, serviceAccount: sa, namespace: peer.namespace ?? sa.namespace };
}

/** The emitter as a peer (namespace, pod, workload). */
export function peerFromEmitter(e: Emitter): MeshPeer {
  const p: MeshPeer = {};
  if (e.namespace) p.namespace = e.namespace;
  if (e.pod) p.pod = e.pod;
  if (e.workload) p.workload = e.workload;
  return p;
}

/** Fills the fields of `base` that are missing from `extra`. */
export function mergePeer(base: MeshPeer, extra: MeshPeer): MeshPeer {
  const out: MeshPeer = { ...base };
  for (const [k, v] of Object.entries(extra) as [keyof MeshPeer, never][]) if (v !== undefined && out[k] === undefined) out[k] = v;
  return out;
}
