/**
 * Entity keys: the stable strings that name an identity or object across sources, so that a signal
 * from the audit log and one from a mesh log about the same pod meet on the same key. Every key is
 * built here and nowhere else.
 */

/** The kinds of entity kubevigil names. */
export type EntityType = 'sa' | 'user' | 'group' | 'node' | 'pod' | 'workload' | 'ns' | 'ip' | 'secret' | 'binding' | 'role' | 'policy';

/** Key of a service account: `sa:<ns>/<name>`. */
export const saKey = (ns: string, name: string): string => `sa:${ns}/${name}`;
/** Key of a human or external user: `user:<name>`. */
export const userKey = (name: string): string => `user:${name}`;
/** Key of a node identity: `node:<name>`. */
export const nodeKey = (name: string): string => `node:${name}`;
/** Key of a pod: `pod:<ns>/<name>`. */
export const podKey = (ns: string, name: string): string => `pod:${ns}/${name}`;
/** Key of a workload that owns pods: `workload:<ns>/<Kind>/<name>` (from the cluster inventory). */
export const workloadKey = (ns: string, kind: string, name: string): string => `workload:${ns}/${kind}/${name}`;
/** Key of a namespace: `ns:<name>`. */
export const nsKey = (name: string): string => `ns:${name}`;
/** Key of a network address: `ip:<addr>`. */
export const ipKey = (addr: string): string => `ip:${addr}`;
/** Key of a secret: `secret:<ns>/<name>`. */
export const secretKey = (ns: string, name: string): string => `secret:${ns}/${name}`;
/** Key of a (Cluster)RoleBinding: `binding:ClusterRoleBinding/<name>` or `binding:RoleBinding/<ns>/<name>`. */
export const bindingKey = (kind: string, name: string, ns?: string): string => (ns ? `binding:${kind}/${ns}/${name}` : `binding:${kind}/${name}`);
/** Key of a (Cluster)Role: `role:ClusterRole/<name>` or `role:Role/<ns>/<name>`. */
export const roleKey = (kind: string, name: string, ns?: string): string => (ns ? `role:${kind}/${ns}/${name}` : `role:${kind}/${name}`);
/** Key of an admission or mesh policy: `policy:<engine>/<name>`. */
export const policyKey = (engine: string, name: string): string => `policy:${engine}/${name}`;

/** The type part of an entity key (`sa` for `sa:ns/name`), or undefined for a malformed key. */
export function entityType(key: string): EntityType | undefined {
  const i = key.indexOf(':');
  return i > 0 ? (key.slice(0, i) as EntityType) : undefined;
}

/** Who acted, normalized from whatever the source called it. */
export interface Actor {
  /** Stable entity key, e.g. `sa:frontend/frontend-sa`. */
  key: string;
  type: 'serviceaccount' | 'user' | 'node' | 'anonymous' | 'pod' | 'ip';
  /** Name as the source gave it (the raw Kubernetes username for audit events). */
  name: string;
  /** Namespace of a service account or pod. */
  namespace?: string;
}

const SA_PREFIX = 'system:serviceaccount:';
const NODE_PREFIX = 'system:node:';

/** Normalizes a Kubernetes username (as in audit `user.username`) to an {@link Actor}. */
export function actorFromUsername(username: string): Actor {
  if (username.startsWith(SA_PREFIX)) {
    const rest = username.slice(SA_PREFIX.length);
    const i = rest.indexOf(':');
    if (i > 0 && i < rest.length - 1) {
      const namespace = rest.slice(0, i);
      const name = rest.slice(i + 1);
      return { key: saKey(namespace, name), type: 'serviceaccount', name: username, namespace };
    }
  }
  if (username.startsWith(NODE_PREFIX) && username.length > NODE_PREFIX.length) {
    return { key: nodeKey(username.slice(NODE_PREFIX.length)), type: 'node', name: username };
  }
  if (username === 'system:anonymous' || username === '') {
    return { key: userKey('system:anonymous'), type: 'anonymous', name: 'system:anonymous' };
  }
  return { key: userKey(username), type: 'user', name: username };
}

const SPIFFE = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/([^/]+)$/;

/** A mesh identity (`spiffe://<trust-domain>/ns/<ns>/sa/<sa>`) as the service account it names, or undefined. */
export function actorFromSpiffe(id: string): Actor | undefined {
  const m = SPIFFE.exec(id);
  if (!m) return undefined;
  return { key: saKey(m[1]!, m[2]!), type: 'serviceaccount', name: `system:serviceaccount:${m[1]}:${m[2]}`, namespace: m[1]! };
}

/** A workload known only by pod name (mesh logs, alert labels, trace resources). */
export function actorFromPod(ns: string, name: string): Actor {
  return { key: podKey(ns, name), type: 'pod', name, namespace: ns };
}

/** A workload known only by its address; identity resolution may later name its service account. */
export function actorFromIp(addr: string): Actor {
  return { key: ipKey(addr), type: 'ip', name: addr };
}
