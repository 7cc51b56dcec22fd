/**
 * What kubevigil knows of the cluster itself, beyond the events it receives: a live inventory
 * read from the Kubernetes API (services/inventory/, list-and-watch). The core depends only on this
 * port: identity resolution (IP → pod → workload → service account), root cause (what a role
 * grants, who else holds a binding) and the remediation planners (does the object a command names
 * exist; which workloads mount a stolen secret) ask it, and work without it (replay, offline
 * files, no API access), falling back on what the audit stream taught them.
 */

/** A workload that owns pods: Deployment, StatefulSet, DaemonSet, Job, CronJob, or a bare ReplicaSet. */
export interface WorkloadRef {
  kind: 'Deployment' | 'StatefulSet' | 'DaemonSet' | 'Job' | 'CronJob' | 'ReplicaSet' | 'ReplicationController';
  namespace: string;
  name: string;
}

/** A pod as the inventory keeps it: only the facts kubevigil uses. */
export interface PodInfo {
  namespace: string;
  name: string;
  uid: string;
  /** Pod IPs (status.podIPs, else status.podIP). */
  ips: string[];
  node?: string;
  /** spec.serviceAccountName (default when unset). */
  serviceAccount: string;
  /** The top owner: the Deployment behind its ReplicaSet, the CronJob behind its Job. */
  workload?: WorkloadRef;
  /** The app labels (app, app.kubernetes.io/name, app.kubernetes.io/instance, version), for mesh workload names. */
  app?: string;
  /** Secrets the pod mounts as volumes, projects, or reads through env (secretKeyRef, envFrom). */
  secrets: string[];
  /** Deleted (kept for a while so late events still resolve). */
  deletedAt?: number;
}

/** A policy rule of a Role or ClusterRole. */
export interface RuleInfo {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
  verbs: string[];
}

export interface RoleInfo {
  kind: 'Role' | 'ClusterRole';
  namespace?: string;
  name: string;
  rules: RuleInfo[];
  /** Labels rbac.authorization.k8s.io/aggregate-to-* it carries (it feeds those roles). */
  aggregateTo: string[];
  /** Selectors of an aggregated ClusterRole (its rules come from the roles they match). */
  aggregated: boolean;
}

export interface SubjectInfo {
  kind: 'User' | 'Group' | 'ServiceAccount';
  name: string;
  namespace?: string;
}

export interface BindingInfo {
  kind: 'RoleBinding' | 'ClusterRoleBinding';
  namespace?: string;
  name: string;
  roleRef: { kind: 'Role' | 'ClusterRole'; name: string };
  subjects: SubjectInfo[];
}

/** Whether the inventory is usable, for /readyz and for deciding to fall back. */
export interface InventoryStatus {
  enabled: boolean;
  /** Every watched resource has been listed once. */
  synced: boolean;
  /** Resources not yet listed (or failing), with the last error. */
  pending: { resource: string; error?: string }[];
}

/** The live cluster, as far as kubevigil reads it. Every method answers from memory, synchronously. */
export interface ClusterInventory {
  status(): InventoryStatus;
  /** The pod that has (or had, at `at` ms) this IP. */
  podByIP(ip: string, at?: number): PodInfo | undefined;
  pod(namespace: string, name: string): PodInfo | undefined;
  /** A workload by kind and name; without a kind, the first of Deployment, StatefulSet, DaemonSet, CronJob, Job, ReplicaSet. */
  workload(namespace: string, name: string, kind?: WorkloadRef['kind']): (WorkloadRef & { serviceAccount?: string; secrets: string[] }) | undefined;
  /** The workload a mesh or telemetry label names (Istio source_workload, Linkerd deployment, OTel k8s.deployment.name, app label). */
  workloadByLabel(namespace: string, name: string): (WorkloadRef & { serviceAccount?: string }) | undefined;
  /** Live pods of a workload. */
  podsOf(ref: WorkloadRef): PodInfo[];
  serviceAccountExists(namespace: string, name: string): boolean;
  namespaceExists(name: string): boolean;
  role(kind: 'Role' | 'ClusterRole', name: string, namespace?: string): RoleInfo | undefined;
  binding(kind: 'RoleBinding' | 'ClusterRoleBinding', name: string, namespace?: string): BindingInfo | undefined;
  /** Bindings that grant this role. */
  bindingsOf(kind: 'Role' | 'ClusterRole', name: string, namespace?: string): BindingInfo[];
  /** Workloads (else bare pods) whose pods mount or read the secret. */
  consumersOfSecret(namespace: string, secret: string): WorkloadRef[];
  /** Namespaces with mesh evidence in the cluster: Istio injection label, PeerAuthentication, Linkerd annotation. */
  meshNamespaces(): string[];
}
