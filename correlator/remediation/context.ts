/**
 * What every planner receives: the incident with its root cause, the actor's legitimate API usage,
 * the live cluster when an inventory has read it, and the facts about the actor derived once by
 * the entry point (planner.ts).
 */
import type { Incident, Remediation, TimelineEntry } from '../incident.js';
import type { ClusterInventory } from '../inventory.js';
import { severityRank } from '../severity.js';
import { hasTrait, type KindTrait } from '../signal-kinds.js';
import type { PermissionUse } from '../ports.js';
import type { Ref } from './names.js';

export type { PermissionUse };

/** What the planner needs: the incident with its root cause, and the actor's legitimate API usage. */
export interface PlanInput {
  incident: Omit<Incident, 'remediations'>;
  /** Requests the actor made successfully and that were NOT part of the attack (its legitimate usage), as audit2rbac would collect. May be empty. */
  usage: PermissionUse[];
  /**
   * The live cluster (services/inventory/), when configured: every name a command carries is
   * checked against it, pods resolve to their workloads, roles and bindings are read as they are.
   * Without it, or before it has read the cluster once, plans rest on the audit data alone.
   */
  inventory?: ClusterInventory | undefined;
}

type IncidentData = PlanInput['incident'];

/** Facts shared by the planners, derived once from the input. */
export interface PlanContext {
  incident: IncidentData;
  usage: readonly PermissionUse[];
  /** The acting service account, when the actor is one and its names are safe. */
  sa?: Ref;
  /** The acting service account's `ns/name` when the actor is one whose names are unsafe. */
  rejectedSa?: string;
  /** The live cluster, when an inventory is given and has read the cluster once. */
  inventory?: ClusterInventory;
  /** An inventory was given but has not read the cluster yet: the plan rests on the audit data, and says so. */
  inventoryPending?: boolean;
}

/** One planner per remediation kind; the list order is the order of the plan (planners/index.ts). */
export type Planner = (ctx: PlanContext) => Remediation[];

/** The timeline entries whose kind has the trait (allowed ones only, if asked). */
export function entriesWith(ctx: PlanContext, trait: KindTrait, allowedOnly = false): TimelineEntry[] {
  return ctx.incident.timeline.filter((e) => hasTrait(e.kind, trait) && (!allowedOnly || e.outcome === 'allowed'));
}

/** The actor's `ns/name` when it is a service account whose names were refused, for the rationale. */
export const rejectedActor = (ctx: PlanContext): string[] => (ctx.rejectedSa === undefined ? [] : [ctx.rejectedSa]);

// Kinds that, with no recorded outcome (mesh logs, alerts, traces), still show an attack.
const ATTACK_TRAITS: readonly KindTrait[] = ['needs-power', 'high-impact', 'missing-control', 'mesh-weakening', 'credential-source'];

/**
 * True when the evidence shows an attack, not only an attempt: a signal of medium severity or more
 * that went through (allowed, or with no recorded outcome and a kind that shows power or impact)
 * and is not a mere record of a change (activity trail). Only denials, only info/low signals or
 * only records do not justify cutting off or deleting a workload.
 */
export function attackShown(ctx: PlanContext): boolean {
  return ctx.incident.timeline.some(
    (e) =>
      !hasTrait(e.kind, 'activity-trail') &&
      severityRank(e.severity) >= severityRank('medium') &&
      (e.outcome === 'allowed' || (e.outcome === 'unknown' && ATTACK_TRAITS.some((t) => hasTrait(e.kind, t)))),
  );
}

// Kinds that come from, or are about, the service mesh.
const MESH_TRAITS: readonly KindTrait[] = ['mtls-failure', 'mtls-gap', 'mesh-weakening', 'service-call'];
// Attributes only a mesh proxy's log or a mesh-aware span sets.
const MESH_ATTRIBUTES = ['meshKind', 'spiffe', 'peerSpiffe', 'sourcePrincipal', 'destinationPrincipal'];

/** True when the entry is evidence of a service mesh: a mesh kind, or a line an Istio/Envoy/Linkerd proxy wrote. */
export function isMeshEvidence(e: TimelineEntry): boolean {
  return MESH_TRAITS.some((t) => hasTrait(e.kind, t)) || MESH_ATTRIBUTES.some((a) => Boolean(e.attributes[a]));
}

/** The namespace of an entry's actor key (`sa:<ns>/…`, `pod:<ns>/…`), if it has one. */
function actorNamespace(key: string): string | undefined {
  const m = /^(?:sa|pod):([^/]+)\//.exec(key);
  return m?.[1];
}

/**
 * The namespaces the incident shows to be in a service mesh: the target, actor, source and
 * destination namespaces of its mesh evidence ({@link isMeshEvidence}). Mesh policies
 * (PeerAuthentication, AuthorizationPolicy) do nothing in a namespace without sidecars.
 */
export function meshNamespaces(ctx: PlanContext): Set<string> {
  const out = new Set<string>();
  for (const e of ctx.incident.timeline) {
    if (!isMeshEvidence(e)) continue;
    for (const ns of [e.target.namespace, actorNamespace(e.actor), e.attributes.sourceNamespace, e.attributes.destinationNamespace]) if (ns) out.add(ns);
  }
  return out;
}
