/**
 * Root cause from evidence, not prose: {@link EVIDENCE_RULES}, run in order, each reading the
 * timeline for one kind of fact and adding evidence, a part of the summary sentence, and
 * confidence. Rules ask the kinds' traits (correlator/signal-kinds.ts), never for kind names.
 *
 * 1. **Actor** — the incident's actor and the share of signals it appears in. With impersonation
 *    the actor is the identity that holds the impersonate permission; the impersonated identity is
 *    context ("User alice (impersonating system:serviceaccount:ci:deployer)").
 * 2. **First signal** — the earliest event of the timeline: where the story starts.
 * 3. **Credential** — where the actor's credential was used from (trait `credential-source`: a
 *    service account's token used from outside the cluster or by kubectl, a minted token or
 *    certificate): "token used from 203.0.113.7 with kubectl/v1.31.0".
 * 4. **Escalation** — an attack chain: the actor created or changed a RoleBinding or
 *    ClusterRoleBinding (allowed) and then used it (later requests the API server allowed through
 *    that binding), or the binding write is itself flagged (trait `needs-power`). The written
 *    binding is the escalation; the binding that allowed the write is the enabler.
 * 5. **Enabler** — the chain's enabler when there is one; otherwise, among the *allowed* actions
 *    that need power (secret reads and lists, exec/attach/port-forward, token requests,
 *    nodes/proxy, cluster-admin grants), the RBAC binding named most often in their
 *    `authorization.k8s.io/reason`; a ClusterRoleBinding is reported as cluster-wide.
 * 6. **Blocked by** — denials: admission policies named in denial messages (Gatekeeper constraint,
 *    Kyverno policy, Pod Security level) and RBAC denials, grouped by what was attempted.
 * 7. **Missing controls** — risky things that were *allowed*: a privileged / host-namespace /
 *    hostPath pod no policy stopped, a mesh policy weakened to PERMISSIVE or deleted.
 * 8. **Mesh** — mTLS failures: plaintext or untrusted connections the mesh refused.
 * 9. **Novelty** — what the identity had never done before (the per-identity baseline marked the
 *    signal `firstTime`: "First time for Service account ci/deployer: secret reads … in billing"), and
 *    what is routine for it (`habitual`, its severity already one step lower).
 *
 * Signals of kinds with the trait `activity-trail` are records of changes, not suspicions: they
 * show in the timeline (and as the first signal) but never name the enabler, never form a chain
 * and never count as a kind of attack.
 *
 * Confidence starts at 0.3 and grows with each independent piece of evidence: an enabling binding
 * behind allowed sensitive actions or behind the escalation (+0.3), an escalation binding used
 * afterwards (+0.1), each further distinct attack kind (+0.05, up to +0.2), the actor behind ≥90%
 * of signals (+0.1), a correlation rule that matched (+0.1); capped at 0.99.
 *
 * With a cluster inventory that has read the cluster (correlator/inventory.ts), the enabler and the
 * escalation carry the cluster's facts (`enablingBindingInCluster`, `escalationInCluster`): the
 * rules of the role that granted what was done through the binding (for the escalation's enabler,
 * the write and bind/escalate/wildcards), whether binding and role still exist, and every other
 * subject of the binding; pods carry their owner workload (`workloads`). The evidence says so
 * ("In the cluster (inventory), …"); without an inventory nothing of this is added.
 *
 * Every text here is read by people: fields the data lacks are said in words ("an unnamed pod",
 * "cluster-wide"), never as `?` or `undefined`.
 */
import type { Actor } from './entities.js';
import type { BindingInCluster, BindingRef, CredentialSource, Evidence, PodOwner, RootCause, TimelineEntry } from './incident.js';
import type { ClusterInventory } from './inventory.js';
import { bindingFacts, holderOf as bindingHolder, liveInventory, podOwners, withRoleFrom, workloadText } from './remediation/cluster.js';
import { grantsEscalation, rulesText, splitSubjects, subjectText } from './remediation/rbac.js';
import { admissionPhraseOf, hasTrait, phraseOf, type SignalKind } from './signal-kinds.js';
import type { Target } from './signal.js';

/** An attack chain: the actor wrote a binding and (usually) used it. */
export interface EscalationChain {
  /** The allowed create/update/patch of the binding (the signal that names what allowed it, if one does). */
  write: TimelineEntry;
  /** Every signal about writes of that binding (several rules may flag the same request). */
  writes: TimelineEntry[];
  /** The binding written, with the role its uses name. */
  binding: BindingRef;
  /** `ClusterRoleBinding/<name>` or `RoleBinding/<ns>/<name>`, as the audit annotations name it. */
  key: string;
  /** The binding that allowed the write, when the audit annotations name it. */
  enabler?: BindingRef;
  /** Later allowed requests whose authorization named the written binding. */
  uses: TimelineEntry[];
}

/** What the rules read: the timeline in time order, and the facts several rules share. */
export interface RootCauseInput {
  actor: Actor;
  /** The timeline, oldest first. */
  sorted: readonly TimelineEntry[];
  first: TimelineEntry | undefined;
  correlations: number;
  actorShare: number;
  /** Allowed actions that need power (trait `needs-power`), activity-trail records left out. */
  allowedSensitive: readonly TimelineEntry[];
  /** Denied requests, activity-trail records left out. */
  denied: readonly TimelineEntry[];
  /** The escalation chain, when the actor wrote a binding. */
  chain: EscalationChain | undefined;
  /** The signal that shows where the actor's credential came from, and the words for it. */
  credential: { entry: TimelineEntry; source: CredentialSource } | undefined;
  /** The live cluster, when an inventory has read it: the rules and subjects of the bindings named, the workloads behind pods. */
  inventory?: ClusterInventory;
}

/** The parts of the summary sentence, in sentence order; each part brings its own leading separator. */
const SUMMARY_PARTS = ['actor', 'chain', 'actions', 'enabler', 'denied', 'admission', 'mesh', 'missing'] as const;
type SummaryPart = (typeof SUMMARY_PARTS)[number];

type RootCauseFields = Pick<
  RootCause,
  'enablingBinding' | 'escalation' | 'credentialSource' | 'impersonated' | 'enablingBindingInCluster' | 'escalationInCluster' | 'workloads'
>;

/** What one rule found. */
export interface Finding {
  evidence?: Evidence[];
  summary?: Partial<Record<SummaryPart, string>>;
  /** Added to the confidence. */
  confidence?: number;
  /** Structured facts for the planners and the API; the first rule to set one wins. */
  fields?: RootCauseFields;
}

/** One kind of fact about the incident. */
export interface EvidenceRule {
  name: string;
  analyze(input: RootCauseInput): Finding | undefined;
}

const BASE_CONFIDENCE = 0.3;

const ids = (es: readonly TimelineEntry[], max = 20) => es.slice(0, max).map((e) => e.signalId);
const uniq = <T>(xs: T[]) => [...new Set(xs)];
const isTrail = (e: TimelineEntry) => hasTrait(e.kind, 'activity-trail');

// ---------------------------------------------------------------------------------------------
// Words: how identities, objects and signals read in a sentence

/** A value from the data, for prose: control characters dropped, long values cut. */
export function words(value: string | undefined, max = 100): string {
  // eslint-disable-next-line no-control-regex
  const clean = (value ?? '').replace(/[\u0000-\u001f\u007f-\u009f]/g, '').trim();
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

/** How the actor reads in a sentence. */
export function describeActor(a: Actor): string {
  const id = words(a.key.slice(a.key.indexOf(':') + 1));
  const name = words(a.name);
  switch (a.type) {
    case 'serviceaccount':
      return id ? `Service account ${id}` : name ? `Service account ${name}` : 'An unnamed service account';
    case 'node':
      return id || name ? `Node ${id || name}` : 'An unnamed node';
    case 'anonymous':
      return 'An anonymous client';
    case 'pod':
      return id ? `Pod ${id}` : 'An unnamed pod';
    case 'ip':
      return id ? `The client at ${id}` : 'A client with no address';
    default:
      return name || id ? `User ${name || id}` : 'An unnamed user';
  }
}

/** `a`, `a and b`, `a, b and c`; beyond `max`, `a, b and 3 more`. */
function list(items: readonly string[], max = 3): string {
  if (items.length > max) return `${items.slice(0, max - 1).join(', ')} and ${items.length - max + 1} more`;
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** The identities the actor impersonated (`attributes.impersonated`), raw usernames, in order. */
function impersonatedBy(actorKey: string, timeline: readonly TimelineEntry[]): string[] {
  return uniq(timeline.flatMap((e) => (e.actor === actorKey && e.attributes.impersonated ? [words(e.attributes.impersonated)] : []))).filter(Boolean);
}

/** Older signals: the actor is the impersonated identity and `attributes.impersonator` the real user. */
function impersonators(actorKey: string, timeline: readonly TimelineEntry[]): string[] {
  return uniq(
    timeline.flatMap((e) => (e.actor === actorKey && !e.attributes.impersonated && e.attributes.impersonator ? [words(e.attributes.impersonator)] : [])),
  ).filter(Boolean);
}

/** The impersonation context of the actor, in words, or '' ("impersonating system:serviceaccount:ci:deployer"). */
function impersonationWords(actorKey: string, timeline: readonly TimelineEntry[]): string {
  const as = impersonatedBy(actorKey, timeline);
  if (as.length) return `impersonating ${list(as)}`;
  const by = impersonators(actorKey, timeline);
  return by.length ? `impersonated by ${list(by)}` : '';
}

/**
 * The actor with the context a reader needs: whom it impersonated ("User alice (impersonating
 * system:serviceaccount:ci:deployer)"). Incident titles start with this.
 */
export function describeActing(a: Actor, timeline: readonly TimelineEntry[]): string {
  const ctx = impersonationWords(a.key, timeline);
  return ctx ? `${describeActor(a)} (${ctx})` : describeActor(a);
}

const RBAC_KINDS: Record<string, string> = {
  clusterrolebindings: 'ClusterRoleBinding',
  rolebindings: 'RoleBinding',
  clusterroles: 'ClusterRole',
  roles: 'Role',
};
// Cluster-scoped resources: a name without a namespace is cluster-wide, not a namespace left out.
const CLUSTER_SCOPED = new Set([
  'clusterrolebindings',
  'clusterroles',
  'nodes',
  'namespaces',
  'persistentvolumes',
  'certificatesigningrequests',
  'mutatingwebhookconfigurations',
  'validatingwebhookconfigurations',
  'validatingadmissionpolicies',
  'validatingadmissionpolicybindings',
  'customresourcedefinitions',
  'storageclasses',
  'priorityclasses',
  'apiservices',
  'selfsubjectaccessreviews',
  'selfsubjectrulesreviews',
  'subjectaccessreviews',
  'tokenreviews',
]);

/** One object of a resource in words: `pods` → `pod`, `clusterrolebindings` → `ClusterRoleBinding`. */
function singular(resource: string): string {
  const r = words(resource, 60);
  if (RBAC_KINDS[r]) return RBAC_KINDS[r];
  if (/ies$/.test(r)) return `${r.slice(0, -3)}y`;
  if (/(ses|xes|ches|shes)$/.test(r)) return r.slice(0, -2);
  return r.endsWith('s') ? r.slice(0, -1) : r;
}

/**
 * What a request was aimed at, in words: "pod kube-system/etcd-0 (exec)", "ClusterRoleBinding
 * ci-debug (cluster-wide)", "secrets in every namespace", "an unnamed pod in shop"; '' when the
 * target says nothing.
 */
export function describeTarget(t: Target, verb = t.verb): string {
  const ns = words(t.namespace, 63);
  const name = words(t.name, 120);
  const resource = words(t.resource, 60);
  const subresource = words(t.subresource, 40);
  const sub = subresource ? ` (${subresource})` : '';
  if (!resource) return name && ns ? `${ns}/${name}` : name ? name : ns ? `namespace ${ns}` : '';
  const one = singular(resource);
  const clusterScoped = CLUSTER_SCOPED.has(resource);
  if (name)
    return clusterScoped
      ? `${one} ${name} (${[subresource, 'cluster-wide'].filter(Boolean).join(', ')})`
      : ns
        ? `${one} ${ns}/${name}${sub}`
        : `${one} ${name}${sub}`;
  const collection = verb === 'list' || verb === 'watch' || verb === 'deletecollection';
  if (collection) return ns ? `${resource} in ${ns}` : clusterScoped ? resource : `${resource} in every namespace`;
  const article = /^[aeiouAEIOU]/.test(one) ? 'an' : 'a';
  return ns ? `${article} ${one} in ${ns}${sub}` : clusterScoped ? `${article} ${one}${sub}` : `an unnamed ${one}${sub}`;
}

// A standalone `?` (`kube-system/?`, `for ? ?`), or a value that never got one: what a template
// renders for a field the event lacked.
const PLACEHOLDER = /(^|[\s/(:=,])\?(?=$|[\s/),.;:])|\bundefined\b|\bnull\b|\bNaN\b|\[object Object\]/;

/** True when a text shows a placeholder instead of a value. */
export const hasPlaceholder = (text: string): boolean => PLACEHOLDER.test(text);

/** A signal in words, from its kind and target (for titles whose template found nothing to say). */
export function describeEntry(e: Pick<TimelineEntry, 'kind' | 'target'>): string {
  const what = phraseOf(e.kind);
  const on = describeTarget(e.target);
  // A phrase starts a sentence; a kind's name (kinds without a phrase) stays as it is written.
  const lead = what === e.kind ? what : `${what.charAt(0).toUpperCase()}${what.slice(1)}`;
  return `${lead}${on ? `: ${on}` : ''}`;
}

/** A signal's title as people should read it: its own when it is clean, else {@link describeEntry}. */
export function readableTitle(e: Pick<TimelineEntry, 'kind' | 'target' | 'title'>): string {
  const t = words(e.title, 300);
  return t && !hasPlaceholder(t) ? t : describeEntry(e);
}

/** A binding in words: "ClusterRoleBinding ci-debug (cluster-wide, ClusterRole cluster-admin)", "RoleBinding deploy in namespace ci". */
export function describeBinding(b: BindingRef, withRole = true): string {
  const role = withRole && b.roleName ? `${b.roleKind ?? 'role'} ${words(b.roleName)}` : '';
  if (b.kind === 'ClusterRoleBinding') return `ClusterRoleBinding ${words(b.name)} (cluster-wide${role ? `, ${role}` : ''})`;
  const where = b.namespace ? ` in namespace ${words(b.namespace)}` : ' (its namespace was not recorded)';
  return `RoleBinding ${words(b.name)}${where}${role ? ` (${role})` : ''}`;
}

/** `ClusterRoleBinding/<name>`, `RoleBinding/<ns>/<name>` (and a `role` attribute) as a binding; undefined for anything else. */
export function parseBinding(b: string, role: string | undefined): BindingRef | undefined {
  const [kind, ...rest] = b.split('/');
  if (kind !== 'ClusterRoleBinding' && kind !== 'RoleBinding') return undefined;
  const out: BindingRef = kind === 'RoleBinding' && rest.length === 2 ? { kind, namespace: rest[0]!, name: rest[1]! } : { kind, name: rest.join('/') };
  if (!out.name || out.namespace === '') return undefined;
  if (role) {
    const [rk, ...rr] = role.split('/');
    const roleName = rr[rr.length - 1];
    if ((rk === 'ClusterRole' || rk === 'Role') && roleName) {
      out.roleKind = rk;
      out.roleName = roleName;
    }
  }
  return out;
}

/** The `binding` attribute's form of a binding. */
export const bindingAttribute = (b: BindingRef): string => (b.namespace ? `${b.kind}/${b.namespace}/${b.name}` : `${b.kind}/${b.name}`);

/** Kinds in a sentence: their phrases, once each, joined with commas and "and". */
function phrase(kinds: readonly SignalKind[], of: (k: SignalKind) => string = phraseOf): string {
  const ws = uniq(kinds.map(of));
  return ws.length <= 1 ? (ws[0] ?? '') : `${ws.slice(0, -1).join(', ')} and ${ws[ws.length - 1]}`;
}

const kindsOf = (es: readonly TimelineEntry[]) => es.map((e) => e.kind);
/**
 * Kinds that say how a request was made (a credential's source) rather than what it attempted: a
 * denied request flagged for its stolen token was not "denied a stolen token". Minting a token or
 * a certificate (which needs power) is an attempt.
 */
const attemptKinds = (es: readonly TimelineEntry[]) => kindsOf(es).filter((k) => !hasTrait(k, 'credential-source') || hasTrait(k, 'needs-power'));
/** Secrets read or listed: their values left the cluster's control. */
const exposesSecrets = (k: SignalKind) => hasTrait(k, 'secret-read') || hasTrait(k, 'secret-list');

/** Allowed sensitive actions in a sentence, starting with a verb: "listed secrets cluster-wide and read secrets in payments". */
function actionsText(allowed: readonly TimelineEntry[]): string {
  const parts: string[] = [];
  const secrets = allowed.filter((e) => exposesSecrets(e.kind));
  if (secrets.length) {
    const nss = uniq(secrets.map((e) => words(e.target.namespace, 63)).filter(Boolean));
    const listed = secrets.some((e) => hasTrait(e.kind, 'cluster-wide'));
    parts.push(`${listed ? 'listed secrets cluster-wide and ' : ''}read secrets${nss.length ? ` in ${nss.join(', ')}` : ''}`);
  }
  const other = allowed.filter((e) => !exposesSecrets(e.kind));
  if (other.length) parts.push(`was allowed ${phrase(kindsOf(other))}`);
  return parts.join(' and ');
}

// ---------------------------------------------------------------------------------------------
// Facts several rules share

const BINDING_KINDS: Record<string, BindingRef['kind']> = { rolebindings: 'RoleBinding', clusterrolebindings: 'ClusterRoleBinding' };
const WRITE_VERBS = new Set(['create', 'update', 'patch']);

/** An allowed create/update/patch of a binding, as the binding written; undefined for anything else. */
function bindingWritten(e: TimelineEntry): BindingRef | undefined {
  if (e.outcome !== 'allowed' || isTrail(e)) return undefined;
  const kind = BINDING_KINDS[e.target.resource ?? ''];
  if (!kind || (e.target.verb !== undefined && !WRITE_VERBS.has(e.target.verb))) return undefined;
  if (e.target.apiGroup !== undefined && e.target.apiGroup !== 'rbac.authorization.k8s.io') return undefined;
  const name = e.target.name;
  if (!name) return undefined;
  if (kind === 'RoleBinding') return e.target.namespace ? { kind, name, namespace: e.target.namespace } : undefined;
  return { kind, name };
}

/**
 * The escalation chain: the first binding the actor wrote and then used, else the first binding
 * write flagged as needing power (a cluster-admin grant, an escalation) even if unused so far.
 */
export function findEscalation(sorted: readonly TimelineEntry[]): EscalationChain | undefined {
  let flagged: EscalationChain | undefined;
  const seen = new Set<string>();
  for (const [i, first] of sorted.entries()) {
    const binding = bindingWritten(first);
    if (!binding) continue;
    const key = bindingAttribute(binding);
    if (seen.has(key)) continue;
    seen.add(key);
    // Several rules may flag the same write (a cluster-admin grant, an escalation): one write.
    const writes = sorted.filter((e) => {
      const b = bindingWritten(e);
      return b !== undefined && bindingAttribute(b) === key;
    });
    const write = writes.find((e) => e.attributes.binding) ?? first;
    const uses = sorted.slice(i + 1).filter((u) => u.outcome === 'allowed' && !isTrail(u) && u.attributes.binding === key && !writes.includes(u));
    const used = uses.find((u) => u.attributes.role);
    const withRole = used ? (parseBinding(key, used.attributes.role) ?? binding) : binding;
    const enabler = write.attributes.binding ? parseBinding(write.attributes.binding, write.attributes.role) : undefined;
    // A binding that allowed its own write is not an enabler: it was there before.
    const chain: EscalationChain = { write, writes, binding: withRole, key, uses, ...(enabler && bindingAttribute(enabler) !== key ? { enabler } : {}) };
    if (uses.length) return chain;
    flagged ??= writes.some((e) => hasTrait(e.kind, 'needs-power')) ? chain : undefined;
  }
  return flagged;
}

/** Signals about the same request count once: one request may match several rules. */
export function requestCount(es: readonly TimelineEntry[]): number {
  return new Set(
    es.map(
      (e) =>
        `${e.time}|${e.actor}|${e.target.verb ?? ''}|${e.target.namespace ?? ''}|${e.target.resource ?? ''}|${e.target.subresource ?? ''}|${e.target.name ?? ''}`,
    ),
  ).size;
}

/** The first word of a user agent ("kubectl/v1.31.0 (linux/amd64) kubernetes/abc" → "kubectl/v1.31.0"). */
function shortAgent(ua: string): string {
  return words(ua.trim().split(/\s+/)[0], 60);
}

/** The actor's signal that shows where its credential came from (one naming an address or tool first). */
export function findCredential(actor: Actor, sorted: readonly TimelineEntry[]): RootCauseInput['credential'] {
  const mine = sorted.filter((e) => e.actor === actor.key && hasTrait(e.kind, 'credential-source'));
  const entry = mine.find((e) => e.attributes.sourceIP || e.attributes.userAgent) ?? mine[0];
  if (!entry) return undefined;
  const ip = words(entry.attributes.sourceIP, 45);
  const ua = entry.attributes.userAgent ? shortAgent(entry.attributes.userAgent) : '';
  const what = actor.type === 'serviceaccount' ? 'token' : 'credentials';
  const detail = ip || ua ? `${what} used${ip ? ` from ${ip}` : ''}${ua ? ` with ${ua}` : ''}` : `credential: ${phraseOf(entry.kind)}`;
  return { entry, source: { detail, ...(ip ? { sourceIP: ip } : {}), ...(ua ? { userAgent: ua } : {}) } };
}

/** The Kubernetes username that held a binding (the impersonated identity, when its requests impersonated one). */
const holderOf = (actor: Actor, through: readonly TimelineEntry[]) => bindingHolder(actor.key, through);

/** Who else a binding grants its role to, in words, from the cluster's facts. */
function subjectsWords(f: BindingInCluster, holder: string | undefined): string {
  const all = [...f.actorSubjects, ...f.otherSubjects].map((s) => words(subjectText(s)));
  // An identity that is no user or service account (an unresolved pod or address) cannot be looked for.
  if (holder === undefined) return all.length ? `it binds ${list(all, 6)}` : 'it binds no subject';
  const maybe = f.actorSubjects.length ? [] : splitSubjects(f.otherSubjects, holder).maybeMine;
  if (maybe.length)
    return `it does not name the actor itself, which may hold it through ${list(maybe.map((s) => words(subjectText(s))))} (its authenticator decides group membership); it binds ${list(all, 6)}`;
  const viaGroup = f.actorSubjects.filter((s) => s.kind === 'Group');
  const via = viaGroup.length ? `the actor holds it through ${list(viaGroup.map((s) => words(subjectText(s))))}` : '';
  const others = f.otherSubjects.length
    ? `it also binds ${list(
        f.otherSubjects.map((s) => words(subjectText(s))),
        6,
      )}, who would lose the role too if it were deleted`
    : f.actorSubjects.length
      ? viaGroup.length
        ? ''
        : 'the actor is its only subject'
      : 'it no longer names the actor among its subjects';
  return [via, others].filter(Boolean).join('; ');
}

/**
 * What the live cluster says of a binding, as a sentence: the rules of its role that granted what
 * was done through it (or, for the binding behind an escalation, the write and bind/escalate/
 * wildcards), and its other subjects.
 */
function clusterWords(b: BindingRef, f: BindingInCluster, wrote: boolean, holder: string | undefined): string {
  if (!f.exists) return ` The cluster no longer has ${b.kind} ${words(b.name)} (cluster inventory).`;
  const role = `${f.roleKind} ${words(f.roleName)}`;
  if (!f.roleExists) return ` In the cluster (inventory), ${role}, which it names, no longer exists: the binding grants nothing now.`;
  let grant: string;
  if (wrote) {
    const power = f.grantingRules.filter(grantsEscalation);
    const write = f.grantingRules.filter((r) => !power.includes(r));
    grant = [
      write.length ? `${role} grants the write with ${rulesText(write)}` : `no rule of ${role} grants the write now (the role has changed since)`,
      power.length
        ? `and ${rulesText(power)}, which lets its holders bind roles with more power than they have`
        : 'and no rule of it grants bind, escalate or a wildcard on roles: the actor held every permission of the role it bound, or the role has changed since',
    ].join(' ');
  } else
    grant = f.grantingRules.length
      ? `${role} grants it through ${rulesText(f.grantingRules)}`
      : `no rule of ${role} grants it now (the role has changed since)`;
  return ` In the cluster (inventory), ${grant}; ${subjectsWords(f, holder)}.`;
}

/** The binding the actor wrote, as the cluster has it: whom it binds and what its role granted through it. */
function escalationWords(b: BindingRef, f: BindingInCluster): string {
  if (!f.exists) return ` The cluster no longer has ${b.kind} ${words(b.name)} (cluster inventory).`;
  const role = `${f.roleKind} ${words(f.roleName)}`;
  const subjects = [...f.actorSubjects, ...f.otherSubjects].map((s) => words(subjectText(s)));
  const binds = subjects.length ? `it binds ${list(subjects, 6)}` : 'it binds no subject';
  if (!f.roleExists) return ` In the cluster (inventory), ${binds}; ${role} no longer exists.`;
  return ` In the cluster (inventory), ${binds}${f.grantingRules.length ? `; ${role} granted what went through it with ${rulesText(f.grantingRules)}` : ''}.`;
}

// ---------------------------------------------------------------------------------------------
// The rules

const actorRule: EvidenceRule = {
  name: 'actor',
  analyze: ({ actor, sorted, first, actorShare, credential, inventory }) => {
    const imp = impersonationWords(actor.key, sorted);
    const owners: PodOwner[] = inventory ? podOwners(inventory, sorted) : [];
    const actorPod = first?.attributes.actorPod;
    const owner = actorPod ? owners.find((o) => o.pod === actorPod) : undefined;
    const pod = actorPod ? `pod ${words(actorPod)}${owner ? ` of ${words(workloadText(owner.workload))}` : ''}` : '';
    const context = [imp, pod, credential?.source.detail ?? ''].filter(Boolean);
    const impersonated = impersonatedBy(actor.key, sorted);
    const mine = owners.filter((o) => o.actorPod);
    const fromWorkloads = mine.length ? `; its pods belong to ${list(uniq(mine.map((o) => words(workloadText(o.workload)))))} (cluster inventory)` : '';
    const fields: RootCauseFields = { ...(impersonated.length ? { impersonated } : {}), ...(owners.length ? { workloads: owners } : {}) };
    return {
      evidence: [
        {
          type: 'actor',
          entity: actor.key,
          detail: `${describeActing(actor, sorted)} acted in ${Math.round(actorShare * 100)}% of the incident's signals${fromWorkloads}`,
          signalIds: ids(sorted, 10),
        },
      ],
      summary: { actor: describeActor(actor) + (context.length ? ` (${context.join('; ')})` : '') },
      confidence: actorShare >= 0.9 ? 0.1 : 0,
      ...(Object.keys(fields).length ? { fields } : {}),
    };
  },
};

const firstSignal: EvidenceRule = {
  name: 'first-signal',
  analyze: ({ first }) => (first ? { evidence: [{ type: 'first-signal', detail: `First: ${readableTitle(first)}`, signalIds: [first.signalId] }] } : undefined),
};

/** Where the actor's credential was used from. */
const credentialRule: EvidenceRule = {
  name: 'credential',
  analyze: ({ actor, credential }) => {
    if (!credential) return undefined;
    const { entry, source } = credential;
    return {
      evidence: [
        {
          type: 'credential',
          entity: entry.actor,
          // An address or a tool says it all; otherwise the signal's own words do.
          detail: `${describeActor(actor)}: ${source.detail}${source.sourceIP || source.userAgent ? '' : ` (${readableTitle(entry)})`}`,
          signalIds: [entry.signalId],
        },
      ],
      fields: { credentialSource: source },
    };
  },
};

/** The actor wrote a binding (allowed by the enabler) and used it. */
const escalationRule: EvidenceRule = {
  name: 'escalation',
  analyze: ({ actor, chain, inventory }) => {
    if (!chain) return undefined;
    const { write, uses, enabler } = chain;
    const facts = inventory ? bindingFacts(inventory, chain.binding, holderOf(actor, uses), { through: uses }) : undefined;
    const binding = withRoleFrom(chain.binding, facts);
    const did = write.target.verb === 'update' || write.target.verb === 'patch' ? 'changed' : 'created';
    const count = requestCount(uses);
    const through = uses.length
      ? `, and the API server allowed ${count} later request${count === 1 ? '' : 's'} through it (${phrase(attemptKinds(uses)) || 'requests'})`
      : ', not used in the incident so far';
    const allowedBy = enabler ? `, allowed by ${describeBinding(enabler)}` : ' (the audit data does not name the binding that allowed it)';
    return {
      evidence: [
        {
          type: 'escalation',
          entity: `binding:${chain.key}`,
          detail: `${describeActor(actor)} ${did} ${describeBinding(binding)}${allowedBy}${through}${facts ? `.${escalationWords(binding, facts)}` : ''}`,
          signalIds: ids([...chain.writes, ...uses]),
        },
      ],
      summary: { chain: `${enabler ? `, allowed by ${describeBinding(enabler)},` : ''} ${did} ${describeBinding(binding)}` },
      confidence: uses.length ? 0.1 : 0,
      fields: { escalation: binding, ...(facts ? { escalationInCluster: facts } : {}) },
    };
  },
};

/** What the actor was allowed to do, or else everything it triggered. */
const allowedActions: EvidenceRule = {
  name: 'allowed-actions',
  analyze: ({ sorted, allowedSensitive, chain }) => {
    if (chain) {
      // The write is told by the chain; what came through the written binding, then the rest.
      const through = allowedSensitive.filter((e) => chain.uses.includes(e));
      const rest = allowedSensitive.filter((e) => !chain.writes.includes(e) && !chain.uses.includes(e));
      const parts = [
        through.length ? ` and through it ${actionsText(through)}` : '',
        rest.length ? `${through.length ? '; it also' : ' and'} ${actionsText(rest)}` : '',
      ];
      return { summary: { actions: parts.join('') } };
    }
    const attack = sorted.filter((e) => !isTrail(e));
    const text = allowedSensitive.length
      ? actionsText(allowedSensitive)
      : attack.length
        ? `triggered ${phrase(kindsOf(attack)).slice(0, 200)}`
        : 'made changes recorded in the timeline';
    return { summary: { actions: ` ${text}` } };
  },
};

/** The binding behind the attack: the chain's enabler, else the one the API server named most often for allowed sensitive actions. */
const enablingBinding: EvidenceRule = {
  name: 'enabling-binding',
  analyze: ({ actor, allowedSensitive, chain, inventory }) => {
    if (chain?.enabler) {
      const holder = holderOf(actor, [chain.write]);
      const facts = inventory ? bindingFacts(inventory, chain.enabler, holder, { wrote: chain.write }) : undefined;
      const b = withRoleFrom(chain.enabler, facts);
      return {
        evidence: [
          {
            type: 'enabler',
            entity: `binding:${bindingAttribute(b)}`,
            detail: `${describeBinding(b)} allowed the actor to write ${describeBinding(chain.binding, false)}${facts ? `.${clusterWords(b, facts, true, holder)}` : ''}`,
            signalIds: [chain.write.signalId],
          },
        ],
        confidence: 0.3,
        fields: { enablingBinding: b, ...(facts ? { enablingBindingInCluster: facts } : {}) },
      };
    }
    // The written binding and what went through it are the escalation, not what enabled it.
    const candidates = chain ? allowedSensitive.filter((e) => !chain.writes.includes(e) && !chain.uses.includes(e)) : allowedSensitive;
    const byBinding = new Map<string, TimelineEntry[]>();
    for (const e of candidates) {
      const b = e.attributes.binding;
      if (b) byBinding.set(b, [...(byBinding.get(b) ?? []), e]);
    }
    const top = [...byBinding.entries()]
      .map(([key, es]) => ({ key, es, binding: parseBinding(key, es[0]!.attributes.role) }))
      .filter((c) => c.binding)
      .sort((a, b) => b.es.length - a.es.length)[0];
    if (!top?.binding) return undefined;
    const holder = holderOf(actor, top.es);
    const facts = inventory ? bindingFacts(inventory, top.binding, holder, { through: top.es }) : undefined;
    const binding = withRoleFrom(top.binding, facts);
    const scope =
      binding.kind === 'ClusterRoleBinding'
        ? 'cluster-wide'
        : binding.namespace
          ? `in namespace ${words(binding.namespace)}`
          : 'in a namespace the audit data does not name';
    const roleTxt = binding.roleName ? ` (${binding.roleKind} ${words(binding.roleName)})` : '';
    const granting = facts?.exists && facts.roleExists && facts.grantingRules.length ? `, which grants ${rulesText(facts.grantingRules)}` : '';
    return {
      evidence: [
        {
          type: 'enabler',
          entity: `binding:${top.key}`,
          detail: `${binding.kind} ${words(binding.name)}${roleTxt} allowed ${phrase(kindsOf(top.es))} ${scope}${facts ? `.${clusterWords(binding, facts, false, holder)}` : ''}`,
          signalIds: ids(top.es),
        },
      ],
      summary: {
        enabler: ` through ${binding.kind} ${words(binding.name)}${binding.roleName ? ` (${binding.roleKind} ${words(binding.roleName)}${granting})` : ''}`,
      },
      confidence: 0.3,
      fields: { enablingBinding: binding, ...(facts ? { enablingBindingInCluster: facts } : {}) },
    };
  },
};

/** Admission policies named in denials. */
const admissionPolicies: EvidenceRule = {
  name: 'admission-policies',
  analyze: ({ denied }) => {
    const byPolicy = new Map<string, TimelineEntry[]>();
    for (const e of denied) {
      const engine = words(e.attributes.admissionEngine, 40) || 'admission';
      for (const p of (e.attributes.admissionPolicies ?? '').split(',').filter(Boolean)) {
        const key = `${engine}/${words(p)}`;
        byPolicy.set(key, [...(byPolicy.get(key) ?? []), e]);
      }
    }
    if (!byPolicy.size) return undefined;
    return {
      evidence: [...byPolicy].map(([p, es]): Evidence => ({
        type: 'blocked-by',
        entity: `policy:${p}`,
        detail: `${p.replace('/', ' policy ')} denied ${phrase(attemptKinds(es), admissionPhraseOf) || 'a request'}`,
        signalIds: ids(es),
      })),
      summary: { admission: ` (admission: ${[...byPolicy.keys()].join(', ')})` },
    };
  },
};

/** Denials: the API server's are RBAC's (mesh, alert and trace denials have their own rules); what was denied goes in the sentence. */
const denials: EvidenceRule = {
  name: 'denials',
  analyze: ({ denied }) => {
    const rbacDenied = denied.filter((e) => e.source === 'k8s-audit' && !e.attributes.admissionEngine);
    const attempts = attemptKinds(rbacDenied.filter((e) => !hasTrait(e.kind, 'authz-refusal')));
    // A refusal kind names no attempt, and mTLS failures have a part of their own.
    const deniedKinds = attemptKinds(denied).filter((k) => !hasTrait(k, 'admission-refusal') && !hasTrait(k, 'authz-refusal') && !hasTrait(k, 'mtls-failure'));
    return {
      evidence: rbacDenied.length
        ? [
            {
              type: 'blocked-by',
              detail: `RBAC denied ${rbacDenied.length} request(s)${attempts.length ? `: ${phrase(attempts)}` : ''}`,
              signalIds: ids(rbacDenied),
            },
          ]
        : [],
      summary: deniedKinds.length ? { denied: `; it was denied ${phrase(deniedKinds)}` } : {},
    };
  },
};

/** Risky things that were allowed: no control stopped them. */
const missingControls: EvidenceRule = {
  name: 'missing-controls',
  analyze: ({ sorted }) => {
    const risky = sorted.filter((e) => e.outcome === 'allowed' && !isTrail(e) && hasTrait(e.kind, 'missing-control'));
    if (!risky.length) return undefined;
    const nss = uniq(risky.map((e) => words(e.target.namespace, 63)).filter(Boolean));
    return {
      evidence: [
        {
          type: 'missing-control',
          detail: `No admission policy stopped ${phrase(kindsOf(risky))}${nss.length ? ` in ${nss.join(', ')}` : ''}`,
          signalIds: ids(risky),
        },
      ],
      summary: { missing: `; no policy stopped ${phrase(kindsOf(risky))}` },
    };
  },
};

const meshWeakened: EvidenceRule = {
  name: 'mesh-weakened',
  analyze: ({ sorted }) => {
    const weakened = sorted.filter((e) => hasTrait(e.kind, 'mesh-weakening') && e.outcome !== 'denied');
    if (!weakened.length) return undefined;
    return {
      evidence: [
        {
          type: 'missing-control',
          detail: `Mesh security was weakened: ${uniq(weakened.map(readableTitle)).slice(0, 3).join('; ')}`,
          signalIds: ids(weakened),
        },
      ],
    };
  },
};

const mtlsFailures: EvidenceRule = {
  name: 'mtls-failures',
  analyze: ({ sorted }) => {
    const mtls = sorted.filter((e) => hasTrait(e.kind, 'mtls-failure'));
    if (!mtls.length) return undefined;
    const to = uniq(mtls.map((e) => words(e.target.namespace ?? e.target.name, 63)).filter(Boolean));
    const sources = uniq(mtls.map((e) => e.source));
    return {
      evidence: [
        {
          type: 'mesh',
          detail: `${mtls.length} connection(s)${to.length ? ` to ${to.join(', ')}` : ''} failed mutual TLS (plaintext or untrusted identity refused), reported by ${sources.join(' and ')}`,
          signalIds: ids(mtls),
        },
      ],
      summary: { mesh: `; ${mtls.length} of its connections failed mTLS` },
    };
  },
};

const refusedServiceCalls: EvidenceRule = {
  name: 'refused-service-calls',
  analyze: ({ sorted }) => {
    const calls = sorted.filter((e) => hasTrait(e.kind, 'service-call') && e.outcome === 'denied');
    if (!calls.length) return undefined;
    const to = uniq(calls.map((e) => words(e.target.namespace ?? e.target.name, 63)).filter(Boolean));
    return {
      evidence: [
        {
          type: 'blocked-by',
          detail: `${calls.length} call(s) to other services${to.length ? ` in ${to.join(', ')}` : ''} were refused (401/403 or mesh policy)`,
          signalIds: ids(calls),
        },
      ],
    };
  },
};

/**
 * What the identity had never done before (the baseline marked `firstTime`): "first time Service
 * account ci/deployer read secrets in billing". Routine actions (marked `habitual`) are said too, as
 * what lowers the weight of this evidence.
 */
const novelty: EvidenceRule = {
  name: 'novelty',
  analyze: ({ actor, sorted }) => {
    const allowed = sorted.filter((e) => e.outcome === 'allowed' && !isTrail(e) && e.severity !== 'info');
    const group = (pick: (e: TimelineEntry) => boolean) => {
      const by = new Map<string, TimelineEntry[]>();
      for (const e of allowed.filter(pick)) {
        const k = `${e.kind}|${e.target.namespace ?? ''}`;
        by.set(k, [...(by.get(k) ?? []), e]);
      }
      return [...by.values()].slice(0, 3);
    };
    const where = (e: TimelineEntry) => (e.target.namespace ? ` in ${e.target.namespace}` : phraseOf(e.kind).includes('cluster-wide') ? '' : ' cluster-wide');
    const evidence: Evidence[] = [
      ...group((e) => e.attributes.firstTime === 'true').map((es) => ({
        type: 'novelty' as const,
        detail: `First time for ${describeActor(actor)}: ${phraseOf(es[0]!.kind)}${where(es[0]!)} (no earlier record of it)`,
        signalIds: ids(es),
      })),
      ...group((e) => e.attributes.habitual !== undefined).map((es) => ({
        type: 'novelty' as const,
        detail: `Routine for ${describeActor(actor)}: ${phraseOf(es[0]!.kind)}${where(es[0]!)} (${es[0]!.attributes.habitual})`,
        signalIds: ids(es),
      })),
    ];
    if (!evidence.length) return undefined;
    const firsts = evidence.filter((e) => e.detail.startsWith('First time for')).length;
    return { evidence, confidence: Math.min(0.1, firsts * 0.05) };
  },
};

/** Each further distinct kind of attack signal is another independent piece of evidence; records of changes are not. */
const breadth: EvidenceRule = {
  name: 'breadth',
  analyze: ({ sorted }) => ({ confidence: Math.min(0.2, Math.max(0, uniq(kindsOf(sorted.filter((e) => !isTrail(e)))).length - 1) * 0.05) }),
};

const correlated: EvidenceRule = {
  name: 'correlated',
  analyze: ({ correlations }) => ({ confidence: correlations > 0 ? 0.1 : 0 }),
};

/** The rules in the order their evidence is listed. */
export const EVIDENCE_RULES: readonly EvidenceRule[] = [
  actorRule,
  firstSignal,
  credentialRule,
  allowedActions,
  enablingBinding,
  escalationRule,
  novelty,
  admissionPolicies,
  denials,
  missingControls,
  meshWeakened,
  mtlsFailures,
  refusedServiceCalls,
  breadth,
  correlated,
];

/** Names the root cause of an incident from its timeline. */
export function analyzeRootCause(
  actor: Actor,
  timeline: TimelineEntry[],
  opts: { correlations: number; actorShare: number; inventory?: ClusterInventory | undefined },
): RootCause {
  const inventory = liveInventory(opts.inventory);
  const sorted = [...timeline].sort((a, b) => a.time - b.time);
  const input: RootCauseInput = {
    actor,
    sorted,
    first: sorted[0],
    correlations: opts.correlations,
    actorShare: opts.actorShare,
    allowedSensitive: sorted.filter((e) => e.outcome === 'allowed' && !isTrail(e) && hasTrait(e.kind, 'needs-power')),
    denied: sorted.filter((e) => e.outcome === 'denied' && !isTrail(e)),
    chain: findEscalation(sorted),
    credential: findCredential(actor, sorted),
    ...(inventory ? { inventory } : {}),
  };
  const evidence: Evidence[] = [];
  const summary: Partial<Record<SummaryPart, string>> = {};
  let confidence = BASE_CONFIDENCE;
  const fields: RootCauseFields = {};
  for (const rule of EVIDENCE_RULES) {
    const found = rule.analyze(input);
    if (!found) continue;
    evidence.push(...(found.evidence ?? []));
    Object.assign(summary, found.summary);
    confidence += found.confidence ?? 0;
    const f = found.fields ?? {};
    fields.enablingBinding ??= f.enablingBinding;
    fields.escalation ??= f.escalation;
    fields.credentialSource ??= f.credentialSource;
    fields.impersonated ??= f.impersonated;
    fields.enablingBindingInCluster ??= f.enablingBindingInCluster;
    fields.escalationInCluster ??= f.escalationInCluster;
    fields.workloads ??= f.workloads;
  }
  const sentence = `${SUMMARY_PARTS.map((p) => summary[p] ?? '').join('')}.`;
  return {
    summary: sentence,
    evidence,
    confidence: Math.round(Math.min(0.99, confidence) * 100) / 100,
    actor: actor.key,
    // Only the facts found: a stored incident shows no empty fields.
    ...Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)),
  };
}
