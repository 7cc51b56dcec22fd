/** least-privilege-role: a Role with exactly what the actor used legitimately, to replace the binding. */
import type { Remediation } from '../../incident.js';
import { manifest, metadata, remediation, withRejections } from '../building-blocks.js';
import { rejectedActor, type PlanContext } from '../context.js';
import { refText } from '../names.js';
import { legitimatePermissions } from './legitimate-permissions.js';
import { tightenable } from './tighten-role.js';

export function leastPrivilegeRole(ctx: PlanContext): Remediation[] {
  // The replacement of an enabling binding that is removed; after an escalation whose enabler's
  // role is tightened instead (tighten-role), the binding stays and needs none.
  const { escalation, enablingBinding } = ctx.incident.rootCause;
  if (escalation && enablingBinding && tightenable(enablingBinding)) return [];
  const sa = ctx.sa;
  if (!sa) return ctx.usage.length > 0 ? withRejections([], rejectedActor(ctx), 'least-privilege-role', 'Least-privilege access for the actor') : [];
  const { byScope, notes, rejected } = legitimatePermissions(ctx);
  if (byScope.size === 0) return [];
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
        ...notes,
      ].join(' '),
      "Calls the workload makes rarely (start-up, leader election, a monthly job) may be missing from the observed usage and would be refused; compare the last command's output with what the application needs.",
      [`kubectl apply -f ${file}`, ...[...byScope.keys()].map((s) => `kubectl auth can-i --list --as=${user}${s === '' ? '' : ` -n ${s}`}`)],
      [manifest(file, docs)],
    ),
  ];
  return withRejections(out, rejected, 'least-privilege-role', `Least-privilege access for service account ${refText(sa)}`);
}
