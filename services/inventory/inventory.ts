/**
 * The live cluster inventory (issue #13): list-and-watch of the objects kubevigil reasons about,
 * kept as small projections, answering {@link ClusterInventory} from memory. Pods are indexed by IP,
 * with a bounded history of pods that are gone (a late mesh log still names the right workload);
 * ReplicaSets and Jobs resolve pods to the Deployment or CronJob that owns them.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { BindingInfo, ClusterInventory, InventoryStatus, PodInfo, RoleInfo, WorkloadRef } from '../../correlator/inventory.js';
import type { Logger } from '../logging.js';
import {
  projectBinding,
  projectName,
  projectNamespace,
  projectPod,
  projectRole,
  projectWorkload,
  type NamespaceRecord,
  type PodRecord,
  type WorkloadRecord,
} from './projections.js';
import { Reflector, type KubeObject, type ReflectorSink } from './reflector.js';

/** One watched resource: where it lives, and what is kept of it. */
interface Watched<T> {
  resource: string;
  path: string;
  project: (o: KubeObject) => T | undefined;
  /** A custom resource: absent (404) when its CRD is not installed, which is not an error. */
  optional?: boolean;
}

/** A map per resource; `onChange` keeps the derived indexes. */
class Store<T> implements ReflectorSink<T> {
  readonly items = new Map<string, T>();
  constructor(private readonly onChange?: (key: string, before: T | undefined, after: T | undefined) => void) {}
  replace(items: Map<string, T>): void {
    for (const [k, v] of this.items) if (!items.has(k)) this.remove(k, v);
    for (const [k, v] of items) this.upsert(k, v);
  }
  upsert(key: string, item: T): void {
    const before = this.items.get(key);
    this.items.set(key, item);
    this.onChange?.(key, before, item);
  }
  remove(key: string, known?: T): void {
    const before = known ?? this.items.get(key);
    if (!this.items.delete(key) && !known) return;
    this.onChange?.(key, before, undefined);
  }
}

export interface InventoryOptions {
  logger: Logger;
  /** How long a deleted pod still resolves its IPs (default 1 h). */
  goneTtlMs?: number;
  /** Most deleted pods remembered (default 20,000). */
  maxGone?: number;
  now?: () => number;
  /** Called on reflector events, for metrics. */
  onEvent?: (resource: string, kind: 'list' | 'watch-event' | 'restart' | 'relist-gone', at: number) => void;
}

const WORKLOAD_PATHS: [WorkloadRef['kind'], string, string][] = [
  ['Deployment', 'deployments', '/apis/apps/v1/deployments'],
  ['StatefulSet', 'statefulsets', '/apis/apps/v1/statefulsets'],
  ['DaemonSet', 'daemonsets', '/apis/apps/v1/daemonsets'],
  ['ReplicaSet', 'replicasets', '/apis/apps/v1/replicasets'],
  ['Job', 'jobs', '/apis/batch/v1/jobs'],
  ['CronJob', 'cronjobs', '/apis/batch/v1/cronjobs'],
];

const BY_NAME_ORDER: WorkloadRef['kind'][] = ['Deployment', 'StatefulSet', 'DaemonSet', 'CronJob', 'Job', 'ReplicaSet'];

/** Every path the inventory lists and watches (the deploy/ ClusterRole must grant exactly these). */
export const INVENTORY_PATHS = [
  '/api/v1/namespaces',
  '/api/v1/pods',
  '/api/v1/serviceaccounts',
  '/api/v1/services',
  ...[
    '/apis/apps/v1/deployments',
    '/apis/apps/v1/statefulsets',
    '/apis/apps/v1/daemonsets',
    '/apis/apps/v1/replicasets',
    '/apis/batch/v1/jobs',
    '/apis/batch/v1/cronjobs',
  ],
  '/apis/rbac.authorization.k8s.io/v1/roles',
  '/apis/rbac.authorization.k8s.io/v1/clusterroles',
  '/apis/rbac.authorization.k8s.io/v1/rolebindings',
  '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
  '/apis/networking.k8s.io/v1/networkpolicies',
  '/apis/security.istio.io/v1/peerauthentications',
  '/apis/security.istio.io/v1/authorizationpolicies',
  '/apis/templates.gatekeeper.sh/v1/constrainttemplates',
  '/apis/kyverno.io/v1/clusterpolicies',
] as const;

interface GonePod {
  pod: PodRecord;
  at: number;
}

/** The inventory: reflectors feeding stores, and the queries of {@link ClusterInventory}. */
export class KubeInventory implements ClusterInventory {
  private readonly pods = new Store<PodRecord>((k, before, after) => this.indexPod(k, before, after));
  /** `ns/app` → the workloads and pods that carry that app label, so a mesh label resolves without a scan. */
  private readonly byApp = new Map<string, Set<string>>();
  private readonly workloads = new Map<WorkloadRef['kind'], Store<WorkloadRecord>>();
  private readonly namespaces = new Store<NamespaceRecord>();
  private readonly serviceAccounts = new Store<string>();
  private readonly services = new Store<string>();
  private readonly networkPolicies = new Store<string>();
  private readonly peerAuthentications = new Store<string>();
  private readonly authorizationPolicies = new Store<string>();
  private readonly constraintTemplates = new Store<string>();
  private readonly kyvernoPolicies = new Store<string>();
  private readonly roles = new Store<RoleInfo>();
  private readonly clusterRoles = new Store<RoleInfo>();
  private readonly roleBindings = new Store<BindingInfo>();
  private readonly clusterRoleBindings = new Store<BindingInfo>();
  private readonly byIP = new Map<string, string>();
  private readonly gone = new Map<string, GonePod[]>();
  private goneCount = 0;
  private readonly reflectors: { resource: string; r: Reflector<unknown>; optional: boolean }[] = [];
  private readonly now: () => number;

  constructor(
    kc: KubeConfig,
    private readonly o: InventoryOptions,
  ) {
    this.now = o.now ?? Date.now;
    for (const [kind] of WORKLOAD_PATHS)
      this.workloads.set(kind, new Store<WorkloadRecord>((k, before, after) => this.indexApp(`W${kind}/${k}`, before, after)));
    const watch = <T>(w: Watched<T>, sink: ReflectorSink<T>) => {
      if (!(INVENTORY_PATHS as readonly string[]).includes(w.path)) throw new Error(`${w.path} is not in INVENTORY_PATHS (the ClusterRole grants those)`);
      const r = new Reflector<T>(kc, {
        path: w.path,
        resource: w.resource,
        project: w.project,
        sink,
        logger: o.logger,
        onEvent: (kind, at) => o.onEvent?.(w.resource, kind, at),
        optional: w.optional === true,
      });
      this.reflectors.push({ resource: w.resource, r: r as Reflector<unknown>, optional: w.optional === true });
    };
    watch({ resource: 'namespaces', path: '/api/v1/namespaces', project: projectNamespace }, this.namespaces);
    watch({ resource: 'pods', path: '/api/v1/pods', project: projectPod }, this.pods);
    watch({ resource: 'serviceaccounts', path: '/api/v1/serviceaccounts', project: projectName }, this.serviceAccounts);
    watch({ resource: 'services', path: '/api/v1/services', project: projectName }, this.services);
    for (const [kind, resource, path] of WORKLOAD_PATHS) watch({ resource, path, project: projectWorkload(kind) }, this.workloads.get(kind)!);
    watch({ resource: 'roles', path: '/apis/rbac.authorization.k8s.io/v1/roles', project: projectRole('Role') }, this.roles);
    watch({ resource: 'clusterroles', path: '/apis/rbac.authorization.k8s.io/v1/clusterroles', project: projectRole('ClusterRole') }, this.clusterRoles);
    watch({ resource: 'rolebindings', path: '/apis/rbac.authorization.k8s.io/v1/rolebindings', project: projectBinding('RoleBinding') }, this.roleBindings);
    watch(
      { resource: 'clusterrolebindings', path: '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', project: projectBinding('ClusterRoleBinding') },
      this.clusterRoleBindings,
    );
    watch({ resource: 'networkpolicies', path: '/apis/networking.k8s.io/v1/networkpolicies', project: projectName }, this.networkPolicies);
    watch(
      { resource: 'peerauthentications', path: '/apis/security.istio.io/v1/peerauthentications', project: projectName, optional: true },
      this.peerAuthentications,
    );
    watch(
      { resource: 'authorizationpolicies', path: '/apis/security.istio.io/v1/authorizationpolicies', project: projectName, optional: true },
      this.authorizationPolicies,
    );
    watch(
      { resource: 'constrainttemplates', path: '/apis/templates.gatekeeper.sh/v1/constrainttemplates', project: projectName, optional: true },
      this.constraintTemplates,
    );
    watch({ resource: 'clusterpolicies', path: '/apis/kyverno.io/v1/clusterpolicies', project: projectName, optional: true }, this.kyvernoPolicies);
  }

  async stop(): Promise<void> {
    await Promise.all(this.reflectors.map((x) => x.r.stop()));
  }

  /** Object counts per resource, for metrics. */
  counts(): Record<string, number> {
    const out: Record<string, number> = {
      namespaces: this.namespaces.items.size,
      pods: this.pods.items.size,
      serviceaccounts: this.serviceAccounts.items.size,
      services: this.services.items.size,
      roles: this.roles.items.size,
      clusterroles: this.clusterRoles.items.size,
      rolebindings: this.roleBindings.items.size,
      clusterrolebindings: this.clusterRoleBindings.items.size,
      networkpolicies: this.networkPolicies.items.size,
      peerauthentications: this.peerAuthentications.items.size,
      authorizationpolicies: this.authorizationPolicies.items.size,
      pods_gone: this.goneCount,
    };
    for (const [kind, resource] of WORKLOAD_PATHS) out[resource] = this.workloads.get(kind)!.items.size;
    return out;
  }

  /** Watch restarts per resource (they never decrease). */
  restarts(): Record<string, number> {
    return Object.fromEntries(this.reflectors.map((x) => [x.resource, x.r.restarts]));
  }

  status(): InventoryStatus {
    const pending = this.reflectors.filter((x) => !x.r.synced).map((x) => ({ resource: x.resource, ...(x.r.lastError ? { error: x.r.lastError } : {}) }));
    return { enabled: true, synced: pending.length === 0, pending };
  }

  // --- queries --------------------------------------------------------------------------------------

  podByIP(ip: string, at?: number): PodInfo | undefined {
    const live = this.byIP.get(ip);
    const when = at ?? this.now();
    const rec = live ? this.pods.items.get(live) : undefined;
    if (rec) return this.podInfo(rec);
    // Gone pods, the newest first, that still held the IP at `at` and are within the TTL.
    const ttl = this.o.goneTtlMs ?? 3_600_000;
    const hist = this.gone.get(ip);
    if (!hist) return undefined;
    for (let i = hist.length - 1; i >= 0; i--) {
      const g = hist[i]!;
      if (this.now() - g.at <= ttl && when <= g.at + 60_000) return { ...this.podInfo(g.pod), deletedAt: g.at };
    }
    return undefined;
  }

  pod(namespace: string, name: string): PodInfo | undefined {
    const rec = this.pods.items.get(`${namespace}/${name}`);
    return rec ? this.podInfo(rec) : undefined;
  }

  workload(namespace: string, name: string, kind?: WorkloadRef['kind']): (WorkloadRef & { serviceAccount?: string; secrets: string[] }) | undefined {
    for (const k of kind ? [kind] : BY_NAME_ORDER) {
      const w = this.workloads.get(k)?.items.get(`${namespace}/${name}`);
      if (w)
        return { kind: w.kind, namespace: w.namespace, name: w.name, ...(w.serviceAccount ? { serviceAccount: w.serviceAccount } : {}), secrets: w.secrets };
    }
    return undefined;
  }

  workloadByLabel(namespace: string, name: string): (WorkloadRef & { serviceAccount?: string }) | undefined {
    const direct = this.workload(namespace, name);
    if (direct) return direct;
    // Mesh and telemetry name a workload by its app label (Istio's canonical name): a workload, else
    // a pod's owner, that carries it.
    const keys = [...(this.byApp.get(`${namespace}/${name}`) ?? [])];
    for (const kind of BY_NAME_ORDER)
      for (const k of keys) {
        const w = k.startsWith(`W${kind}/`) ? this.workloads.get(kind)!.items.get(k.slice(kind.length + 2)) : undefined;
        if (w) return { kind: w.kind, namespace, name: w.name, ...(w.serviceAccount ? { serviceAccount: w.serviceAccount } : {}) };
      }
    for (const k of keys) {
      const p = k.startsWith('P/') ? this.pods.items.get(k.slice(2)) : undefined;
      const info = p && this.podInfo(p);
      if (info?.workload) return { ...info.workload, serviceAccount: info.serviceAccount };
    }
    return undefined;
  }

  podsOf(ref: WorkloadRef): PodInfo[] {
    const out: PodInfo[] = [];
    for (const p of this.pods.items.values()) {
      if (p.namespace !== ref.namespace) continue;
      const w = this.topOwner(p.namespace, p.owner);
      if (w && w.kind === ref.kind && w.name === ref.name) out.push(this.podInfo(p));
    }
    return out;
  }

  serviceAccountExists(namespace: string, name: string): boolean {
    return this.serviceAccounts.items.has(`${namespace}/${name}`);
  }

  namespaceExists(name: string): boolean {
    return this.namespaces.items.has(`/${name}`);
  }

  role(kind: 'Role' | 'ClusterRole', name: string, namespace?: string): RoleInfo | undefined {
    return kind === 'ClusterRole' ? this.clusterRoles.items.get(`/${name}`) : this.roles.items.get(`${namespace ?? ''}/${name}`);
  }

  binding(kind: 'RoleBinding' | 'ClusterRoleBinding', name: string, namespace?: string): BindingInfo | undefined {
    return kind === 'ClusterRoleBinding' ? this.clusterRoleBindings.items.get(`/${name}`) : this.roleBindings.items.get(`${namespace ?? ''}/${name}`);
  }

  bindingsOf(kind: 'Role' | 'ClusterRole', name: string, namespace?: string): BindingInfo[] {
    const out: BindingInfo[] = [];
    if (kind === 'ClusterRole')
      for (const b of this.clusterRoleBindings.items.values()) if (b.roleRef.kind === 'ClusterRole' && b.roleRef.name === name) out.push(b);
    for (const b of this.roleBindings.items.values())
      if (b.roleRef.kind === kind && b.roleRef.name === name && (kind === 'ClusterRole' || b.namespace === namespace)) out.push(b);
    return out;
  }

  consumersOfSecret(namespace: string, secret: string): WorkloadRef[] {
    const out = new Map<string, WorkloadRef>();
    for (const k of BY_NAME_ORDER) {
      if (k === 'ReplicaSet' || k === 'Job') continue; // reached through their owners or their pods
      for (const w of this.workloads.get(k)!.items.values())
        if (w.namespace === namespace && w.secrets.includes(secret)) out.set(`${w.kind}/${w.name}`, { kind: w.kind, namespace, name: w.name });
    }
    for (const p of this.pods.items.values()) {
      if (p.namespace !== namespace || !p.secrets.includes(secret)) continue;
      const w = this.topOwner(namespace, p.owner);
      if (w) out.set(`${w.kind}/${w.name}`, w);
    }
    return [...out.values()];
  }

  meshNamespaces(): string[] {
    const out = new Set<string>();
    for (const n of this.namespaces.items.values()) if (n.mesh) out.add(n.name);
    for (const ns of this.peerAuthentications.items.values()) if (ns) out.add(ns);
    return [...out].sort();
  }

  // --- internals ------------------------------------------------------------------------------------

  /** Follows ReplicaSet → Deployment and Job → CronJob. */
  private topOwner(namespace: string, owner: { kind: string; name: string } | undefined): WorkloadRef | undefined {
    let ref = owner;
    for (let depth = 0; ref && depth < 3; depth++) {
      const store = this.workloads.get(ref.kind as WorkloadRef['kind']);
      const rec = store?.items.get(`${namespace}/${ref.name}`);
      if (!rec) return store ? { kind: ref.kind as WorkloadRef['kind'], namespace, name: ref.name } : undefined;
      if (!rec.owner || !this.workloads.has(rec.owner.kind as WorkloadRef['kind'])) return { kind: rec.kind, namespace, name: rec.name };
      ref = rec.owner;
    }
    return undefined;
  }

  private podInfo(p: PodRecord): PodInfo {
    const workload = this.topOwner(p.namespace, p.owner);
    const { owner: _owner, ...rest } = p;
    return workload ? { ...rest, workload } : rest;
  }

  private indexApp(key: string, before: { namespace: string; app?: string } | undefined, after: { namespace: string; app?: string } | undefined): void {
    const of = (r: { namespace: string; app?: string } | undefined) => (r?.app ? `${r.namespace}/${r.app}` : undefined);
    const was = of(before);
    const now = of(after);
    if (was === now) return;
    if (was) {
      const set = this.byApp.get(was);
      set?.delete(key);
      if (set?.size === 0) this.byApp.delete(was);
    }
    if (now) {
      let set = this.byApp.get(now);
      if (!set) this.byApp.set(now, (set = new Set()));
      set.add(key);
    }
  }

  private indexPod(key: string, before: PodRecord | undefined, after: PodRecord | undefined): void {
    this.indexApp(`P/${key}`, before, after);
    for (const ip of before?.ips ?? []) if (this.byIP.get(ip) === key && !after?.ips.includes(ip)) this.byIP.delete(ip);
    for (const ip of after?.ips ?? []) this.byIP.set(ip, key);
    if (before && !after) this.remember(before);
  }

  /** Keeps a deleted pod's IPs resolvable for a while (bounded, oldest first out). */
  private remember(pod: PodRecord): void {
    const at = this.now();
    for (const ip of pod.ips) {
      const list = this.gone.get(ip) ?? [];
      list.push({ pod, at });
      if (list.length > 4) list.shift();
      this.gone.delete(ip);
      this.gone.set(ip, list);
      this.goneCount++;
    }
    const max = this.o.maxGone ?? 20_000;
    while (this.gone.size > max) {
      const oldest = this.gone.keys().next().value!;
      this.goneCount -= this.gone.get(oldest)!.length;
      this.gone.delete(oldest);
    }
  }
}
