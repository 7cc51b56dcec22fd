/**
 * RBAC as the API server evaluates it, for facts read from the live cluster (the cluster
 * inventory): which rule of a role allows a request, which rules let their holder grant more than
 * it holds, a rule and a subject in words, and which subjects of a binding name an identity. Pure
 * functions over plain data; root cause and the planners share them.
 */
import type { RbacRule, RbacSubject, TimelineEntry } from '../incident.js';

export const RBAC_GROUP = 'rbac.authorization.k8s.io';

/** A request as the RBAC authorizer sees it. `apiGroup` undefined: not recorded (any group matches). */
export interface RbacRequest {
  verb: string;
  apiGroup?: string;
  resource: string;
  subresource?: string;
  name?: string;
}

// The API group of resources whose events may not record it.
const GROUPS: Record<string, string> = {
  pods: '',
  secrets: '',
  configmaps: '',
  serviceaccounts: '',
  services: '',
  nodes: '',
  namespaces: '',
  events: '',
  endpoints: '',
  persistentvolumes: '',
  persistentvolumeclaims: '',
  roles: RBAC_GROUP,
  rolebindings: RBAC_GROUP,
  clusterroles: RBAC_GROUP,
  clusterrolebindings: RBAC_GROUP,
  deployments: 'apps',
  statefulsets: 'apps',
  daemonsets: 'apps',
  replicasets: 'apps',
  jobs: 'batch',
  cronjobs: 'batch',
  certificatesigningrequests: 'certificates.k8s.io',
  mutatingwebhookconfigurations: 'admissionregistration.k8s.io',
  validatingwebhookconfigurations: 'admissionregistration.k8s.io',
};

/** The request a timeline entry records; undefined when it names no resource or verb. */
export function requestOf(e: Pick<TimelineEntry, 'target'>): RbacRequest | undefined {
  const t = e.target;
  if (!t.resource || !t.verb) return undefined;
  const apiGroup = t.apiGroup ?? GROUPS[t.resource];
  // A create names its object in the body, not the URL: RBAC sees no name (resourceNames never match it).
  const name = t.verb === 'create' && !t.subresource ? undefined : t.name;
  return {
    verb: t.verb,
    resource: t.resource,
    ...(apiGroup !== undefined ? { apiGroup } : {}),
    ...(t.subresource ? { subresource: t.subresource } : {}),
    ...(name ? { name } : {}),
  };
}

// exec, attach and port-forward over WebSockets are authorized as get and as create.
const STREAMING = new Set(['exec', 'attach', 'portforward']);

/** True when the rule allows the request (RBAC's VerbMatches, APIGroupMatches, ResourceMatches, ResourceNameMatches). */
export function ruleAllows(rule: RbacRule, req: RbacRequest): boolean {
  const verbs = req.subresource && STREAMING.has(req.subresource) ? ['get', 'create'] : [req.verb];
  if (!rule.verbs.includes('*') && !verbs.some((v) => rule.verbs.includes(v))) return false;
  const resources = rule.resources ?? [];
  if (resources.length === 0) return false;
  const groups = rule.apiGroups ?? [];
  if (req.apiGroup !== undefined && !groups.includes('*') && !groups.includes(req.apiGroup)) return false;
  const combined = req.subresource ? `${req.resource}/${req.subresource}` : req.resource;
  if (!resources.some((r) => r === '*' || r === combined || (req.subresource !== undefined && r === `*/${req.subresource}`))) return false;
  const names = rule.resourceNames ?? [];
  return names.length === 0 || (req.name !== undefined && names.includes(req.name));
}

/** The rules that allow the request, in the role's order. */
export const rulesAllowing = (rules: readonly RbacRule[], req: RbacRequest): RbacRule[] => rules.filter((r) => ruleAllows(r, req));

/** Verbs that let their holder grant more than it holds (RBAC's escalation check lets them through). */
export const ESCALATION_VERBS: readonly string[] = ['bind', 'escalate', 'impersonate'];

/**
 * True when the rule lets its holder get around RBAC's escalation check on bindings and roles:
 * bind or escalate (or `*`) on roles or clusterroles, or impersonate on anything.
 */
export function grantsEscalation(rule: RbacRule): boolean {
  if (!(rule.resources ?? []).length) return false;
  const verbs = rule.verbs;
  if (verbs.includes('impersonate')) return true;
  if (!verbs.some((v) => v === '*' || v === 'bind' || v === 'escalate')) return false;
  const groups = rule.apiGroups ?? [];
  if (!groups.includes('*') && !groups.includes(RBAC_GROUP)) return false;
  return (rule.resources ?? []).some((r) => r === '*' || r === 'roles' || r === 'clusterroles');
}

/** True when the rule has a wildcard in its verbs, groups or resources. */
export const hasWildcard = (rule: RbacRule): boolean =>
  rule.verbs.includes('*') || (rule.apiGroups ?? []).includes('*') || (rule.resources ?? []).some((r) => r === '*' || r.startsWith('*/'));

/** A rule in words, as `kubectl describe` lists it: `secrets get,list`, `rbac.authorization.k8s.io/clusterroles[admin] bind`. */
export function ruleText(rule: RbacRule): string {
  const verbs = rule.verbs.join(',');
  if ((rule.nonResourceURLs ?? []).length) return `${rule.nonResourceURLs!.join(',')} ${verbs}`;
  const groups = rule.apiGroups ?? [];
  const named = groups.filter((g) => g !== '');
  const prefix =
    groups.length === 0 || (named.length === 0 && groups.length > 0)
      ? ''
      : groups.length === 1
        ? `${named[0]}/`
        : `{${groups.map((g) => g || 'core').join(',')}}/`;
  const names = (rule.resourceNames ?? []).length ? `[${rule.resourceNames!.join(',')}]` : '';
  return `${prefix}${(rule.resources ?? []).join(',')}${names} ${verbs}`;
}

/** Rules in a sentence: `a`, `a and b`. */
export function rulesText(rules: readonly RbacRule[]): string {
  const ws = [...new Set(rules.map((r) => `\`${ruleText(r)}\``))];
  return ws.length <= 1 ? (ws[0] ?? '') : `${ws.slice(0, -1).join(', ')} and ${ws[ws.length - 1]}`;
}

/** A subject in words: `ServiceAccount ci/deployer`, `User alice`, `Group oncall`. */
export const subjectText = (s: RbacSubject): string => `${s.kind} ${s.kind === 'ServiceAccount' && s.namespace ? `${s.namespace}/` : ''}${s.name}`;

/** The Kubernetes username of an entity key (`sa:ns/name`, `user:x`, `node:x`); undefined for pods and addresses. */
export function usernameOf(key: string): string | undefined {
  const i = key.indexOf(':');
  const type = key.slice(0, i);
  const id = key.slice(i + 1);
  if (type === 'sa') {
    const j = id.indexOf('/');
    return j > 0 ? `system:serviceaccount:${id.slice(0, j)}:${id.slice(j + 1)}` : undefined;
  }
  if (type === 'user') return id;
  if (type === 'node') return `system:node:${id}`;
  return undefined;
}

const SA_PREFIX = 'system:serviceaccount:';

/** The groups the API server puts an identity in whatever its authenticator says; a user's other groups are not known. */
export function knownGroups(username: string): string[] {
  if (username === 'system:anonymous') return ['system:unauthenticated'];
  if (username.startsWith(SA_PREFIX)) {
    const ns = username.slice(SA_PREFIX.length).split(':')[0];
    return ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'];
  }
  if (username.startsWith('system:node:')) return ['system:nodes', 'system:authenticated'];
  return ['system:authenticated'];
}

/** True when the subject is this identity itself. */
export function isSubject(s: RbacSubject, username: string): boolean {
  if (s.kind === 'User') return s.name === username;
  if (s.kind !== 'ServiceAccount' || !username.startsWith(SA_PREFIX)) return false;
  const [ns, ...name] = username.slice(SA_PREFIX.length).split(':');
  return s.namespace === ns && s.name === name.join(':');
}

/**
 * The subjects of a binding that name the identity (itself, or a group it is known to be in), the
 * others, and, for a user, the groups it may belong to (its authenticator decides, the API does not show it).
 */
export function splitSubjects(
  subjects: readonly RbacSubject[],
  username: string | undefined,
): { mine: RbacSubject[]; others: RbacSubject[]; maybeMine: RbacSubject[] } {
  if (username === undefined) return { mine: [], others: [...subjects], maybeMine: [] };
  const groups = new Set(knownGroups(username));
  const mine = subjects.filter((s) => isSubject(s, username) || (s.kind === 'Group' && groups.has(s.name)));
  const others = subjects.filter((s) => !mine.includes(s));
  const user = !username.startsWith(SA_PREFIX) && !username.startsWith('system:node:') && username !== 'system:anonymous';
  const maybeMine = user
    ? others.filter(
        (s) => s.kind === 'Group' && !s.name.startsWith('system:serviceaccounts') && s.name !== 'system:unauthenticated' && s.name !== 'system:nodes',
      )
    : [];
  return { mine, others, maybeMine };
}

/** A subject as a binding manifest lists it. */
export function subjectManifest(s: RbacSubject): Record<string, string> {
  return s.kind === 'ServiceAccount'
    ? { kind: 'ServiceAccount', name: s.name, ...(s.namespace ? { namespace: s.namespace } : {}) }
    : { apiGroup: RBAC_GROUP, kind: s.kind, name: s.name };
}

/** A copy of a rule as a manifest lists it: only the fields it has, in RBAC's order. */
export function ruleManifest(r: RbacRule): RbacRule {
  return {
    ...(r.apiGroups !== undefined && !(r.nonResourceURLs ?? []).length ? { apiGroups: [...r.apiGroups] } : {}),
    ...(r.resources?.length ? { resources: [...r.resources] } : {}),
    ...(r.resourceNames?.length ? { resourceNames: [...r.resourceNames] } : {}),
    ...(r.nonResourceURLs?.length ? { nonResourceURLs: [...r.nonResourceURLs] } : {}),
    verbs: [...r.verbs],
  };
}

// What `*` stands for among a resource's verbs, spelled out (bind, escalate and impersonate left out).
const PLAIN_VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'];

/**
 * A rule without the power to grant more than its holder has: bind, escalate and impersonate
 * removed, `*` verbs spelled out, and, in the RBAC group, `*` resources spelled out. A rule with
 * wildcard groups or resources elsewhere goes whole (what it grants cannot be listed). `stays` is
 * the rule itself when it had none of these, absent when nothing of it stays.
 */
export function withoutEscalation(rule: RbacRule, clusterScope: boolean): { stays?: RbacRule; removed?: string } {
  if ((rule.nonResourceURLs ?? []).length) return { stays: rule };
  const groups = rule.apiGroups ?? [];
  const resources = rule.resources ?? [];
  const why: string[] = [];
  let verbs = rule.verbs;
  if (verbs.includes('*')) {
    verbs = PLAIN_VERBS;
    why.push('`*` verbs spelled out without bind, escalate and impersonate');
  }
  const dropped = verbs.filter((v) => ESCALATION_VERBS.includes(v));
  if (dropped.length) {
    verbs = verbs.filter((v) => !ESCALATION_VERBS.includes(v));
    why.push(`${dropped.join(', ')} removed`);
  }
  let outResources = resources;
  if (groups.includes('*') || resources.some((r) => r.includes('*'))) {
    // Within RBAC the resources are known, and can be named; elsewhere no one can list them.
    if (groups.length !== 1 || groups[0] !== RBAC_GROUP || resources.some((r) => r.includes('*') && r !== '*'))
      return { removed: 'wildcard API groups or resources grant everything, bind and escalate included: name the resources needed instead' };
    outResources = [
      ...new Set([
        ...resources.filter((r) => r !== '*'),
        ...(clusterScope ? ['roles', 'rolebindings', 'clusterroles', 'clusterrolebindings'] : ['roles', 'rolebindings']),
      ]),
    ];
    why.push('`*` resources spelled out');
  }
  if (verbs.length === 0) return { removed: why.join('; ') || 'nothing of it is left' };
  if (!why.length) return { stays: rule };
  return {
    stays: { ...rule, resources: outResources, verbs: [...verbs] },
    removed: why.join('; '),
  };
}
