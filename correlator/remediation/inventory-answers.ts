/**
 * What a plan read from the cluster inventory, so that the incident manager replans only when those
 * answers change: planning records each question it asks and its answer; before the next plan, the
 * same questions are asked again (lookups in memory) and their answers compared. Cheaper than
 * rendering the plan's YAML again, and exact: only what the plan read counts.
 */
import type { ClusterInventory, PodInfo, WorkloadRef } from '../inventory.js';

type Method = Exclude<keyof ClusterInventory, 'status'>;

/** One question a plan asked the inventory. */
export interface InventoryQuery {
  method: Method | 'status';
  args: unknown[];
}

// The status, as planning uses it: whether the answers can be trusted (not the errors of pending resources, which change often).
const statusAnswer = (inv: ClusterInventory): string => {
  const s = inv.status();
  return `${s.enabled}/${s.synced}`;
};

function answer(inv: ClusterInventory, q: InventoryQuery): string {
  if (q.method === 'status') return statusAnswer(inv);
  const fn = inv[q.method] as (...args: unknown[]) => unknown;
  return JSON.stringify(fn.apply(inv, q.args)) ?? '';
}

/** The answers the inventory gives now to the questions a plan asked, as one string. */
export function answersKey(inv: ClusterInventory, queries: readonly InventoryQuery[]): string {
  return queries.map((q) => answer(inv, q)).join('\n');
}

/** An inventory that remembers the questions asked of it, and their answers, in the order first asked. */
export class RecordingInventory implements ClusterInventory {
  private readonly asked = new Map<string, { query: InventoryQuery; answer: string }>();

  constructor(private readonly inner: ClusterInventory) {}

  private note<T>(method: InventoryQuery['method'], args: unknown[], value: T): T {
    const key = `${method}${JSON.stringify(args)}`;
    if (!this.asked.has(key))
      this.asked.set(key, { query: { method, args }, answer: method === 'status' ? statusAnswer(this.inner) : (JSON.stringify(value) ?? '') });
    return value;
  }

  /** The questions asked, to ask again before the next plan. */
  queries(): InventoryQuery[] {
    return [...this.asked.values()].map((a) => a.query);
  }

  /** The answers given, as {@link answersKey} renders them. */
  key(): string {
    return [...this.asked.values()].map((a) => a.answer).join('\n');
  }

  status() {
    return this.note('status', [], this.inner.status());
  }
  podByIP(ip: string, at?: number) {
    return this.note('podByIP', at === undefined ? [ip] : [ip, at], this.inner.podByIP(ip, at));
  }
  pod(namespace: string, name: string) {
    return this.note('pod', [namespace, name], this.inner.pod(namespace, name));
  }
  workload(namespace: string, name: string, kind?: WorkloadRef['kind']) {
    return this.note('workload', kind === undefined ? [namespace, name] : [namespace, name, kind], this.inner.workload(namespace, name, kind));
  }
  workloadByLabel(namespace: string, name: string) {
    return this.note('workloadByLabel', [namespace, name], this.inner.workloadByLabel(namespace, name));
  }
  podsOf(ref: WorkloadRef): PodInfo[] {
    return this.note('podsOf', [{ kind: ref.kind, namespace: ref.namespace, name: ref.name }], this.inner.podsOf(ref));
  }
  serviceAccountExists(namespace: string, name: string) {
    return this.note('serviceAccountExists', [namespace, name], this.inner.serviceAccountExists(namespace, name));
  }
  namespaceExists(name: string) {
    return this.note('namespaceExists', [name], this.inner.namespaceExists(name));
  }
  role(kind: 'Role' | 'ClusterRole', name: string, namespace?: string) {
    return this.note('role', namespace === undefined ? [kind, name] : [kind, name, namespace], this.inner.role(kind, name, namespace));
  }
  binding(kind: 'RoleBinding' | 'ClusterRoleBinding', name: string, namespace?: string) {
    return this.note('binding', namespace === undefined ? [kind, name] : [kind, name, namespace], this.inner.binding(kind, name, namespace));
  }
  bindingsOf(kind: 'Role' | 'ClusterRole', name: string, namespace?: string) {
    return this.note('bindingsOf', namespace === undefined ? [kind, name] : [kind, name, namespace], this.inner.bindingsOf(kind, name, namespace));
  }
  consumersOfSecret(namespace: string, secret: string) {
    return this.note('consumersOfSecret', [namespace, secret], this.inner.consumersOfSecret(namespace, secret));
  }
  meshNamespaces() {
    return this.note('meshNamespaces', [], this.inner.meshNamespaces());
  }
}
