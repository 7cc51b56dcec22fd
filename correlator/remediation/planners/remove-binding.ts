/** remove-binding: back up and delete the binding the root cause names as the enabler. */
import type { Remediation } from '../../incident.js';
import { plural, remediation, withRejections } from '../building-blocks.js';
import type { PlanContext } from '../context.js';
import { display, isName, isRbacName } from '../names.js';
import { legitimatePermissions } from './legitimate-permissions.js';

export function removeBinding(ctx: PlanContext): Remediation[] {
  const b = ctx.incident.rootCause.enablingBinding;
  if (!b) return [];
  const namespaced = b.kind === 'RoleBinding';
  const title = `Remove ${b.kind} ${namespaced ? `${b.namespace ?? '?'}/` : ''}${b.name}`;
  if (!isRbacName(b.name) || (namespaced && !(b.namespace && isName(b.namespace)))) {
    return withRejections([], [namespaced ? `${b.namespace ?? ''}/${b.name}` : b.name], 'remove-binding', title);
  }
  const scope = namespaced ? `-n ${b.namespace} ` : '';
  const resource = b.kind.toLowerCase();
  const backup = `${resource}-${namespaced ? `${b.namespace}-` : ''}${b.name}.backup.yaml`;
  const key = namespaced ? `${b.kind}/${b.namespace}/${b.name}` : `${b.kind}/${b.name}`;
  const granted = ctx.incident.timeline.filter((e) => e.outcome === 'allowed' && e.attributes.binding === key);
  const examples = [
    ...new Set(
      granted.map((e) =>
        [e.target.verb, e.target.resource, e.target.namespace && e.target.name ? `${e.target.namespace}/${e.target.name}` : e.target.name]
          .filter(Boolean)
          .join(' '),
      ),
    ),
  ].slice(0, 3);
  const role = b.roleKind && b.roleName ? ` ${b.roleKind} ${isRbacName(b.roleName) ? b.roleName : display(b.roleName)}` : ' its role';
  const granting =
    granted.length > 0 ? ` The API server named it as what allowed ${plural(granted.length, 'request')} of the incident (${examples.join('; ')}).` : '';
  const replacement = !ctx.sa
    ? ''
    : legitimatePermissions(ctx).byScope.size > 0
      ? ' The least-privilege Role suggested with this plan keeps the access the identity used legitimately.'
      : ' The identity showed no legitimate API use, so no replacement is proposed: it likely needs no API access at all (set automountServiceAccountToken: false on its pods).';
  const impersonators = [...new Set(ctx.incident.timeline.flatMap((e) => (e.attributes.impersonator ? [e.attributes.impersonator] : [])))];
  const impersonation =
    impersonators.length > 0
      ? ` The requests were made by ${impersonators.map(display).join(', ')} impersonating the actor: also review who may impersonate it.`
      : '';
  return [
    remediation(
      'remove-binding',
      title,
      `${b.kind} ${b.name} grants${role} to the actor.${granting} It is backed up, then deleted.${replacement}${impersonation}`,
      `Every subject of this binding loses the role, not only the actor, and kubevigil cannot see the others: read the USERS, GROUPS and SERVICEACCOUNTS columns of the first command, and if anyone else needs the access, re-create the binding from the backup without the actor instead.${b.name.startsWith('system:') ? ' Bindings named system: are defaults the API server re-creates when it restarts: prefer removing whatever made the actor a subject.' : ''} Legitimate calls that relied on it fail until the replacement is applied.`,
      [
        `kubectl ${scope}get ${resource} ${b.name} -o wide`,
        `kubectl ${scope}get ${resource} ${b.name} -o yaml > ${backup}`,
        `kubectl ${scope}delete ${resource} ${b.name}`,
      ],
    ),
  ];
}
