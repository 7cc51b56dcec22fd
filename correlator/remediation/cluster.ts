/**
 * Facts about the live cluster, read from the cluster inventory (correlator/inventory.ts): a
 * binding with its role's rules and subjects, the workload behind a pod. Root cause and the
 * planners share them; every function answers from memory and only from an inventory that has
 * read the cluster once (before that, "not found" would mean "not read yet").
 */
import type { BindingInCluster, BindingRef, PodOwner, RbacRule, TimelineEntry, WorkloadOwner } from '../incident.js';
import type { BindingInfo, ClusterInventory, PodInfo, RoleInfo } from '../inventory.js';
import { grantsEscalation, requestOf, rulesAllowing, splitSubjects, usernameOf } from './rbac.js';

/** The inventory when its answers can be trusted: enabled, and every resource listed once. */
export function liveInventory(inv: ClusterInventory | undefined): ClusterInventory | undefined {
  if (!inv) return undefined;
  const s = inv.status();
  return s.enabled && s.synced ? inv : undefined;
}

/** The binding as the cluster has it; undefined when the ref cannot be looked up (a RoleBinding with no namespace). */
export function liveBinding(inv: ClusterInventory, b: BindingRef): { found: BindingInfo | undefined } | undefined {
  if (b.kind === 'ClusterRoleBinding') return { found: inv.binding('ClusterRoleBinding', b.name) };
  return b.namespace === undefined ? undefined : { found: inv.binding('RoleBinding', b.name, b.namespace) };
}

/** The role a binding grants, as the cluster has it. */
export function roleOf(inv: ClusterInventory, binding: BindingInfo): RoleInfo | undefined {
  const { kind, name } = binding.roleRef;
  return kind === 'Role' ? inv.role('Role', name, binding.namespace) : inv.role('ClusterRole', name);
}

/** The rules of a role that let its holder write a binding and get around the escalation check: those that allowed the write, and bind, escalate or wildcards. */
export function rulesForBindingWrite(rules: readonly RbacRule[], write: TimelineEntry | undefined): RbacRule[] {
  const req = write ? requestOf(write) : undefined;
  const writing = req ? rulesAllowing(rules, req) : [];
  return rules.filter((r) => writing.includes(r) || grantsEscalation(r));
}

/**
 * A binding as the live cluster has it: whether it and its role exist, the role's rules that
 * granted what was done through it (`through`: requests made through it; `wrote`: the write of
 * another binding it allowed), and whom it binds besides the identity that used it (`holder`, a
 * Kubernetes username). Undefined when the binding cannot be looked up.
 */
export function bindingFacts(
  inv: ClusterInventory,
  b: BindingRef,
  holder: string | undefined,
  done: { through?: readonly TimelineEntry[]; wrote?: TimelineEntry },
): BindingInCluster | undefined {
  const live = liveBinding(inv, b);
  if (!live) return undefined;
  const binding = live.found;
  if (!binding) return { exists: false, grantingRules: [], actorSubjects: [], otherSubjects: [] };
  const role = roleOf(inv, binding);
  const rules = role?.rules ?? [];
  const granting = new Set<RbacRule>();
  for (const e of done.through ?? []) {
    const req = requestOf(e);
    if (req) for (const r of rulesAllowing(rules, req)) granting.add(r);
  }
  if (done.wrote) for (const r of rulesForBindingWrite(rules, done.wrote)) granting.add(r);
  const { mine, others } = splitSubjects(binding.subjects, holder);
  return {
    exists: true,
    roleKind: binding.roleRef.kind,
    roleName: binding.roleRef.name,
    roleExists: role !== undefined,
    grantingRules: rules.filter((r) => granting.has(r)),
    actorSubjects: mine,
    otherSubjects: others,
  };
}

/** The Kubernetes username that held a binding: the impersonated identity when the requests through it impersonated one, else the actor. */
export function holderOf(actorKey: string, through: readonly TimelineEntry[]): string | undefined {
  return through.find((e) => e.attributes.impersonated)?.attributes.impersonated ?? usernameOf(actorKey);
}

/** The binding ref with its role filled in from the cluster when the audit data did not name it. */
export function withRoleFrom(b: BindingRef, facts: BindingInCluster | undefined): BindingRef {
  if (b.roleName || !facts?.roleName) return b;
  return { ...b, roleKind: facts.roleKind, roleName: facts.roleName };
}

/** `ns/name` → its parts; undefined for anything else. */
function split(ref: string): { namespace: string; name: string } | undefined {
  const i = ref.indexOf('/');
  return i > 0 && i < ref.length - 1 ? { namespace: ref.slice(0, i), name: ref.slice(i + 1) } : undefined;
}

/** A live pod (the inventory keeps deleted ones a while for late events: those are gone). */
export function livePod(inv: ClusterInventory, namespace: string, name: string): PodInfo | undefined {
  const p = inv.pod(namespace, name);
  return p && p.deletedAt === undefined ? p : undefined;
}

/** The workloads that own the pods the timeline names: the actor's (its bound-token pod, or a pod actor) and those acted on. */
export function podOwners(inv: ClusterInventory, timeline: readonly TimelineEntry[]): PodOwner[] {
  const refs = new Map<string, boolean>();
  const add = (ref: string | undefined, actor: boolean) => {
    if (ref && split(ref)) refs.set(ref, (refs.get(ref) ?? false) || actor);
  };
  for (const e of timeline) {
    add(e.attributes.actorPod, true);
    if (e.actor.startsWith('pod:')) add(e.actor.slice(4), true);
    if (e.target.resource === 'pods' && e.target.namespace && e.target.name) add(`${e.target.namespace}/${e.target.name}`, false);
  }
  const out: PodOwner[] = [];
  for (const [ref, actorPod] of refs) {
    const { namespace, name } = split(ref)!;
    const w = inv.pod(namespace, name)?.workload;
    if (w) out.push({ pod: ref, workload: { kind: w.kind, namespace: w.namespace, name: w.name }, actorPod });
  }
  return out.slice(0, 50);
}

/** A workload in words: `Deployment storefront/web`. */
export const workloadText = (w: WorkloadOwner): string => `${w.kind} ${w.namespace}/${w.name}`;

/** What a name the audit data calls a pod is in the cluster: a live pod, a workload (mesh and telemetry sources name those), or nothing. */
export type ResolvedPod =
  | { state: 'pod'; pod: PodInfo; workload?: WorkloadOwner }
  | { state: 'workload'; workload: WorkloadOwner; serviceAccount?: string; pods: PodInfo[] }
  | { state: 'gone'; deleted?: PodInfo };

export function resolvePod(inv: ClusterInventory, namespace: string, name: string): ResolvedPod {
  const pod = inv.pod(namespace, name);
  if (pod && pod.deletedAt === undefined) return pod.workload ? { state: 'pod', pod, workload: pod.workload } : { state: 'pod', pod };
  const w = inv.workload(namespace, name);
  if (w) {
    const ref: WorkloadOwner = { kind: w.kind, namespace: w.namespace, name: w.name };
    return {
      state: 'workload',
      workload: ref,
      ...(w.serviceAccount ? { serviceAccount: w.serviceAccount } : {}),
      pods: inv.podsOf(ref).filter((p) => p.deletedAt === undefined),
    };
  }
  return pod ? { state: 'gone', deleted: pod } : { state: 'gone' };
}

/** Workload kinds that `kubectl rollout restart` replaces pod by pod. */
export const RESTARTABLE = new Set<string>(['Deployment', 'StatefulSet', 'DaemonSet']);
