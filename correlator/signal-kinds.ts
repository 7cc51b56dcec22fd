/**
 * The signal kinds that detection may emit and correlation may count. A rule names one of these;
 * `kubevigil rules lint` rejects any other, so a typo cannot silently produce signals no correlation
 * rule ever sees.
 */
export const SIGNAL_KINDS = {
  'rbac.denied': 'A request refused by authorization (RBAC/ABAC/webhook), decision forbid or HTTP 403.',
  'auth.unauthenticated': 'A request rejected for missing or invalid credentials (HTTP 401).',
  'auth.anonymous_allowed': 'A request from system:anonymous that was allowed.',
  'auth.impersonation': 'A request made while impersonating another identity.',
  'rbac.permission_enumeration': 'A SelfSubjectAccessReview / SelfSubjectRulesReview: an identity asking what it may do.',
  'rbac.cluster_admin_binding': 'A binding that grants cluster-admin (or system:masters-like) power.',
  'rbac.wildcard_role': 'A Role or ClusterRole granting wildcard verbs or resources.',
  'rbac.binding_change': 'A create/update/patch of a RoleBinding or ClusterRoleBinding.',
  'rbac.escalation_attempt': 'An attempt to gain privileges: binding changes, escalate/bind/impersonate verbs.',
  'token.request_other_sa': 'A TokenRequest for a service account other than the requester.',
  'secret.read': 'A single secret read (observation; counted by correlation).',
  'secret.read_cross_namespace': "A secret read by a service account outside its own namespace.",
  'secret.list_cluster_wide': 'Secrets listed or watched across all namespaces.',
  'secret.list': 'Secrets listed or watched in one namespace (observation).',
  'secret.deleted': 'A secret deleted.',
  'configmap.credentials': 'A ConfigMap created or changed with values that look like credentials.',
  'pod.exec': 'exec into a container.',
  'pod.attach': 'attach to a container.',
  'pod.portforward': 'port-forward to a pod.',
  'pod.privileged': 'A pod with a privileged container, or privilege escalation capabilities.',
  'pod.host_namespace': 'A pod sharing the host network, PID or IPC namespace.',
  'pod.hostpath': 'A pod mounting a sensitive hostPath.',
  'pod.default_sa': "A workload running as its namespace's default service account.",
  'node.proxy': 'Access to the nodes/proxy subresource (kubelet API through the apiserver).',
  'admission.denied': 'A request denied by an admission controller (Gatekeeper, Kyverno, Pod Security, other webhook).',
  'admission.psa_violation': 'A request that violates the Pod Security audit/warn level (allowed, but flagged).',
  'mesh.security_weakened': 'A mesh security setting weakened (PeerAuthentication PERMISSIVE/DISABLE).',
  'mesh.policy_deleted': 'A mesh AuthorizationPolicy or PeerAuthentication deleted.',
  'audit.tampering': 'Events deleted, or audit configuration touched: covering tracks.',
  'mtls.failed': 'A connection that failed mutual TLS (plaintext or bad certificate).',
  'mesh.authz_denied': 'A mesh proxy denied a call by AuthorizationPolicy.',
  'service.auth_failed': 'A service-to-service call answered 401/403 (trace span, proxy log or an alert on their rate).',
  'alert.auth_failures': 'An alert on a spike of API 401/403 responses.',
  'alert.restart_storm': 'An alert on pods restarting repeatedly (crash loops, OOM kills).',
  'alert.certificate_expiry': 'An alert on a certificate about to expire or expired.',
  'alert.policy_violation': 'An alert on policy violations (Gatekeeper audit, Kyverno reports).',
  'alert.security': 'Another security-relevant alert mapped by a rule.',
} as const;

/** A signal kind, one of the keys of {@link SIGNAL_KINDS}. */
export type SignalKind = keyof typeof SIGNAL_KINDS;

/** True when `value` is a known signal kind. */
export function isSignalKind(value: unknown): value is SignalKind {
  return typeof value === 'string' && Object.hasOwn(SIGNAL_KINDS, value);
}
