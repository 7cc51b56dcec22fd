/**
 * The actor's legitimate usage as RBAC rules, as audit2rbac derives them: what least-privilege-role
 * grants, and what remove-binding says about a replacement.
 */
import type { BindingInfo, RoleInfo } from '../../inventory.js';
import { liveBinding, roleOf } from '../cluster.js';
import type { PermissionUse, PlanContext } from '../context.js';
import { isName } from '../names.js';
import { ruleAllows } from '../rbac.js';

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

// Verbs that let an identity grant itself more; never handed out from observed usage.
const ESCALATION_VERBS = new Set(['bind', 'escalate', 'impersonate']);
const VERB = /^[a-z]+$/;

const isValidUse = (u: PermissionUse): boolean =>
  VERB.test(u.verb) &&
  isName(u.resource) &&
  (u.apiGroup === '' || isName(u.apiGroup)) &&
  (u.subresource === undefined || isName(u.subresource)) &&
  (u.namespace === undefined || isName(u.namespace));

/** The enabling binding and its role as the cluster has them, when an inventory answers and both exist. */
export function enablerInCluster(ctx: PlanContext): { binding: BindingInfo; role: RoleInfo } | undefined {
  const b = ctx.incident.rootCause.enablingBinding;
  if (!ctx.inventory || !b) return undefined;
  const binding = liveBinding(ctx.inventory, b)?.found;
  const role = binding ? roleOf(ctx.inventory, binding) : undefined;
  return binding && role ? { binding, role } : undefined;
}

/** True when the role, granted through the binding, allows the use (a rule limited to names counts: the usage does not record names). */
export function grants(enabler: { binding: BindingInfo; role: RoleInfo }, u: PermissionUse): boolean {
  if (enabler.binding.kind === 'RoleBinding' && u.namespace !== enabler.binding.namespace) return false;
  const req = { verb: u.verb, apiGroup: u.apiGroup, resource: u.resource, ...(u.subresource ? { subresource: u.subresource } : {}) };
  return enabler.role.rules.some((r) => ruleAllows({ ...r, resourceNames: [] }, req));
}

/**
 * The actor's legitimate usage as RBAC rules per namespace ('' = cluster-wide), what was left out,
 * and the uses kept. With the cluster inventory, only what the enabling binding's role grants is
 * kept (the rest comes from other bindings, which stay), and uses in namespaces that no longer
 * exist are left out.
 */
export function legitimatePermissions(ctx: PlanContext): {
  byScope: Map<string, PolicyRule[]>;
  notes: string[];
  rejected: string[];
  kept: PermissionUse[];
  /** Kinds of request left out because another binding grants them (cluster inventory). */
  grantedElsewhere: number;
} {
  const verbs = new Map<string, Map<string, Set<string>>>();
  const left = { ownSecrets: false, otherSecrets: false, escalation: new Set<string>(), elsewhere: 0, goneNs: new Set<string>() };
  const rejected: string[] = [];
  const kept: PermissionUse[] = [];
  const enabler = enablerInCluster(ctx);
  for (const u of ctx.usage) {
    if (u.count <= 0) continue;
    if (!isValidUse(u)) rejected.push(`${u.verb} ${u.apiGroup}/${u.resource}${u.subresource ? `/${u.subresource}` : ''} in ${u.namespace ?? 'the cluster'}`);
    else if (ctx.inventory && u.namespace !== undefined && !ctx.inventory.namespaceExists(u.namespace)) left.goneNs.add(u.namespace);
    else if (enabler && !grants(enabler, u)) left.elsewhere++;
    else if (u.resource === 'secrets' && u.apiGroup === '')
      left[u.namespace !== undefined && u.namespace === ctx.sa?.namespace ? 'ownSecrets' : 'otherSecrets'] = true;
    else if (ESCALATION_VERBS.has(u.verb)) left.escalation.add(u.verb);
    else {
      kept.push(u);
      const scope = u.namespace ?? '';
      const byResource = verbs.get(scope) ?? new Map<string, Set<string>>();
      const key = `${u.apiGroup}\u0000${u.subresource ? `${u.resource}/${u.subresource}` : u.resource}`;
      byResource.set(key, (byResource.get(key) ?? new Set()).add(u.verb));
      verbs.set(scope, byResource);
    }
  }
  const byScope = new Map(
    [...verbs.keys()].sort().map((scope): [string, PolicyRule[]] => [
      scope,
      [...verbs.get(scope)!]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([key, vs]) => {
          const [apiGroup = '', resource = ''] = key.split('\u0000');
          return { apiGroups: [apiGroup], resources: [resource], verbs: [...vs].sort() };
        }),
    ]),
  );
  const notes: string[] = [];
  if (left.ownSecrets)
    notes.push(
      `It also read secrets in its own namespace, but the usage does not say which, so secrets are left out: add a rule with resourceNames for the ones it needs.`,
    );
  if (left.otherSecrets) notes.push('Secret access outside its own namespace is left out: that is what this kind of attack uses.');
  if (left.escalation.size > 0) notes.push(`The verbs ${[...left.escalation].sort().join(', ')} are left out: they let an identity grant itself more.`);
  if (enabler && left.elsewhere > 0)
    notes.push(
      `${left.elsewhere} kind${left.elsewhere === 1 ? '' : 's'} of request ${left.elsewhere === 1 ? 'is' : 'are'} left out because ${enabler.role.kind} ${enabler.role.name} does not grant ${left.elsewhere === 1 ? 'it' : 'them'} (cluster inventory): another binding does, and it stays.`,
    );
  if (left.goneNs.size > 0)
    notes.push(
      `Requests in ${[...left.goneNs].sort().join(', ')} are left out: the cluster (inventory) no longer has ${left.goneNs.size === 1 ? 'that namespace' : 'those namespaces'}.`,
    );
  return { byScope, notes, rejected, kept, grantedElsewhere: left.elsewhere };
}
