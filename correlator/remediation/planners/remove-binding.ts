/**
 * remove-binding: back up and delete the binding the actor gave itself during the incident (the
 * root cause's escalation), and the binding the root cause names as the enabler unless its role can
 * be tightened instead (tighten-role.ts).
 */
import type { BindingRef, Remediation, TimelineEntry } from '../../incident.js';
import { bindingAttribute, describeActor, describeBinding, describeTarget, requestCount } from '../../root-cause.js';
import { plural, remediation, withRejections } from '../building-blocks.js';
import type { PlanContext } from '../context.js';
import { display, isName, isRbacName } from '../names.js';
import { legitimatePermissions } from './legitimate-permissions.js';
import { tightenable } from './tighten-role.js';

/** A binding's name for a title: itself when it is a valid name, else quoted. */
const nameText = (s: string, valid: (s: string) => boolean): string => (valid(s) ? s : display(s));

function title(b: BindingRef): string {
  if (b.kind === 'ClusterRoleBinding') return `Remove ClusterRoleBinding ${nameText(b.name, isRbacName)}`;
  return b.namespace
    ? `Remove RoleBinding ${nameText(b.namespace, isName)}/${nameText(b.name, isRbacName)}`
    : `Remove RoleBinding ${nameText(b.name, isRbacName)} (its namespace was not recorded)`;
}

/** The allowed write of the binding in the timeline, if the actor made one. */
function writeOf(ctx: PlanContext, b: BindingRef): TimelineEntry | undefined {
  const resource = b.kind === 'ClusterRoleBinding' ? 'clusterrolebindings' : 'rolebindings';
  return ctx.incident.timeline.find(
    (e) =>
      e.outcome === 'allowed' &&
      e.target.resource === resource &&
      e.target.name === b.name &&
      (b.kind === 'ClusterRoleBinding' || e.target.namespace === b.namespace),
  );
}

/** What the binding allowed in the incident, and who impersonated whom through it. */
function grantedThrough(ctx: PlanContext, b: BindingRef): string {
  const key = bindingAttribute(b);
  const granted = ctx.incident.timeline.filter((e) => e.outcome === 'allowed' && e.attributes.binding === key);
  const examples = [...new Set(granted.map((e) => [e.target.verb, describeTarget(e.target)].filter(Boolean).join(' ')).filter(Boolean))].slice(0, 3);
  const granting =
    granted.length > 0
      ? ` The API server named it as what allowed ${plural(requestCount(granted), 'request')} of the incident${examples.length ? ` (${examples.join('; ')})` : ''}.`
      : '';
  const actor = describeActor(ctx.incident.actor);
  const impersonated = [...new Set(granted.flatMap((e) => (e.attributes.impersonated ? [e.attributes.impersonated] : [])))];
  if (impersonated.length > 0)
    return `${granting} Those requests were made while ${actor} impersonated ${impersonated.map(display).join(', ')}: the binding grants its role to the impersonated identity, whose legitimate use ends too, so withdrawing the impersonate permission from ${actor} is the narrower fix.`;
  const impersonators = [
    ...new Set(ctx.incident.timeline.flatMap((e) => (e.attributes.impersonator && !e.attributes.impersonated ? [e.attributes.impersonator] : []))),
  ];
  // Older signals: the actor is the impersonated identity, the real user only an attribute.
  return impersonators.length > 0
    ? `${granting} The requests were made by ${impersonators.map(display).join(', ')} impersonating the actor: also review who may impersonate it.`
    : granting;
}

function removeOne(ctx: PlanContext, b: BindingRef, why: 'enabler' | 'escalation'): Remediation[] {
  const namespaced = b.kind === 'RoleBinding';
  const heading = title(b);
  if (!isRbacName(b.name) || (namespaced && b.namespace !== undefined && !isName(b.namespace))) {
    return withRejections([], [namespaced && b.namespace !== undefined ? `${b.namespace}/${b.name}` : b.name], 'remove-binding', heading);
  }
  const resource = b.kind.toLowerCase();
  const role = b.roleKind && b.roleName ? `${b.roleKind} ${isRbacName(b.roleName) ? b.roleName : display(b.roleName)}` : 'its role';
  const granted = grantedThrough(ctx, b);
  const write = why === 'escalation' ? writeOf(ctx, b) : undefined;
  const changed = write?.target.verb === 'update' || write?.target.verb === 'patch';
  const enabler = ctx.incident.rootCause.enablingBinding;
  const rationale =
    why === 'escalation'
      ? `${describeActor(ctx.incident.actor)} ${changed ? 'changed' : 'created'} ${b.kind} ${b.name} during the incident${enabler ? `, with the power of ${describeBinding(enabler)}` : ''}. It grants ${role}.${granted} It is backed up, then deleted.${
          enabler
            ? tightenable(enabler)
              ? ` The role that let the actor write it is tightened next.`
              : ` ${describeBinding(enabler)}, which let the actor write it, is removed next.`
            : ''
        }`
      : `${b.kind} ${b.name} grants ${role} to the actor.${granted} It is backed up, then deleted.${
          !ctx.sa
            ? ''
            : legitimatePermissions(ctx).byScope.size > 0
              ? ' The least-privilege Role suggested with this plan keeps the access the identity used legitimately.'
              : ' The identity showed no legitimate API use, so no replacement is proposed: it likely needs no API access at all (set automountServiceAccountToken: false on its pods).'
        }`;
  const risk =
    why === 'escalation'
      ? changed
        ? 'It existed before the incident and was changed during it: every subject loses the role, and the backup holds the changed version. If it was legitimate before, re-create it as it was (from version control or an older backup) without the subjects the actor added.'
        : 'It was created during the incident, so nothing legitimate should depend on it; still read its subjects and creation time in the first command, because everyone it binds loses the role.'
      : `Every subject of this binding loses the role, not only the actor, and kubevigil cannot see the others: read the USERS, GROUPS and SERVICEACCOUNTS columns of the first command, and if anyone else needs the access, re-create the binding from the backup without the actor instead.${b.name.startsWith('system:') ? ' Bindings named system: are defaults the API server re-creates when it restarts: prefer removing whatever made the actor a subject.' : ''} Legitimate calls that relied on it fail until the replacement is applied.`;
  if (namespaced && b.namespace === undefined) {
    // The audit data did not say where it is: find it first, by name, in every namespace.
    return [
      remediation(
        'remove-binding',
        heading,
        `${rationale} The audit data does not name its namespace: the command lists the RoleBindings of that name in every namespace; back up and delete the one that binds the actor (kubectl -n with its namespace, then get -o yaml and delete).`,
        risk,
        [`kubectl get rolebindings -A --field-selector metadata.name=${b.name} -o wide`],
      ),
    ];
  }
  const scope = namespaced ? `-n ${b.namespace} ` : '';
  const backup = `${resource}-${namespaced ? `${b.namespace}-` : ''}${b.name}.backup.yaml`;
  return [
    remediation('remove-binding', heading, rationale, risk, [
      `kubectl ${scope}get ${resource} ${b.name} -o wide`,
      `kubectl ${scope}get ${resource} ${b.name} -o yaml > ${backup}`,
      `kubectl ${scope}delete ${resource} ${b.name}`,
    ]),
  ];
}

export function removeBinding(ctx: PlanContext): Remediation[] {
  const { escalation, enablingBinding } = ctx.incident.rootCause;
  return [
    ...(escalation ? removeOne(ctx, escalation, 'escalation') : []),
    // After an escalation, a role that can be tightened is (tighten-role); one that cannot (a
    // built-in role, or one the audit data does not name) goes with its binding.
    ...(enablingBinding && (!escalation || !tightenable(enablingBinding)) ? removeOne(ctx, enablingBinding, 'enabler') : []),
  ];
}
