/**
 * A cluster inventory made of plain arrays, for tests: the facts services/inventory/ would read
 * from the Kubernetes API, written by hand. Every answer is computed from `cluster` when asked, so
 * a test changes the cluster by changing those arrays. Not part of the product (test-*.ts files are
 * left out of the build).
 */
import type { BindingInfo, ClusterInventory, InventoryStatus, PodInfo, RoleInfo, WorkloadRef } from '../inventory.js';

/** A pod: only namespace and name are required. */
export type FakePod = Pick<PodInfo, 'namespace' | 'name'> & Partial<Omit<PodInfo, 'namespace' | 'name'>>;

/** A workload with the service account and secrets of its pod template. */
export type FakeWorkload = WorkloadRef & { serviceAccount?: string; secrets?: string[]; app?: string };

/** A role: rules required, the aggregation fields default to none. */
export type FakeRole = Omit<RoleInfo, 'aggregateTo' | 'aggregated'> & Partial<Pick<RoleInfo, 'aggregateTo' | 'aggregated'>>;

export interface FakeCluster {
  /** Namespaces besides those the objects below live in (a namespaced object implies its namespace). */
  namespaces?: string[];
  /** `ns/name`, besides the accounts live pods run as. */
  serviceAccounts?: string[];
  pods?: FakePod[];
  workloads?: FakeWorkload[];
  roles?: FakeRole[];
  bindings?: BindingInfo[];
  /** Namespaces with mesh evidence (injection label, PeerAuthentication, Linkerd annotation). */
  meshNamespaces?: string[];
  /** Defaults to enabled and synced. */
  status?: Partial<InventoryStatus>;
}

const BY_NAME_ORDER: readonly WorkloadRef['kind'][] = ['Deployment', 'StatefulSet', 'DaemonSet', 'CronJob', 'Job', 'ReplicaSet', 'ReplicationController'];

export class FakeInventory implements ClusterInventory {
  /** Counts the questions asked, per method (for tests of what planning costs). */
  readonly calls = new Map<string, number>();

  constructor(public cluster: FakeCluster = {}) {}

  private count(method: string): void {
    this.calls.set(method, (this.calls.get(method) ?? 0) + 1);
  }

  private podInfo(p: FakePod): PodInfo {
    return { uid: `uid-${p.namespace}-${p.name}`, ips: [], serviceAccount: 'default', secrets: [], ...p };
  }

  private allPods(): PodInfo[] {
    return (this.cluster.pods ?? []).map((p) => this.podInfo(p));
  }

  status(): InventoryStatus {
    this.count('status');
    return { enabled: true, synced: true, pending: [], ...this.cluster.status };
  }

  podByIP(ip: string): PodInfo | undefined {
    this.count('podByIP');
    return this.allPods().find((p) => p.ips.includes(ip));
  }

  pod(namespace: string, name: string): PodInfo | undefined {
    this.count('pod');
    return this.allPods().find((p) => p.namespace === namespace && p.name === name);
  }

  workload(namespace: string, name: string, kind?: WorkloadRef['kind']): (WorkloadRef & { serviceAccount?: string; secrets: string[] }) | undefined {
    this.count('workload');
    // The workloads listed, and those live pods name as their owner.
    const all: FakeWorkload[] = [
      ...(this.cluster.workloads ?? []),
      ...this.allPods().flatMap((p) => (p.workload && p.deletedAt === undefined ? [p.workload] : [])),
    ];
    for (const k of kind ? [kind] : BY_NAME_ORDER) {
      const w = all.find((x) => x.kind === k && x.namespace === namespace && x.name === name);
      if (w)
        return {
          kind: w.kind,
          namespace: w.namespace,
          name: w.name,
          ...(w.serviceAccount ? { serviceAccount: w.serviceAccount } : {}),
          secrets: w.secrets ?? [],
        };
    }
    return undefined;
  }

  workloadByLabel(namespace: string, name: string): (WorkloadRef & { serviceAccount?: string }) | undefined {
    this.count('workloadByLabel');
    const w = this.workload(namespace, name) ?? (this.cluster.workloads ?? []).find((x) => x.namespace === namespace && x.app === name);
    return w ? { kind: w.kind, namespace: w.namespace, name: w.name, ...(w.serviceAccount ? { serviceAccount: w.serviceAccount } : {}) } : undefined;
  }

  podsOf(ref: WorkloadRef): PodInfo[] {
    this.count('podsOf');
    return this.allPods().filter(
      (p) => p.deletedAt === undefined && p.workload?.kind === ref.kind && p.workload.namespace === ref.namespace && p.workload.name === ref.name,
    );
  }

  serviceAccountExists(namespace: string, name: string): boolean {
    this.count('serviceAccountExists');
    const key = `${namespace}/${name}`;
    return (
      (this.cluster.serviceAccounts ?? []).includes(key) ||
      this.allPods().some((p) => p.deletedAt === undefined && `${p.namespace}/${p.serviceAccount}` === key)
    );
  }

  namespaceExists(name: string): boolean {
    this.count('namespaceExists');
    const c = this.cluster;
    const implied = [
      ...(c.pods ?? []).filter((p) => p.deletedAt === undefined).map((p) => p.namespace),
      ...(c.workloads ?? []).map((w) => w.namespace),
      ...(c.serviceAccounts ?? []).map((s) => s.split('/')[0]),
      ...(c.roles ?? []).map((r) => r.namespace),
      ...(c.bindings ?? []).map((b) => b.namespace),
    ];
    return (c.namespaces ?? []).includes(name) || implied.includes(name);
  }

  role(kind: 'Role' | 'ClusterRole', name: string, namespace?: string): RoleInfo | undefined {
    this.count('role');
    const r = (this.cluster.roles ?? []).find((x) => x.kind === kind && x.name === name && (kind === 'ClusterRole' || x.namespace === namespace));
    return r ? { aggregateTo: [], aggregated: false, ...r } : undefined;
  }

  binding(kind: 'RoleBinding' | 'ClusterRoleBinding', name: string, namespace?: string): BindingInfo | undefined {
    this.count('binding');
    return (this.cluster.bindings ?? []).find((b) => b.kind === kind && b.name === name && (kind === 'ClusterRoleBinding' || b.namespace === namespace));
  }

  bindingsOf(kind: 'Role' | 'ClusterRole', name: string, namespace?: string): BindingInfo[] {
    this.count('bindingsOf');
    return (this.cluster.bindings ?? []).filter(
      (b) => b.roleRef.kind === kind && b.roleRef.name === name && (kind === 'ClusterRole' || (b.kind === 'RoleBinding' && b.namespace === namespace)),
    );
  }

  consumersOfSecret(namespace: string, secret: string): WorkloadRef[] {
    this.count('consumersOfSecret');
    const out = new Map<string, WorkloadRef>();
    for (const w of this.cluster.workloads ?? [])
      if (w.namespace === namespace && (w.secrets ?? []).includes(secret)) out.set(`${w.kind}/${w.name}`, { kind: w.kind, namespace, name: w.name });
    for (const p of this.allPods())
      if (p.namespace === namespace && p.deletedAt === undefined && p.secrets.includes(secret) && p.workload)
        out.set(`${p.workload.kind}/${p.workload.name}`, p.workload);
    return [...out.values()];
  }

  meshNamespaces(): string[] {
    this.count('meshNamespaces');
    return [...(this.cluster.meshNamespaces ?? [])].sort();
  }
}
