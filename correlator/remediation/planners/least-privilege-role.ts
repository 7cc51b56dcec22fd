/**
 * least-privilege-role: a Role with exactly what the actor used legitimately, to replace the
 * binding. With the cluster inventory, it is a diff against the enabling role's actual rules: what
 * of each stays (narrowed to what was used), and what goes (what the attack used, what was never used).
 */
import type { BindingRef, RbacRule, Remediation, RoleDiff, RuleDiff } from '../../incident.js';
import { bindingAttribute } from '../../root-cause.js';
import { manifest, metadata, noteOnly, remediation, withRejections } from '../building-blocks.js';
import { rejectedActor, type PermissionUse, type PlanContext } from '../context.js';
import { refText } from '../names.js';
import { requestOf, ruleManifest, rulesAllowing, ruleText } from '../rbac.js';
import { enablerInCluster, grants, legitimatePermissions } from './legitimate-permissions.js';
import { enablerRole, tightenable } from './tighten-role.js';

const sameRule = (a: RbacRule, b: RbacRule): boolean => {
  const norm = (r: RbacRule) =>
    JSON.stringify([r.apiGroups ?? [], r.resources ?? [], r.resourceNames ?? [], r.nonResourceURLs ?? [], r.verbs].map((l) => [...l].sort()));
  return norm(a) === norm(b);
};

/** The enabling role's rules against the uses kept: what of each stays, and why the rest goes. */
function roleDiff(ctx: PlanContext, b: BindingRef, kept: readonly PermissionUse[]): RoleDiff | undefined {
  const enabler = enablerInCluster(ctx);
  if (!enabler) return undefined;
  const { binding, role } = enabler;
  const key = bindingAttribute(b);
  const attack = new Set<RbacRule>();
  for (const e of ctx.incident.timeline) {
    if (e.outcome !== 'allowed' || e.attributes.binding !== key) continue;
    const req = requestOf(e);
    if (req) for (const r of rulesAllowing(role.rules, req)) attack.add(r);
  }
  const rules = role.rules.map((rule): RuleDiff => {
    const uses = kept.filter((u) => grants({ binding, role: { ...role, rules: [rule] } }, u));
    const byResource = new Map<string, Set<string>>();
    for (const u of uses) {
      const k = `${u.apiGroup}\u0000${u.subresource ? `${u.resource}/${u.subresource}` : u.resource}`;
      byResource.set(k, (byResource.get(k) ?? new Set()).add(u.verb));
    }
    const stays = [...byResource].sort().map(([k, vs]): RbacRule => {
      const [apiGroup = '', resource = ''] = k.split('\u0000');
      return { apiGroups: [apiGroup], resources: [resource], verbs: [...vs].sort() };
    });
    const copy = ruleManifest(rule);
    if (stays.length === 1 && sameRule(stays[0]!, rule)) return { rule: copy, stays };
    const removed = attack.has(rule)
      ? stays.length
        ? 'narrowed to what was used legitimately; the attack used the rest'
        : 'the attack used it'
      : stays.length
        ? 'narrowed to what was used legitimately'
        : 'not used legitimately';
    return { rule: copy, stays, removed };
  });
  return { kind: role.kind, name: role.name, ...(role.namespace ? { namespace: role.namespace } : {}), rules };
}

/** A diff in words: what goes, what is narrowed, what stays. */
function diffWords(d: RoleDiff): string {
  const parts = d.rules.map((r) =>
    r.removed === undefined
      ? `\`${ruleText(r.rule)}\` stays`
      : r.stays.length
        ? `\`${ruleText(r.rule)}\` becomes ${r.stays.map((x) => `\`${ruleText(x)}\``).join(' and ')} (${r.removed})`
        : `\`${ruleText(r.rule)}\` goes (${r.removed})`,
  );
  return `Against ${d.kind} ${d.name} as the cluster has it (inventory): ${parts.join('; ')}.`;
}

export function leastPrivilegeRole(ctx: PlanContext): Remediation[] {
  // The replacement of an enabling binding that is removed; after an escalation whose enabler's
  // role is tightened instead (tighten-role), the binding stays and needs none.
  const { escalation, enablingBinding } = ctx.incident.rootCause;
  if (escalation && enablingBinding && tightenable(enablerRole(ctx, enablingBinding))) return [];
  const sa = ctx.sa;
  if (!sa) return ctx.usage.length > 0 ? withRejections([], rejectedActor(ctx), 'least-privilege-role', 'Least-privilege access for the actor') : [];
  const { byScope, notes, rejected, kept } = legitimatePermissions(ctx);
  if (byScope.size === 0) return [];
  if (ctx.inventory && !ctx.inventory.serviceAccountExists(sa.namespace, sa.name))
    return [
      noteOnly(
        'least-privilege-role',
        `Service account ${refText(sa)} is gone`,
        `The cluster (inventory) no longer has service account ${refText(sa)}: there is no identity to grant least-privilege access to, and none is proposed. If it is re-created, grant it only what it used legitimately.`,
      ),
    ];
  const diff = enablingBinding ? roleDiff(ctx, enablingBinding, kept) : undefined;
  const roleName = `kubevigil-least-privilege-${sa.name}`;
  // A ClusterRole is shared by every namespace, so its name carries the service account's namespace.
  const clusterRoleName = `kubevigil-least-privilege-${sa.namespace}-${sa.name}`;
  const subject = { kind: 'ServiceAccount', name: sa.name, namespace: sa.namespace };
  const docs = [...byScope].flatMap(([scope, rules]) => {
    const [kind, name, ns] = scope === '' ? ['ClusterRole', clusterRoleName, undefined] : ['Role', roleName, scope];
    return [
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind, metadata: metadata(ctx, name, ns), rules },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: `${kind}Binding`,
        metadata: metadata(ctx, name, ns),
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind, name },
        subjects: [subject],
      },
    ];
  });
  const file = `least-privilege-${sa.namespace}-${sa.name}.yaml`;
  const user = `system:serviceaccount:${sa.namespace}:${sa.name}`;
  const scopes = [...byScope.keys()].map((s) => (s === '' ? 'cluster-wide' : s));
  const out = [
    remediation(
      'least-privilege-role',
      `Least-privilege access for service account ${refText(sa)}`,
      [
        `Generated from the requests ${refText(sa)} made legitimately (outside the attack), as audit2rbac does: exactly those verbs on those resources (${scopes.join(', ')}), bound to the service account only. Apply it when the enabling binding is removed so the workload keeps working.`,
        ...(diff ? [diffWords(diff)] : []),
        ...notes,
      ].join(' '),
      "Calls the workload makes rarely (start-up, leader election, a monthly job) may be missing from the observed usage and would be refused; compare the last command's output with what the application needs.",
      [`kubectl apply -f ${file}`, ...[...byScope.keys()].map((s) => `kubectl auth can-i --list --as=${user}${s === '' ? '' : ` -n ${s}`}`)],
      [manifest(file, docs)],
    ),
  ].map((r) => (diff ? { ...r, roleDiff: diff } : r));
  return withRejections(out, rejected, 'least-privilege-role', `Least-privilege access for service account ${refText(sa)}`);
}
