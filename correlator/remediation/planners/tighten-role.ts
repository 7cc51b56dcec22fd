/**
 * tighten-role: after an escalation (the actor wrote itself a binding), the role that allowed the
 * write keeps managing bindings but loses bind, escalate and wildcards, so the API server's
 * escalation check refuses any binding to a role with more power than its holder has.
 */
import type { BindingRef, Remediation } from '../../incident.js';
import { describeActor, describeBinding } from '../../root-cause.js';
import { manifest, metadata, remediation } from '../building-blocks.js';
import type { PlanContext } from '../context.js';
import { isName, isRbacName } from '../names.js';

// Roles the API server or every cluster ships: never rewritten from here (their bindings go instead).
const BUILT_IN = new Set(['cluster-admin', 'admin', 'edit', 'view']);

/** True when the binding's role is named, safe to put in a command, and not a built-in role: it can be rewritten. */
export function tightenable(b: BindingRef): boolean {
  const name = b.roleName;
  if (!name || !isRbacName(name) || BUILT_IN.has(name) || name.startsWith('system:')) return false;
  if (b.roleKind === 'ClusterRole') return true;
  // A Role lives in the namespace of the RoleBinding that grants it.
  return b.roleKind === 'Role' && b.kind === 'RoleBinding' && b.namespace !== undefined && isName(b.namespace);
}

const RBAC_GROUP = 'rbac.authorization.k8s.io';

export function tightenRole(ctx: PlanContext): Remediation[] {
  const { escalation, enablingBinding: b } = ctx.incident.rootCause;
  if (!escalation || !b || !tightenable(b)) return [];
  const kind = b.roleKind as 'ClusterRole' | 'Role';
  const role = b.roleName!;
  const ns = kind === 'Role' ? b.namespace : undefined;
  const clusterRole = kind === 'ClusterRole';
  const doc = {
    apiVersion: `${RBAC_GROUP}/v1`,
    kind,
    metadata: metadata(ctx, role, ns),
    rules: [
      {
        apiGroups: [RBAC_GROUP],
        resources: clusterRole ? ['rolebindings', 'clusterrolebindings'] : ['rolebindings'],
        verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
      },
      { apiGroups: [RBAC_GROUP], resources: clusterRole ? ['roles', 'clusterroles'] : ['roles'], verbs: ['get', 'list', 'watch'] },
    ],
  };
  const resource = kind.toLowerCase();
  const scope = ns ? `-n ${ns} ` : '';
  const base = `${resource}-${ns ? `${ns}-` : ''}${role.replace(/:/g, '-')}`;
  const file = `${base}.tightened.yaml`;
  const roleText = `${kind} ${role}`;
  const checks = ctx.sa
    ? ['bind', 'escalate'].map(
        (verb) =>
          `kubectl auth can-i ${verb} ${clusterRole ? 'clusterroles' : 'roles'} ${ns ? `-n ${ns} ` : ''}--as=system:serviceaccount:${ctx.sa!.namespace}:${ctx.sa!.name}`,
      )
    : [];
  return [
    remediation(
      'tighten-role',
      `Tighten ${roleText}: no bind, escalate or wildcards`,
      `${describeBinding(b)} let ${describeActor(ctx.incident.actor)} write ${describeBinding(escalation, false)}. RBAC refuses a binding to a role with more permissions than its writer holds unless the writer has bind or escalate (or a wildcard that includes them), so ${roleText} grants one of them. This manifest rewrites ${roleText} to manage ${clusterRole ? 'RoleBindings and ClusterRoleBindings' : `RoleBindings in ${ns}`} and read roles, with every verb spelled out and no bind, escalate or wildcard: its holders can still grant what they hold, and the API server refuses the rest, cluster-admin included. kubectl auth reconcile with --remove-extra-permissions replaces the role's rules: the second command prints the current ones (after its aggregationRule, if any), so carry over any other rule the role needs, without bind, escalate, impersonate or * in verbs or resources. If a pipeline must bind particular roles, add a rule with verbs [bind] on ${clusterRole ? 'clusterroles' : 'roles'} and resourceNames listing them, never cluster-admin.${checks.length ? ' The last commands must answer no.' : ''}`,
      `Every subject bound to ${roleText} (the third command lists the bindings) loses the rules not carried over and can no longer grant roles with more power than it holds: automation that does fails until given a bind limited by resourceNames.${clusterRole ? ` A ClusterRole's rules are shared by every binding to it, in every namespace.` : ''} An aggregated ClusterRole is rewritten by its controller: change the roles it aggregates instead.`,
      [
        `kubectl ${scope}get ${resource} ${role} -o yaml > ${base}.backup.yaml`,
        `kubectl ${scope}get ${resource} ${role} -o jsonpath='{.aggregationRule}{"\\n"}{range .rules[*]}{.apiGroups} {.resources} {.resourceNames} {.verbs}{"\\n"}{end}'`,
        `kubectl get clusterrolebindings,rolebindings -A -o wide | grep -wF ${kind}/${role}`,
        `kubectl auth reconcile -f ${file} --remove-extra-permissions`,
        ...checks,
      ],
      [manifest(file, [doc])],
    ),
  ];
}
