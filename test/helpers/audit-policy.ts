/**
 * kube-apiserver's audit policy evaluation, for tests that check what a policy logs: the level of the
 * first matching rule, with the semantics of k8s.io/apiserver pkg/audit/policy/checker.go (users,
 * userGroups, verbs, namespaces with "" for cluster-scoped requests, resources with "*", "*\/sub"
 * and "res/*", resourceNames, nonResourceURLs with a trailing "*", and omitStages of the policy and
 * of the rule), plus the policy validation kube-apiserver applies when it loads the file.
 */
import { arr, get, isObj, str, type Obj } from './config-files.js';

/** Audit levels, least to most. */
export const AUDIT_LEVELS = ['None', 'Metadata', 'Request', 'RequestResponse'] as const;
export type AuditLevel = (typeof AUDIT_LEVELS)[number];

/** The rank of a level (None 0 … RequestResponse 3); -1 for anything else. */
export const levelRank = (level: string): number => (AUDIT_LEVELS as readonly string[]).indexOf(level);

/** A request as kube-apiserver's audit policy evaluator sees it (authorizer.Attributes). */
export interface AuditRequest {
  /** The authenticated user (the impersonator, when impersonation was used: the policy runs before impersonation). */
  user: string;
  groups: string[];
  verb: string;
  /** API group; "" or absent for the core group. */
  group?: string;
  /** Set for resource requests; absent for non-resource requests (then `path` is used). */
  resource?: string;
  subresource?: string;
  /** "" or absent for cluster-scoped and all-namespace requests. */
  namespace?: string;
  name?: string;
  /** URL path of a non-resource request (`/healthz`, `/apis/apps/v1`). */
  path?: string;
  /** Audit stage, to apply omitStages; absent = the stage is not considered. */
  stage?: string;
}

/** What the policy decides for a request. */
export interface AuditDecision {
  level: AuditLevel;
  /** Index of the matching rule; -1 when none matched (kube-apiserver's default: None). */
  rule: number;
  /** Stages not emitted for this request: the policy's omitStages and the rule's. */
  omitStages: string[];
}

const strings = (v: unknown): string[] => arr(v).map(str);

/** checker.go pathMatches. */
function pathMatches(path: string, spec: string): boolean {
  if (spec === '*' || spec === path) return true;
  return spec.endsWith('*') && path.startsWith(spec.replace(/\*+$/, ''));
}

/** checker.go ruleMatchesResource. */
function matchesResource(rule: Obj, r: AuditRequest): boolean {
  if (r.resource === undefined) return false;
  const namespaces = strings(rule.namespaces);
  if (namespaces.length && !namespaces.includes(r.namespace ?? '')) return false;
  const groups = arr(rule.resources);
  if (groups.length === 0) return true;
  const sub = r.subresource ?? '';
  const combined = sub ? `${r.resource}/${sub}` : r.resource;
  return groups.some((gr) => {
    if (str(get(gr, 'group')) !== (r.group ?? '')) return false;
    const resources = strings(get(gr, 'resources'));
    if (resources.length === 0) return true;
    const names = strings(get(gr, 'resourceNames'));
    if (names.length && !names.includes(r.name ?? '')) return false;
    return resources.some(
      (res) =>
        res === combined ||
        res === '*' ||
        (sub !== '' && res.startsWith('*/') && res.slice(2) === sub) ||
        // "pods/*" matches pods and every subresource of pods.
        (res.endsWith('/*') && res.slice(0, -2) === r.resource),
    );
  });
}

/** checker.go ruleMatches. */
export function ruleMatches(rule: Obj, r: AuditRequest): boolean {
  const users = strings(rule.users);
  if (users.length && !users.includes(r.user)) return false;
  const userGroups = strings(rule.userGroups);
  if (userGroups.length && !r.groups.some((g) => userGroups.includes(g))) return false;
  const verbs = strings(rule.verbs);
  if (verbs.length && !verbs.includes(r.verb)) return false;
  if (arr(rule.namespaces).length || arr(rule.resources).length) return matchesResource(rule, r);
  const urls = strings(rule.nonResourceURLs);
  if (urls.length) return r.resource === undefined && r.path !== undefined && urls.some((u) => pathMatches(r.path!, u));
  return true;
}

/** The policy's decision for a request: the first matching rule wins, else None. */
export function evaluateAuditPolicy(policy: Obj, r: AuditRequest): AuditDecision {
  const rules = arr(policy.rules).filter(isObj);
  const policyOmits = strings(policy.omitStages);
  const rule = rules.findIndex((x) => ruleMatches(x, r));
  if (rule < 0) return { level: 'None', rule, omitStages: policyOmits };
  return {
    level: str(rules[rule]!.level) as AuditLevel,
    rule,
    omitStages: [...new Set([...policyOmits, ...strings(rules[rule]!.omitStages)])],
  };
}

/** The level an event of this request is recorded at: None when its stage is omitted. */
export function loggedLevel(policy: Obj, r: AuditRequest): AuditLevel {
  const d = evaluateAuditPolicy(policy, r);
  return r.stage !== undefined && d.omitStages.includes(r.stage) ? 'None' : d.level;
}

/** The level of the first matching rule of a rule list (no stages). */
export function auditLevel(rules: Obj[], r: AuditRequest): AuditLevel {
  return evaluateAuditPolicy({ rules }, r).level;
}

/**
 * The groups the authenticators give a user, for recorded events that left them out: service
 * accounts, nodes, anonymous, and system:authenticated for everyone authenticated. A request that
 * failed authentication (401) has no user at all: no users or userGroups rule matches it.
 */
export function defaultGroups(user: string): string[] {
  if (user === '') return [];
  if (user === 'system:anonymous') return ['system:unauthenticated'];
  const sa = /^system:serviceaccount:([^:]+):[^:]+$/.exec(user);
  if (sa) return ['system:serviceaccounts', `system:serviceaccounts:${sa[1]}`, 'system:authenticated'];
  if (user.startsWith('system:node:')) return ['system:nodes', 'system:authenticated'];
  return ['system:authenticated'];
}

/** Namespace subresources that stay on the namespace (apiserver RequestInfoFactory). */
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

/**
 * The resource a request path names, as kube-apiserver's RequestInfoFactory parses it
 * (`/api/v1/namespaces/ns/pods/name/exec`, `/apis/group/version/...`); undefined for a
 * non-resource path (discovery, health, `/openapi/v2`...).
 */
export function resourceOfPath(path: string): Pick<AuditRequest, 'group' | 'resource' | 'subresource' | 'namespace' | 'name'> | undefined {
  let parts = path.split('/').filter((p) => p !== '');
  let group: string;
  if (parts[0] === 'api' && parts.length >= 3) {
    group = '';
    parts = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 4) {
    group = parts[1]!;
    parts = parts.slice(3);
  } else return undefined;
  if (parts[0] === 'watch') parts = parts.slice(1); // legacy /watch/ prefix
  if (parts.length === 0) return undefined;
  let namespace = '';
  if (parts[0] === 'namespaces' && parts.length > 1) {
    namespace = parts[1]!;
    // GET /api/v1/namespaces/ns is the namespace ns itself, recorded in namespace ns too.
    if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2]!)) parts = parts.slice(2);
  }
  return { group, resource: parts[0], name: parts[1], subresource: parts[2], namespace };
}

/**
 * The request an audit event records, as the policy saw it: the authenticated user (not the
 * impersonated one: the policy is evaluated before impersonation), its groups (or
 * {@link defaultGroups} when the event has none), and objectRef — or, when the event has none, the
 * resource its requestURI names, else the URI's path as a non-resource request.
 */
export function requestOfEvent(ev: unknown): AuditRequest {
  const user = str(get(ev, 'user.username'));
  const groups = strings(get(ev, 'user.groups'));
  const ref = get(ev, 'objectRef');
  const base = { user, groups: groups.length ? groups : defaultGroups(user), verb: str(get(ev, 'verb')), stage: str(get(ev, 'stage')) || undefined };
  if (isObj(ref) && str(ref.resource) !== '')
    return {
      ...base,
      group: str(ref.apiGroup),
      resource: str(ref.resource),
      subresource: str(ref.subresource) || undefined,
      namespace: str(ref.namespace),
      name: str(ref.name) || undefined,
    };
  const path = str(get(ev, 'requestURI')).split('?')[0]!;
  const res = resourceOfPath(path);
  return res ? { ...base, ...res } : { ...base, path };
}

/** A short description of a request for failure messages. */
export function describeRequest(r: AuditRequest): string {
  const what =
    r.resource === undefined
      ? (r.path ?? '?')
      : [
          r.group ? `${r.group}/` : '',
          r.resource,
          r.subresource ? `/${r.subresource}` : '',
          r.namespace ? ` in ${r.namespace}` : '',
          r.name ? ` ${r.name}` : '',
        ].join('');
  return `${r.user} [${r.groups.join(',')}] ${r.verb} ${what}${r.stage ? ` (${r.stage})` : ''}`;
}

const RULE_KEYS = new Set(['level', 'users', 'userGroups', 'verbs', 'resources', 'namespaces', 'nonResourceURLs', 'omitStages', 'omitManagedFields']);
const GROUP_RESOURCE_KEYS = new Set(['group', 'resources', 'resourceNames']);
const POLICY_KEYS = new Set(['apiVersion', 'kind', 'metadata', 'rules', 'omitStages', 'omitManagedFields']);
const STAGES = new Set(['RequestReceived', 'ResponseStarted', 'ResponseComplete', 'Panic']);
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * What kube-apiserver's validation (apis/audit/validation) would refuse in a policy, plus keys the
 * evaluator above does not know (a misspelt key would be decoded away and widen the rule).
 */
export function policyProblems(policy: Obj): string[] {
  const out: string[] = [];
  for (const k of Object.keys(policy)) if (!POLICY_KEYS.has(k)) out.push(`unknown policy key ${k}`);
  for (const s of strings(policy.omitStages)) if (!STAGES.has(s)) out.push(`unknown stage ${s}`);
  arr(policy.rules).forEach((rule, i) => {
    const at = `rules[${i}]`;
    if (!isObj(rule)) return out.push(`${at} is not a mapping`);
    for (const k of Object.keys(rule)) if (!RULE_KEYS.has(k)) out.push(`${at}: unknown key ${k}`);
    if (levelRank(str(rule.level)) < 0) out.push(`${at}: level ${String(rule.level)}`);
    for (const s of strings(rule.omitStages)) if (!STAGES.has(s)) out.push(`${at}: unknown stage ${s}`);
    for (const u of strings(rule.nonResourceURLs)) {
      if (u !== '*' && !u.startsWith('/')) out.push(`${at}: non-resource URL ${u} must begin with /`);
      if (u.slice(0, -1).includes('*')) out.push(`${at}: non-resource URL ${u} may only end with *`);
    }
    if (arr(rule.nonResourceURLs).length && (arr(rule.resources).length || arr(rule.namespaces).length))
      out.push(`${at}: rules cannot apply to both regular resources and non-resource URLs`);
    arr(rule.resources).forEach((gr, j) => {
      if (!isObj(gr)) return out.push(`${at}.resources[${j}] is not a mapping`);
      for (const k of Object.keys(gr)) if (!GROUP_RESOURCE_KEYS.has(k)) out.push(`${at}.resources[${j}]: unknown key ${k}`);
      const group = str(gr.group);
      if (group !== '' && !DNS_SUBDOMAIN.test(group)) out.push(`${at}.resources[${j}]: group ${group} is not a DNS subdomain`);
      if (arr(gr.resourceNames).length && !arr(gr.resources).length) out.push(`${at}.resources[${j}]: resourceNames requires at least one resource`);
    });
  });
  return out;
}
