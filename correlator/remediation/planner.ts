/**
 * Remediation planner: turns an incident's root cause and evidence into typed suggestions, ordered
 * by what to do first (contain, then remove access, then harden), each with the exact kubectl
 * commands and complete manifests an SRE applies by hand. Nothing here is ever applied.
 *
 * One planner per remediation kind, in planners/ (their order is the plan's, planners/index.ts);
 * they query the signal kinds' traits (correlator/signal-kinds.ts), never kind names. Every name
 * placed in a command comes from audit data an attacker can influence and will be pasted into a
 * shell, so it must be a valid Kubernetes name (names.ts); anything else is left out and said so.
 *
 * With a cluster inventory (context.ts), the planners check every object a command names against
 * the live cluster (cluster.ts, rbac.ts): a pod resolves to its owner workload, an object that is
 * gone is said to be gone with no command, roles are read as they are. Without one, or before it has
 * read the cluster, plans rest on the audit data alone, and each suggestion's `basis` says which.
 */
import type { Remediation } from '../incident.js';
import { liveInventory } from './cluster.js';
import type { PlanContext, PlanInput } from './context.js';
import { checkRefs, type Checked, type Ref } from './names.js';
import { PLANNERS } from './planners/index.js';

export type { PermissionUse, PlanInput } from './context.js';

function actorServiceAccount(incident: PlanInput['incident']): Checked<Ref> {
  const key = incident.actor.key;
  return key.startsWith('sa:') ? checkRefs([key.slice(3)]) : { ok: [], rejected: [] };
}

const PENDING = ' Not checked against the cluster: its inventory has not finished reading it, so the names come from the audit data alone.';

/**
 * Suggested remediations for an incident, in the order to apply them; none is ever applied
 * automatically. With a cluster inventory that has read the cluster, every suggestion is checked
 * against it (`basis: 'cluster-inventory'`); otherwise it rests on the audit data (`'audit-data'`).
 */
export function planRemediations(input: PlanInput): Remediation[] {
  const ctx: PlanContext = { incident: input.incident, usage: input.usage };
  const {
    ok: [sa],
    rejected: [rejectedSa],
  } = actorServiceAccount(input.incident);
  if (sa) ctx.sa = sa;
  if (rejectedSa !== undefined) ctx.rejectedSa = rejectedSa;
  const inventory = liveInventory(input.inventory);
  if (inventory) ctx.inventory = inventory;
  else if (input.inventory) ctx.inventoryPending = true;
  const basis = inventory ? 'cluster-inventory' : 'audit-data';
  return PLANNERS.flatMap((plan) => plan(ctx)).map((r) => ({ ...r, ...(ctx.inventoryPending ? { rationale: `${r.rationale}${PENDING}` } : {}), basis }));
}
