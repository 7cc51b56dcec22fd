/**
 * tighten-role: after an escalation (the actor wrote itself a binding), the role that allowed the
 * write keeps managing bindings but loses bind, escalate and wildcards, so the API server's
 * escalation check refuses any binding to a role with more power than its holder has. With the
 * cluster inventory, the manifest is the role's actual rules without those powers (a diff: what
 * stays, what changes, what goes), and the bindings it affects are named.
 */
import type { BindingRef, RbacRule, Remediation, RoleDiff, RuleDiff, TimelineEntry } from '../../incident.js';
import type { ClusterInventory, RoleInfo } from '../../inventory.js';
import { describeActor, describeBinding } from '../../root-cause.js';
import { manifest, metadata, noteOnly, remediation } from '../building-blocks.js';
import { liveBinding } from '../cluster.js';
import type { PlanContext } from '../context.js';
import { isName, isRbacName } from '../names.js';
import { grantsEscalation, requestOf, ruleManifest, rulesAllowing, rulesText, ruleText, subjectText, withoutEscalation } from '../rbac.js';

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

/** The enabling binding with its role filled in from the cluster when the audit data did not name it. */
export function enablerRole(ctx: PlanContext, b: BindingRef): BindingRef {
  if (b.roleName || !ctx.inventory) return b;
  const live = liveBinding(ctx.inventory, b)?.found;
  return live ? { ...b, roleKind: live.roleRef.kind, roleName: live.roleRef.name } : b;
}

/** Binding management with every verb spelled out, and reading roles: what the role is for. */
function managementRules(clusterRole: boolean): RbacRule[] {
  return [
    {
      apiGroups: [RBAC_GROUP],
      resources: clusterRole ? ['rolebindings', 'clusterrolebindings'] : ['rolebindings'],
      verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
    },
    { apiGroups: [RBAC_GROUP], resources: clusterRole ? ['roles', 'clusterroles'] : ['roles'], verbs: ['get', 'list', 'watch'] },
  ];
}

/** The allowed write of the escalation binding in the timeline. */
function writeOf(ctx: PlanContext, b: BindingRef): TimelineEntry | undefined {
  const resource = b.kind === 'ClusterRoleBinding' ? 'clusterrolebindings' : 'rolebindings';
  return ctx.incident.timeline.find((e) => e.outcome === 'allowed' && e.target.resource === resource && e.target.name === b.name);
}

/** Each rule of the role without bind, escalate, impersonate and wildcards; a rule that allowed the write and goes whole becomes binding management. */
function diffRules(role: RoleInfo, write: TimelineEntry | undefined, clusterRole: boolean): RuleDiff[] {
  const req = write ? requestOf(write) : undefined;
  const writing = req ? rulesAllowing(role.rules, req) : [];
  return role.rules.map((rule): RuleDiff => {
    const copy = ruleManifest(rule);
    const { stays, removed } = withoutEscalation(rule, clusterRole);
    if (stays === rule) return { rule: copy, stays: [copy] };
    if (!stays && writing.includes(rule))
      return { rule: copy, stays: managementRules(clusterRole), removed: `${removed ?? ''}; the binding management it was used for is spelled out instead` };
    return { rule: copy, stays: stays ? [ruleManifest(stays)] : [], ...(removed ? { removed } : {}) };
  });
}

/** The bindings that grant the role, with their subjects, in words. */
function bindingsText(inv: ClusterInventory, kind: 'Role' | 'ClusterRole', name: string, ns: string | undefined): string {
  const bindings = kind === 'Role' ? inv.bindingsOf('Role', name, ns) : inv.bindingsOf('ClusterRole', name);
  if (!bindings.length) return 'no binding grants it';
  const one = bindings
    .slice(0, 10)
    .map((x) => `${x.kind} ${x.namespace ? `${x.namespace}/` : ''}${x.name} (${x.subjects.map(subjectText).join(', ') || 'no subject'})`);
  return `${one.join('; ')}${bindings.length > 10 ? ` and ${bindings.length - 10} more` : ''}`;
}

function tightenInCluster(ctx: PlanContext, inv: ClusterInventory, b: BindingRef, escalation: BindingRef): Remediation[] {
  const kind = b.roleKind as 'ClusterRole' | 'Role';
  const role = b.roleName!;
  const ns = kind === 'Role' ? b.namespace : undefined;
  const clusterRole = kind === 'ClusterRole';
  const roleText = `${kind} ${role}`;
  const story = `${describeBinding(b)} let ${describeActor(ctx.incident.actor)} write ${describeBinding(escalation, false)}.`;
  const live = kind === 'Role' ? inv.role('Role', role, ns) : inv.role('ClusterRole', role);
  if (!live)
    return [
      noteOnly(
        'tighten-role',
        `${roleText} is already gone`,
        `${story} In the cluster (inventory) ${roleText} no longer exists: the bindings that name it grant nothing, and there is nothing to tighten. A role re-created under that name would give their subjects its power again.`,
      ),
    ];
  const resource = kind.toLowerCase();
  const scope = ns ? `-n ${ns} ` : '';
  const base = `${resource}-${ns ? `${ns}-` : ''}${role.replace(/:/g, '-')}`;
  const write = writeOf(ctx, escalation);
  const power = live.rules.filter(grantsEscalation);
  if (live.aggregated)
    return [
      remediation(
        'tighten-role',
        `Tighten the roles aggregated into ${roleText}`,
        `${story} In the cluster (inventory) ${roleText} is aggregated: its rules${power.length ? `, ${rulesText(power)} among them,` : ''} come from the ClusterRoles its aggregationRule selects, and its controller rewrites any change made to it. The command prints the selectors: tighten the ClusterRole that contributes those rules instead (without bind, escalate, impersonate or wildcards).`,
        'None: the command only reads the role.',
        [`kubectl get clusterrole ${role} -o jsonpath='{.aggregationRule}{"\\n"}'`],
      ),
    ];
  const diff = diffRules(live, write, clusterRole);
  const changed = diff.filter((d) => d.removed !== undefined);
  if (!changed.length)
    return [
      noteOnly(
        'tighten-role',
        `${roleText} grants no bind, escalate or wildcard`,
        `${story} In the cluster (inventory) no rule of ${roleText} grants bind, escalate, impersonate or a wildcard (${rulesText(live.rules) || 'it has no rules'}): the actor held every permission of the role it bound, so the API server's escalation check let the write through. Removing the binding it wrote is what matters; narrow what ${roleText} grants if its holders should not grant those permissions either.`,
      ),
    ];
  const seen = new Set<string>();
  const rules = diff.flatMap((d) => d.stays).filter((r) => !seen.has(JSON.stringify(r)) && Boolean(seen.add(JSON.stringify(r))));
  const file = `${base}.tightened.yaml`;
  const doc = { apiVersion: `${RBAC_GROUP}/v1`, kind, metadata: metadata(ctx, role, ns), rules: rules.map(ruleManifest) };
  const roleDiff: RoleDiff = { kind, name: role, ...(ns ? { namespace: ns } : {}), rules: diff };
  const kept = diff.filter((d) => d.removed === undefined).map((d) => `\`${ruleText(d.rule)}\``);
  const words = changed.map((d) =>
    d.stays.length
      ? `\`${ruleText(d.rule)}\` becomes ${d.stays.map((r) => `\`${ruleText(r)}\``).join(' and ')} (${d.removed})`
      : `\`${ruleText(d.rule)}\` goes (${d.removed})`,
  );
  const checks = ctx.sa
    ? ['bind', 'escalate'].map(
        (verb) =>
          `kubectl auth can-i ${verb} ${clusterRole ? 'clusterroles' : 'roles'} ${ns ? `-n ${ns} ` : ''}--as=system:serviceaccount:${ctx.sa!.namespace}:${ctx.sa!.name}`,
      )
    : [];
  const feeds = live.aggregateTo.length ? ` It is aggregated into other roles (${live.aggregateTo.join(', ')}): they lose the same rules.` : '';
  const r = remediation(
    'tighten-role',
    `Tighten ${roleText}: no bind, escalate or wildcards`,
    `${story} RBAC refuses a binding to a role with more permissions than its writer holds unless the writer has bind or escalate (or a wildcard that includes them). In the cluster (inventory), ${roleText} has ${live.rules.length} rule${live.rules.length === 1 ? '' : 's'}: ${[...words, ...(kept.length ? [`${kept.join(', ')} ${kept.length === 1 ? 'stays' : 'stay'} as ${kept.length === 1 ? 'it is' : 'they are'}`] : [])].join('; ')}. kubectl auth reconcile with --remove-extra-permissions replaces its rules with the manifest's: its holders can still grant what they hold, and the API server refuses the rest, cluster-admin included. If a pipeline must bind particular roles, add a rule with verbs [bind] on ${clusterRole ? 'clusterroles' : 'roles'} and resourceNames listing them, never cluster-admin.${checks.length ? ' The last commands must answer no.' : ''}`,
    `Every subject bound to ${roleText} loses what goes: ${bindingsText(inv, kind, role, ns)}.${clusterRole ? ` A ClusterRole's rules are shared by every binding to it, in every namespace.` : ''}${feeds} Automation that grants roles fails until given a bind limited by resourceNames.`,
    [`kubectl ${scope}get ${resource} ${role} -o yaml > ${base}.backup.yaml`, `kubectl auth reconcile -f ${file} --remove-extra-permissions`, ...checks],
    [manifest(file, [doc])],
  );
  return [{ ...r, roleDiff }];
}

export function tightenRole(ctx: PlanContext): Remediation[] {
  const { escalation, enablingBinding } = ctx.incident.rootCause;
  if (!escalation || !enablingBinding) return [];
  const b = enablerRole(ctx, enablingBinding);
  if (!tightenable(b)) return [];
  if (ctx.inventory) return tightenInCluster(ctx, ctx.inventory, b, escalation);
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
