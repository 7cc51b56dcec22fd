/**
 * remove-binding: back up and delete the binding the actor gave itself during the incident (the
 * root cause's escalation), and the binding the root cause names as the enabler unless its role can
 * be tightened instead (tighten-role.ts). With the cluster inventory, a binding that also binds
 * other subjects is rewritten without the actor instead of deleted, and one that is gone, or no
 * longer names the actor, is said to be so with no command.
 */
import type { BindingInCluster, BindingRef, RbacSubject, Remediation, TimelineEntry } from '../../incident.js';
import type { BindingInfo } from '../../inventory.js';
import { bindingAttribute, describeActor, describeBinding, describeTarget, requestCount } from '../../root-cause.js';
import { manifest, metadata, noteOnly, plural, remediation, withRejections } from '../building-blocks.js';
import { bindingFacts, holderOf, liveBinding } from '../cluster.js';
import type { PlanContext } from '../context.js';
import { display, isName, isRbacName } from '../names.js';
import { RBAC_GROUP, splitSubjects, subjectManifest, subjectText } from '../rbac.js';
import { legitimatePermissions } from './legitimate-permissions.js';
import { enablerRole, tightenable } from './tighten-role.js';

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

/** The identity the binding served in the incident, as its subjects would name it, in words. */
function holderWords(ctx: PlanContext, username: string | undefined): string {
  if (username === undefined || username === ctx.incident.actor.name || (ctx.sa && username === `system:serviceaccount:${ctx.sa.namespace}:${ctx.sa.name}`))
    return describeActor(ctx.incident.actor);
  return display(username);
}

/**
 * The binding checked against the cluster: gone (nothing to do), no longer naming the identity
 * (nothing to do, or a group to check), naming it alone (back up and delete), or shared (rewritten
 * with the remaining subjects, so no one else loses the role).
 */
function removeInCluster(
  ctx: PlanContext,
  b: BindingRef,
  live: BindingInfo | undefined,
  facts: BindingInCluster,
  why: 'enabler' | 'escalation',
  parts: { heading: string; story: string; next: string; granted: string; changed: boolean; username: string | undefined },
): Remediation[] {
  const namespaced = b.kind === 'RoleBinding';
  const resource = b.kind.toLowerCase();
  const scope = namespaced ? `-n ${b.namespace} ` : '';
  const where = `${b.kind} ${namespaced ? `${b.namespace}/` : ''}${b.name}`;
  if (!live || !facts.exists)
    return [
      noteOnly(
        'remove-binding',
        `${where} is already gone`,
        `The cluster (inventory) has no ${where} any more: there is nothing to delete.${parts.granted} Check how it was removed (the audit log records who deleted it), and that no binding of another name replaced it.`,
      ),
    ];
  const who = holderWords(ctx, parts.username);
  const role = `${live.roleRef.kind} ${live.roleRef.name}`;
  const { maybeMine } = splitSubjects(live.subjects, parts.username);
  const get = `kubectl ${scope}get ${resource} ${b.name} -o wide`;
  const backup = `${resource}-${namespaced ? `${b.namespace}-` : ''}${b.name}.backup.yaml`;
  const save = `kubectl ${scope}get ${resource} ${b.name} -o yaml > ${backup}`;
  if (why === 'escalation' && !parts.changed) {
    // Created during the incident: everything it grants, the attacker granted.
    const subjects = live.subjects.length ? live.subjects.map(subjectText).join(', ') : 'no subject';
    return [
      remediation(
        'remove-binding',
        parts.heading,
        `${parts.story} It is backed up, then deleted. In the cluster (inventory) it binds ${subjects} to ${role}: all of that was granted during the incident.${parts.next}`,
        `It was created during the incident, so nothing legitimate should depend on it; everyone it binds (${subjects}) loses ${role}.`,
        [get, save, `kubectl ${scope}delete ${resource} ${b.name}`],
      ),
    ];
  }
  if (parts.username === undefined)
    // The actor is no user or service account (an unresolved pod or address): its subject cannot be told apart.
    return [
      remediation(
        'remove-binding',
        `Find the actor among the subjects of ${where}`,
        `${parts.story} In the cluster (inventory) it binds ${live.subjects.length ? live.subjects.map(subjectText).join(', ') : 'no subject'} to ${role}, and ${who} is not a user or service account kubevigil can look for among them. Find which subject the actor used (the audit log's user of the requests it names), then remove that subject, or the binding if it is the only one.`,
        'None: the commands only read the binding.',
        [get, save],
      ),
    ];
  if (facts.actorSubjects.length === 0) {
    if (maybeMine.length)
      return [
        remediation(
          'remove-binding',
          `Check how ${who} holds ${where}`,
          `${parts.story} In the cluster (inventory) it does not name ${who} itself; it binds ${maybeMine.map(subjectText).join(', ')}, and ${who} may be a member (its authenticator decides group membership; the cluster does not show it).${parts.granted} Find out which group gives ${who} the role before changing anything: removing a group takes the role from every member.`,
          'None: the command only reads the binding.',
          [get],
        ),
      ];
    return [
      noteOnly(
        'remove-binding',
        `${where} no longer binds ${who}`,
        `${parts.story} In the cluster (inventory) it no longer names ${who} among its subjects (${live.subjects.length ? live.subjects.map(subjectText).join(', ') : 'it has none'}): it was changed after the incident's requests, and there is nothing to remove.`,
      ),
    ];
  }
  const groups = facts.actorSubjects.filter((s) => s.kind === 'Group');
  const groupNote = groups.length
    ? ` ${who} holds it through ${groups.map(subjectText).join(', ')}: every member of ${groups.length === 1 ? 'that group' : 'those groups'} loses the role with it.`
    : '';
  const managed = ` If a tool manages the binding (Helm, Argo CD, Flux), change it at its source too, or the next sync restores it.${b.name.startsWith('system:') ? ' Bindings named system: are defaults the API server re-creates when it restarts: prefer removing whatever made the actor a subject.' : ''}`;
  if (facts.otherSubjects.length === 0)
    return [
      remediation(
        'remove-binding',
        parts.heading,
        `${parts.story} It is backed up, then deleted: the cluster (inventory) shows ${[...new Set(facts.actorSubjects.map(subjectText))].join(', ')} as its only subject${new Set(facts.actorSubjects.map(subjectText)).size === 1 ? '' : 's'}, so no one else loses ${role}.${groupNote}${parts.next}`,
        `${why === 'escalation' && parts.changed ? 'It existed before the incident and was changed during it: the backup holds the changed version. ' : ''}Calls that relied on it fail until a replacement is applied.${managed}`,
        [get, save, `kubectl ${scope}delete ${resource} ${b.name}`],
      ),
    ];
  // Shared: the actor's subjects go, the others stay (its roleRef cannot change, and does not).
  const file = `${resource}-${namespaced ? `${b.namespace}-` : ''}${b.name.replace(/:/g, '-')}.without-actor.yaml`;
  const doc = {
    apiVersion: `${RBAC_GROUP}/v1`,
    kind: b.kind,
    metadata: metadata(ctx, b.name, namespaced ? b.namespace : undefined),
    roleRef: { apiGroup: RBAC_GROUP, kind: live.roleRef.kind, name: live.roleRef.name },
    subjects: facts.otherSubjects.map(subjectManifest),
  };
  const removedList = [...new Set(facts.actorSubjects.map(subjectText))];
  const keptList = [...new Set(facts.otherSubjects.map(subjectText))];
  const removed = removedList.join(', ');
  const kept = keptList.join(', ');
  const patch = removalPatch(live, facts);
  const how = patch
    ? `the patch removes ${removed} from its subjects, after a backup, and keeps its labels, annotations and the other subjects; it refuses to run if the subjects have changed since the cluster was read. The manifest is the binding as it should be from now on: commit it wherever the binding is managed`
    : `the manifest rewrites it with those subjects and without ${removed}, after a backup (an earlier kubectl apply's labels that the manifest lacks are dropped: compare with the backup)`;
  return [
    remediation(
      'remove-binding',
      `Remove ${removed} from ${where}`,
      `${parts.story} In the cluster (inventory) it also binds ${kept}, so it is not deleted: ${how}. Its roleRef (${role}) stays as it is.${groupNote}${parts.next}`,
      `${kept} keep${keptList.length === 1 ? 's' : ''} ${role}; only ${removed} lose${removedList.length === 1 ? 's' : ''} it, and calls that relied on it fail until a replacement is applied.${managed}`,
      [get, save, patch ? `kubectl ${scope}patch ${resource} ${b.name} --type=json -p '${patch}'` : `kubectl apply -f ${file}`, get],
      [manifest(file, [doc])],
    ),
  ];
}

// Subject names safe inside a single-quoted shell string and a JSON string.
const PATCH_SAFE = /^[A-Za-z0-9@._:+=-]{1,253}$/;

/**
 * A JSON patch that removes the actor's subjects from the live binding by index, each removal
 * preceded by tests of the subject's kind, name and namespace, so that it fails rather than
 * removes another subject if the binding changed; undefined when a name is not safe in a command.
 */
function removalPatch(live: BindingInfo, facts: BindingInCluster): string | undefined {
  const same = (a: RbacSubject, b: RbacSubject) => a.kind === b.kind && a.name === b.name && (a.namespace ?? '') === (b.namespace ?? '');
  const at = live.subjects.flatMap((s, i) => (facts.actorSubjects.some((m) => same(m, s)) ? [i] : [])).sort((a, b) => b - a);
  if (!at.length || at.some((i) => ![live.subjects[i]!.name, live.subjects[i]!.namespace ?? 'x'].every((v) => PATCH_SAFE.test(v)))) return undefined;
  const ops = at.flatMap((i) => {
    const s = live.subjects[i]!;
    return [
      { op: 'test', path: `/subjects/${i}/kind`, value: s.kind },
      { op: 'test', path: `/subjects/${i}/name`, value: s.name },
      ...(s.namespace ? [{ op: 'test', path: `/subjects/${i}/namespace`, value: s.namespace }] : []),
      { op: 'remove', path: `/subjects/${i}` },
    ];
  });
  return JSON.stringify(ops);
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
  const story =
    why === 'escalation'
      ? `${describeActor(ctx.incident.actor)} ${changed ? 'changed' : 'created'} ${b.kind} ${b.name} during the incident${enabler ? `, with the power of ${describeBinding(enabler)}` : ''}. It grants ${role}.${granted}`
      : `${b.kind} ${b.name} grants ${role} to the actor.${granted}`;
  const legitimate = why === 'enabler' && ctx.sa ? legitimatePermissions(ctx) : undefined;
  const next =
    why === 'escalation'
      ? enabler
        ? tightenable(enablerRole(ctx, enabler))
          ? ` The role that let the actor write it is tightened next.`
          : ` ${describeBinding(enabler)}, which let the actor write it, is removed next.`
        : ''
      : !legitimate
        ? ''
        : legitimate.byScope.size > 0
          ? ' The least-privilege Role suggested with this plan keeps the access the identity used legitimately.'
          : legitimate.grantedElsewhere > 0
            ? ' Everything the identity used legitimately is granted by other bindings (cluster inventory), which stay: no replacement is needed.'
            : ' The identity showed no legitimate API use, so no replacement is proposed: it likely needs no API access at all (set automountServiceAccountToken: false on its pods).';
  const rationale = `${story} It is backed up, then deleted.${next}`;
  const risk =
    why === 'escalation'
      ? changed
        ? 'It existed before the incident and was changed during it: every subject loses the role, and the backup holds the changed version. If it was legitimate before, re-create it as it was (from version control or an older backup) without the subjects the actor added.'
        : 'It was created during the incident, so nothing legitimate should depend on it; still read its subjects and creation time in the first command, because everyone it binds loses the role.'
      : `Every subject of this binding loses the role, not only the actor, and kubevigil cannot see the others: read the USERS, GROUPS and SERVICEACCOUNTS columns of the first command, and if anyone else needs the access, re-create the binding from the backup without the actor instead.${b.name.startsWith('system:') ? ' Bindings named system: are defaults the API server re-creates when it restarts: prefer removing whatever made the actor a subject.' : ''} Legitimate calls that relied on it fail until the replacement is applied.`;
  const live = ctx.inventory ? liveBinding(ctx.inventory, b) : undefined;
  if (ctx.inventory && live) {
    const key = bindingAttribute(b);
    const through = ctx.incident.timeline.filter((e) => e.outcome === 'allowed' && e.attributes.binding === key);
    const username = holderOf(ctx.incident.actor.key, through);
    const facts = bindingFacts(ctx.inventory, b, username, {})!;
    return removeInCluster(ctx, b, live.found, facts, why, { heading, story, next, granted, changed, username });
  }
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
    ...(enablingBinding && (!escalation || !tightenable(enablerRole(ctx, enablingBinding))) ? removeOne(ctx, enablingBinding, 'enabler') : []),
  ];
}
