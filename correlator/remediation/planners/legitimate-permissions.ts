/**
 * The actor's legitimate usage as RBAC rules, as audit2rbac derives them: what least-privilege-role
 * grants, and what remove-binding says about a replacement.
 */
import type { PermissionUse, PlanContext } from '../context.js';
import { isName } from '../names.js';

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

/** The actor's legitimate usage as RBAC rules per namespace ('' = cluster-wide), and what was left out. */
export function legitimatePermissions(ctx: PlanContext): { byScope: Map<string, PolicyRule[]>; notes: string[]; rejected: string[] } {
  const verbs = new Map<string, Map<string, Set<string>>>();
  const left = { ownSecrets: false, otherSecrets: false, escalation: new Set<string>() };
  const rejected: string[] = [];
  for (const u of ctx.usage) {
    if (u.count <= 0) continue;
    if (!isValidUse(u)) rejected.push(`${u.verb} ${u.apiGroup}/${u.resource}${u.subresource ? `/${u.subresource}` : ''} in ${u.namespace ?? 'the cluster'}`);
    else if (u.resource === 'secrets' && u.apiGroup === '')
      left[u.namespace !== undefined && u.namespace === ctx.sa?.namespace ? 'ownSecrets' : 'otherSecrets'] = true;
    else if (ESCALATION_VERBS.has(u.verb)) left.escalation.add(u.verb);
    else {
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
  return { byScope, notes, rejected };
}
