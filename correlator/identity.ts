/**
 * Identity across sources. A mesh log knows a source IP, an alert a pod, a span a pod name; the
 * audit log knows which service account a pod runs as and which IP it had. The resolver learns
 * IP → pod → service account bindings from audit facts (with expiry: IPs are reused) and rewrites
 * the actor of other sources' signals to the service account, keeping what they said as an entity —
 * so a plaintext connection from 10.0.3.17 lands in the incident of `sa:frontend/frontend`.
 *
 * With a live cluster inventory (services/inventory/) the cluster answers first: an IP is the pod
 * that has it (or had it, for a pod gone since), a pod or a workload name (Istio's
 * `source_workload`, Linkerd's `deployment`, an app label) is the service account its pods run as.
 * What the audit stream taught is the fallback (replay, offline files, no API access). The answer
 * records which one it came from (`resolvedBy`).
 */
import { podKey, saKey, workloadKey, type Actor } from './entities.js';
import type { ClusterInventory, PodInfo } from './inventory.js';
import type { Clock } from './ports.js';

/** One binding seen in the audit stream at `time` (ms). */
export interface IdentityFact {
  ip?: string;
  pod?: { namespace: string; name: string };
  serviceAccount?: { namespace: string; name: string };
  time: number;
}

/** Bounds and expiry of {@link IdentityResolver}. */
export interface IdentityOptions {
  /** How long a binding holds after it was last seen (default 1 h: pod IPs are reused). */
  ttlMs: number;
  /** Most bindings kept per kind (IPs, pods); the oldest are forgotten first. */
  maxEntries: number;
}

interface Entry {
  value: string;
  time: number;
}

/** Learns and resolves workload identities. */
export class IdentityResolver {
  private readonly ipToPod = new Map<string, Entry>();
  private readonly podToSa = new Map<string, Entry>();
  private readonly opts: IdentityOptions;
  /** Actors rewritten, and bindings forgotten to stay within the bound. */
  readonly stats = { resolved: 0, evicted: 0 };

  constructor(
    private readonly clock: Clock,
    opts: Partial<IdentityOptions> = {},
    private readonly inventory?: ClusterInventory,
  ) {
    this.opts = { ttlMs: 3_600_000, maxEntries: 200_000, ...opts };
  }

  /** Records what an audit event says about a workload. */
  learn(f: IdentityFact): void {
    const pod = f.pod ? podKey(f.pod.namespace, f.pod.name) : undefined;
    if (f.ip && pod) this.put(this.ipToPod, f.ip, pod, f.time);
    if (pod && f.serviceAccount) this.put(this.podToSa, pod, saKey(f.serviceAccount.namespace, f.serviceAccount.name), f.time);
  }

  /**
   * The service account (or at least the pod) behind an `ip:` or `pod:` actor, and the keys it was
   * resolved through; undefined when nothing is known or the binding expired.
   */
  resolve(actor: Actor, at?: number): { actor: Actor; via: string[]; resolvedBy: 'inventory' | 'audit' } | undefined {
    if (actor.type !== 'ip' && actor.type !== 'pod') return undefined;
    const fromCluster = this.inventory ? this.fromInventory(this.inventory, actor, at) : undefined;
    if (fromCluster) {
      this.stats.resolved++;
      return { ...fromCluster, resolvedBy: 'inventory' };
    }
    const learnt = this.fromAudit(actor);
    return learnt && { ...learnt, resolvedBy: 'audit' };
  }

  private fromInventory(inv: ClusterInventory, actor: Actor, at?: number): { actor: Actor; via: string[] } | undefined {
    const via = [actor.key];
    const sa = (p: PodInfo) => {
      via.push(podKey(p.namespace, p.name));
      if (p.workload) via.push(workloadKey(p.namespace, p.workload.kind, p.workload.name));
      return saActor(p.namespace, p.serviceAccount);
    };
    if (actor.type === 'ip') {
      const p = inv.podByIP(actor.name, at);
      return p ? { actor: sa(p), via } : undefined;
    }
    const ns = actor.namespace;
    if (!ns) return undefined;
    const p = inv.pod(ns, actor.name);
    if (p) return { actor: sa(p), via };
    // Not a pod: a workload named by a mesh or telemetry label.
    const w = inv.workloadByLabel(ns, actor.name);
    if (!w?.serviceAccount) return undefined;
    via.push(workloadKey(ns, w.kind, w.name));
    return { actor: saActor(ns, w.serviceAccount), via };
  }

  private fromAudit(actor: Actor): { actor: Actor; via: string[] } | undefined {
    const now = this.clock.now();
    const via: string[] = [actor.key];
    const pod = actor.type === 'pod' ? actor.key : this.get(this.ipToPod, actor.name, now);
    if (!pod) return undefined;
    if (actor.type === 'ip') via.push(pod);
    const sa = this.get(this.podToSa, pod, now);
    this.stats.resolved++;
    if (!sa) {
      if (actor.type === 'pod') return undefined;
      const [ns, name] = pod.slice(4).split('/') as [string, string];
      return { actor: { key: pod, type: 'pod', name, namespace: ns }, via };
    }
    const [ns, name] = sa.slice(3).split('/') as [string, string];
    return { actor: { key: sa, type: 'serviceaccount', name: `system:serviceaccount:${ns}:${name}`, namespace: ns }, via };
  }

  private put(m: Map<string, Entry>, k: string, value: string, time: number): void {
    const e = m.get(k);
    if (e && e.value === value) {
      if (time > e.time) e.time = time;
      return;
    }
    // A late batch must not undo what a newer fact says (IPs move between pods).
    if (e && time < e.time) return;
    if (!e && m.size >= this.opts.maxEntries) {
      m.delete(m.keys().next().value as string);
      this.stats.evicted++;
    }
    m.delete(k);
    m.set(k, { value, time });
  }

  private get(m: Map<string, Entry>, k: string, now: number): string | undefined {
    const e = m.get(k);
    if (!e) return undefined;
    if (now - e.time > this.opts.ttlMs) {
      m.delete(k);
      return undefined;
    }
    return e.value;
  }
}

function saActor(namespace: string, name: string): Actor {
  return { key: saKey(namespace, name), type: 'serviceaccount', name: `system:serviceaccount:${namespace}:${name}`, namespace };
}
