/**
 * The signal kinds that detection may emit and correlation may count. A rule names one of these;
 * `kubevigil rules lint` rejects any other, so a typo cannot silently produce signals no correlation
 * rule ever sees.
 *
 * Each kind also says what the rest of the core needs to know about it: its *traits* (below), which
 * root-cause analysis, incident severity and the remediation planners query with {@link hasTrait},
 * and its *phrase*, the words a root-cause sentence uses for it. No other module lists kind names,
 * so a new kind takes part in all of them by declaring its traits here.
 */

/** What a trait means; the modules that ask for it are named in brackets. */
export const KIND_TRAITS = {
  'needs-power': 'Allowed, it shows the actor had real power: the binding the API server names for it is the enabler (root cause).',
  'high-impact': "Allowed, it is a sensitive action that raises an incident's severity by a level, given three kinds or two correlations (incidents).",
  'missing-control': 'Allowed, it shows that no control refused what one should have (root cause).',
  'mesh-weakening': "It weakens the mesh's security: a policy relaxed or deleted (root cause).",
  'mtls-gap': 'Mutual TLS failed or was weakened in its target namespace (mesh planners).',
  'mtls-failure': 'A connection that failed mutual TLS (root cause).',
  'service-call': 'A call from one service to another; denied, the callee or the mesh refused it (root cause).',
  'authz-refusal': 'The kind is the authorization refusal itself: what was attempted is in its target, not its kind (root cause).',
  'admission-refusal': 'The kind is the admission refusal itself (root cause).',
  'secret-read': "A named secret's value read (root cause, credential and mesh planners).",
  'secret-list': "Secrets listed or watched: the response carries every secret's data (root cause, credential planner).",
  'cluster-wide': 'Across every namespace (root cause, credential planner).',
  'privileged-container': 'A pod with a privileged container (admission planner).',
  'host-namespace': 'A pod sharing the host network, PID or IPC namespace (admission planner).',
  'host-path': 'A pod mounting a hostPath volume (admission planner).',
  'credential-source':
    "Where the actor's credential was used from or minted: an address outside the cluster, a human tool on a pod's token, a long-lived token, a client certificate (root cause).",
  'activity-trail': 'A record of a change, not a suspicion: it never opens an incident alone and only shows in the timeline (incidents).',
} as const;

/** A trait of a signal kind, one of the keys of {@link KIND_TRAITS}. */
export type KindTrait = keyof typeof KIND_TRAITS;

/** What a signal kind is. */
export interface KindDefinition {
  description: string;
  traits: readonly KindTrait[];
  /** How an attempt of this kind reads in a sentence ("exec into pods"); without one, the kind's name. */
  phrase?: string;
  /** How an admission policy's denial of this kind reads, where that differs from {@link phrase}. */
  admissionPhrase?: string;
}

export const SIGNAL_KINDS = {
  'rbac.denied': { description: 'A request refused by authorization (RBAC/ABAC/webhook), decision forbid or HTTP 403.', traits: ['authz-refusal'] },
  'auth.unauthenticated': {
    description: 'A request rejected for missing or invalid credentials (HTTP 401).',
    traits: [],
    phrase: 'requests with bad credentials',
  },
  'auth.anonymous_allowed': { description: 'A request from system:anonymous that was allowed.', traits: ['missing-control'], phrase: 'anonymous requests' },
  'auth.impersonation': { description: 'A request made while impersonating another identity.', traits: [], phrase: 'impersonation' },
  'rbac.permission_enumeration': {
    description: 'A SelfSubjectAccessReview / SelfSubjectRulesReview: an identity asking what it may do.',
    traits: [],
    phrase: 'enumerating its own permissions',
  },
  'rbac.cluster_admin_binding': {
    description: 'A binding that grants cluster-admin (or system:masters-like) power.',
    traits: ['needs-power', 'high-impact'],
    phrase: 'a cluster-admin binding',
  },
  'rbac.wildcard_role': { description: 'A Role or ClusterRole granting wildcard verbs or resources.', traits: [], phrase: 'wildcard roles' },
  'rbac.binding_change': { description: 'A create/update/patch of a RoleBinding or ClusterRoleBinding.', traits: [], phrase: 'binding changes' },
  'rbac.escalation_attempt': {
    description: 'An attempt to gain privileges: binding changes, escalate/bind/impersonate verbs.',
    traits: ['needs-power'],
    phrase: 'RBAC escalation',
  },
  'token.request_other_sa': {
    description: 'A TokenRequest for a service account other than the requester.',
    traits: ['needs-power', 'high-impact'],
    phrase: 'tokens for other service accounts',
  },
  'secret.read': { description: 'A single secret read (observation; counted by correlation).', traits: ['needs-power', 'secret-read'], phrase: 'secret reads' },
  'secret.read_cross_namespace': {
    description: 'A secret read by a service account outside its own namespace.',
    traits: ['needs-power', 'high-impact', 'secret-read'],
    phrase: 'secret reads in other namespaces',
  },
  'secret.list_cluster_wide': {
    description: 'Secrets listed or watched across all namespaces.',
    traits: ['needs-power', 'high-impact', 'secret-list', 'cluster-wide'],
    phrase: 'listing secrets cluster-wide',
  },
  'secret.list': {
    description: 'Secrets listed or watched in one namespace (observation).',
    traits: ['needs-power', 'secret-list'],
    phrase: 'listing secrets',
  },
  'secret.deleted': { description: 'A secret deleted.', traits: [], phrase: 'deleting secrets' },
  'configmap.credentials': {
    description: 'A ConfigMap created or changed with values that look like credentials.',
    traits: ['needs-power'],
    phrase: 'credentials written into ConfigMaps',
  },
  'pod.exec': { description: 'exec into a container.', traits: ['needs-power', 'high-impact'], phrase: 'exec into pods' },
  'pod.attach': { description: 'attach to a container.', traits: ['needs-power', 'high-impact'], phrase: 'attach to pods' },
  'pod.portforward': { description: 'port-forward to a pod.', traits: ['needs-power'], phrase: 'port-forward' },
  'pod.privileged': {
    description: 'A pod with a privileged container, or privilege escalation capabilities.',
    traits: ['high-impact', 'missing-control', 'privileged-container'],
    phrase: 'a privileged pod',
  },
  'pod.host_namespace': {
    description: 'A pod sharing the host network, PID or IPC namespace.',
    traits: ['high-impact', 'missing-control', 'host-namespace'],
    phrase: 'a pod in host namespaces',
  },
  'pod.hostpath': { description: 'A pod mounting a sensitive hostPath.', traits: ['high-impact', 'missing-control', 'host-path'], phrase: 'a hostPath mount' },
  'pod.default_sa': {
    description: "A workload running as its namespace's default service account.",
    traits: [],
    phrase: 'workloads on the default service account',
  },
  'node.proxy': {
    description: 'Access to the nodes/proxy subresource (kubelet API through the apiserver).',
    traits: ['needs-power', 'high-impact'],
    phrase: 'the kubelet API via nodes/proxy',
  },
  // Admission controllers here refuse pods: a policy's denial reads as the privileged pod it refused.
  'admission.denied': {
    description: 'A request denied by an admission controller (Gatekeeper, Kyverno, Pod Security, other webhook).',
    traits: ['admission-refusal'],
    admissionPhrase: 'a privileged pod',
  },
  'admission.psa_violation': {
    description: 'A request that violates the Pod Security audit/warn level (allowed, but flagged).',
    traits: [],
    phrase: 'Pod Security violations',
  },
  'mesh.security_weakened': {
    description: 'A mesh security setting weakened (PeerAuthentication PERMISSIVE/DISABLE).',
    traits: ['mesh-weakening', 'mtls-gap'],
    phrase: 'weakening mutual TLS',
  },
  'mesh.policy_deleted': {
    description: 'A mesh AuthorizationPolicy or PeerAuthentication deleted.',
    traits: ['mesh-weakening'],
    phrase: 'deleting mesh policies',
  },
  'audit.tampering': { description: 'Events deleted, or audit configuration touched: covering tracks.', traits: [], phrase: 'deleting events' },
  'mtls.failed': {
    description: 'A connection that failed mutual TLS (plaintext or bad certificate).',
    traits: ['mtls-failure', 'mtls-gap'],
    phrase: 'plaintext connections',
  },
  'mesh.authz_denied': { description: 'A mesh proxy denied a call by AuthorizationPolicy.', traits: ['service-call'], phrase: 'calls the mesh policy forbids' },
  'service.auth_failed': {
    description: 'A service-to-service call answered 401/403 (trace span, proxy log or an alert on their rate).',
    traits: ['service-call'],
    phrase: 'calls to other services',
  },
  'auth.token_misuse': {
    description:
      "A service account's token used from outside the cluster's networks, or by a human tool (kubectl, curl) instead of the workload: the usual sign of a stolen token.",
    traits: ['credential-source', 'high-impact'],
    phrase: 'a stolen service-account token',
  },
  'token.long_lived': {
    description: 'A TokenRequest for a token valid far longer than the default hour, or for a kube-system controller: a durable credential.',
    traits: ['needs-power', 'high-impact', 'credential-source'],
    phrase: 'long-lived tokens',
  },
  'certificate.privileged_csr': {
    description: 'A CertificateSigningRequest for a client certificate of a privileged identity (system:masters, control-plane components, nodes).',
    traits: ['needs-power', 'high-impact', 'credential-source'],
    phrase: 'client certificates for privileged identities',
  },
  'certificate.csr_approved': {
    description: 'A CertificateSigningRequest approved outside the controllers that normally approve them (self-approval above all).',
    traits: ['needs-power', 'high-impact', 'credential-source'],
    phrase: 'approving certificate requests',
  },
  'admission.webhook_tampered': {
    description:
      'An admission webhook created, weakened (failurePolicy Ignore, exempted namespaces, external URL) or deleted: controls switched off or a mutating hook planted.',
    traits: ['needs-power', 'high-impact'],
    phrase: 'admission webhook changes',
  },
  'rbac.dangerous_role': {
    description:
      'A Role or ClusterRole written with powers that lead to escalation: pods/exec, pods/attach, nodes/proxy, serviceaccounts/token, escalate, bind, impersonate, or secrets through aggregation.',
    traits: ['needs-power'],
    phrase: 'roles with escalation powers',
  },
  'rbac.system_role_modified': {
    description: 'A built-in system: ClusterRole or binding changed or deleted.',
    traits: ['needs-power', 'high-impact'],
    phrase: 'system roles changed',
  },
  'workload.system_namespace': {
    description:
      'A pod, workload or service account created in kube-system (or kube-public) by an identity that is not a system component, or named after one.',
    traits: ['needs-power', 'high-impact'],
    phrase: 'workloads planted in kube-system',
  },
  'pod.ephemeral_container': {
    description: 'An ephemeral container added to a running pod (kubectl debug): a shell without the exec permission.',
    traits: ['needs-power', 'high-impact'],
    phrase: 'debug containers in pods',
  },
  'workload.tampered': {
    description: 'A container, image, command or sidecar patched into an existing Deployment, DaemonSet or StatefulSet.',
    traits: ['needs-power'],
    phrase: 'changed workloads',
  },
  'workload.persistence': {
    description: 'A new CronJob, DaemonSet or Job by an identity that does not normally deploy: code that keeps running.',
    traits: ['needs-power'],
    phrase: 'scheduled or node-wide workloads',
  },
  'config.critical_changed': {
    description: 'A cluster-critical ConfigMap changed: CoreDNS (name resolution for every pod) or aws-auth (who is cluster-admin on EKS).',
    traits: ['needs-power', 'high-impact'],
    phrase: 'cluster DNS or access configuration changes',
  },
  'network.exposure': {
    description: 'A service opened outside the cluster (NodePort, LoadBalancer) or an Ingress without TLS.',
    traits: ['needs-power'],
    phrase: 'services exposed outside the cluster',
  },
  'recon.enumeration': {
    description: 'Discovery: attack tooling recognised by its user agent, or a workload identity listing cluster inventory.',
    traits: [],
    phrase: 'enumeration',
  },
  'activity.change': {
    description: "A change recorded for the timeline (object created, changed or deleted), as Falco's activity-trail rules do.",
    traits: ['activity-trail'],
    phrase: 'changes',
  },
  // Runtime behaviour inside containers, as Falco sees it on the node.
  'runtime.shell': {
    description: 'A shell with a terminal started in a container (Falco: Terminal shell in container): someone working inside a workload by hand.',
    traits: ['high-impact'],
    phrase: 'a shell in a container',
  },
  'runtime.remote_shell': {
    description: 'A shell or command bound to a network connection in a container (netcat -e, a reverse shell).',
    traits: ['high-impact'],
    phrase: 'a reverse shell',
  },
  'runtime.sensitive_read': {
    description: 'A sensitive file (shadow, sudoers, PAM, keys) read in a container, or a symlink planted over one.',
    traits: ['high-impact'],
    phrase: 'reading sensitive files in a container',
  },
  'runtime.credential_search': {
    description: 'A search for private keys or passwords (find, grep) in a container.',
    traits: [],
    phrase: 'searching for keys and passwords',
  },
  'runtime.drift': {
    description: 'A binary written below a binary directory, or a new binary executed, in a running container: code the image did not ship.',
    traits: ['high-impact'],
    phrase: 'new binaries in a running container',
  },
  'runtime.metadata_access': {
    description: "A container contacting the cloud provider's instance metadata service (169.254.169.254): the node's cloud credentials.",
    traits: ['high-impact'],
    phrase: 'the cloud metadata service',
  },
  'runtime.outbound_connection': {
    description: 'An outbound connection from a container to an unexpected or known-bad destination.',
    traits: [],
    phrase: 'unexpected outbound connections',
  },
  'runtime.privileged_container': {
    description: 'A container started privileged or with sensitive host mounts, seen on the node.',
    traits: ['high-impact'],
    phrase: 'a privileged container',
  },
  'runtime.log_cleared': {
    description: 'Log files truncated or deleted in a container or on a node: covering tracks.',
    traits: [],
    phrase: 'clearing logs',
  },
  'runtime.alert': {
    description: 'Another Falco alert, mapped by its priority.',
    traits: [],
    phrase: 'runtime alerts',
  },
  'alert.auth_failures': { description: 'An alert on a spike of API 401/403 responses.', traits: [], phrase: 'API 401/403 spikes' },
  'alert.restart_storm': { description: 'An alert on pods restarting repeatedly (crash loops, OOM kills).', traits: [], phrase: 'restart storms' },
  'alert.certificate_expiry': { description: 'An alert on a certificate about to expire or expired.', traits: [], phrase: 'expiring certificates' },
  'alert.policy_violation': { description: 'An alert on policy violations (Gatekeeper audit, Kyverno reports).', traits: [], phrase: 'policy violations' },
  'alert.security': { description: 'Another security-relevant alert mapped by a rule.', traits: [], phrase: 'security alerts' },
} as const satisfies Record<string, KindDefinition>;

/** A signal kind, one of the keys of {@link SIGNAL_KINDS}. */
export type SignalKind = keyof typeof SIGNAL_KINDS;

/** True when `value` is a known signal kind. */
export function isSignalKind(value: unknown): value is SignalKind {
  return typeof value === 'string' && Object.hasOwn(SIGNAL_KINDS, value);
}

// Partial: a timeline restored from the store may hold a kind this version no longer knows.
const DEFINITIONS: Readonly<Partial<Record<string, KindDefinition>>> = SIGNAL_KINDS;
const TRAITS = new Map<string, ReadonlySet<KindTrait>>(Object.entries(SIGNAL_KINDS).map(([kind, d]) => [kind, new Set<KindTrait>(d.traits)]));

/** True when signals of this kind have the trait. */
export function hasTrait(kind: SignalKind, trait: KindTrait): boolean {
  return TRAITS.get(kind)?.has(trait) ?? false;
}

/** How an attempt of this kind reads in a sentence. */
export function phraseOf(kind: SignalKind): string {
  return DEFINITIONS[kind]?.phrase ?? kind;
}

/** How an admission policy's denial of this kind reads in a sentence. */
export function admissionPhraseOf(kind: SignalKind): string {
  return DEFINITIONS[kind]?.admissionPhrase ?? phraseOf(kind);
}
