/**
 * Remediation planner: turns an incident's root cause and evidence into typed suggestions, ordered
 * by what to do first (contain, then remove access, then harden), each with the exact kubectl
 * commands and complete manifests an SRE applies by hand. Nothing here is ever applied.
 *
 * Every name placed in a command comes from audit data an attacker can influence and will be pasted
 * into a shell, so it must be a valid Kubernetes name; anything else is left out and said so.
 */
import { stringify } from 'yaml';
import type { Incident, Remediation, RemediationKind, TimelineEntry } from '../incident.js';
import type { SignalKind } from '../signal-kinds.js';

/** One permission the actor used legitimately (outside the attack), as audit2rbac collects it. */
export interface PermissionUse {
  namespace?: string;
  apiGroup: string;
  resource: string;
  subresource?: string;
  verb: string;
  count: number;
}

/** What the planner needs: the incident with its root cause, and the actor's legitimate API usage. */
export interface PlanInput {
  incident: Omit<Incident, 'remediations'>;
  /** Requests the actor made successfully and that were NOT part of the attack (its legitimate usage), as audit2rbac would collect. May be empty. */
  usage: PermissionUse[];
}

type IncidentData = PlanInput['incident'];

interface Ref {
  namespace: string;
  name: string;
}

/** Facts shared by the planners, derived once from the input. */
interface PlanContext {
  incident: IncidentData;
  usage: readonly PermissionUse[];
  /** The acting service account, when the actor is one and its names are safe. */
  sa?: Ref;
  /** The acting service account's `ns/name` when the actor is one whose names are unsafe. */
  rejectedSa?: string;
}

/** One planner per remediation kind; the list order is the order of the plan. */
type Planner = (ctx: PlanContext) => Remediation[];

/** Names from the audit data refused for commands; reported in the rationale instead. */
interface Checked<T> {
  ok: T[];
  rejected: string[];
}

// ---------------------------------------------------------------------------------------------
// Names

const DNS_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
// RBAC objects are commonly named `system:…`; `:` is inert in a shell.
const RBAC_NAME = /^[a-z0-9]([-a-z0-9.:]*[a-z0-9])?$/;
const MAX_NAME = 253;

const isName = (s: string): boolean => s.length <= MAX_NAME && DNS_NAME.test(s);
const isRbacName = (s: string): boolean => s.length <= MAX_NAME && RBAC_NAME.test(s);

/** A value from the audit data, quoted and shortened, for prose only. */
function display(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

function splitRef(value: string): Ref | undefined {
  const i = value.indexOf('/');
  return i > 0 ? { namespace: value.slice(0, i), name: value.slice(i + 1) } : undefined;
}

/** Splits `ns/name` values into safe refs and rejected raw values. */
function checkRefs(values: Iterable<string>): Checked<Ref> {
  const out: Checked<Ref> = { ok: [], rejected: [] };
  for (const v of unique(values)) {
    const ref = splitRef(v);
    if (ref && isName(ref.namespace) && isName(ref.name)) out.ok.push(ref);
    else out.rejected.push(v);
  }
  return out;
}

function checkNames(values: Iterable<string>): Checked<string> {
  const out: Checked<string> = { ok: [], rejected: [] };
  for (const v of unique(values)) (isName(v) ? out.ok : out.rejected).push(v);
  return out;
}

function unique<T>(values: Iterable<T>): T[] {
  return [...new Set(values)];
}

const refText = (r: Ref): string => `${r.namespace}/${r.name}`;

// ---------------------------------------------------------------------------------------------
// Building blocks

function remediation(kind: RemediationKind, title: string, rationale: string, risk: string, commands: string[], manifests: string[] = []): Remediation {
  return { kind, title, rationale, risk, commands, manifests };
}

/** A manifest file: one or more YAML documents, headed by the file name the commands apply. */
function manifest(file: string, docs: object[]): string {
  return `# save as ${file}\n${docs.map((d) => stringify(d)).join('---\n')}`;
}

function metadata(ctx: PlanContext, name: string, namespace?: string): Record<string, unknown> {
  return { name, ...(namespace ? { namespace } : {}), annotations: { 'kubevigil.io/incident': ctx.incident.id } };
}

function rejectionNote(rejected: readonly string[]): string {
  return `Left out because they are not valid Kubernetes names and would be unsafe to paste into a shell (the audit data may be forged; find these objects by hand): ${rejected.map(display).join(', ')}.`;
}

/** Adds the rejected names to the first suggestion's rationale, or reports them alone when nothing else was possible. */
function withRejections(out: Remediation[], rejected: readonly string[], kind: RemediationKind, title: string): Remediation[] {
  if (rejected.length === 0) return out;
  const [first, ...rest] = out;
  if (!first) return [remediation(kind, title, rejectionNote(rejected), 'None: no command is given.', [])];
  return [{ ...first, rationale: `${first.rationale} ${rejectionNote(rejected)}` }, ...rest];
}

function entries(ctx: PlanContext, kinds: ReadonlySet<SignalKind>, allowedOnly = false): TimelineEntry[] {
  return ctx.incident.timeline.filter((e) => kinds.has(e.kind) && (!allowedOnly || e.outcome === 'allowed'));
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

// ---------------------------------------------------------------------------------------------
// Facts

function actorServiceAccount(incident: IncidentData): Checked<Ref> {
  const key = incident.actor.key;
  return key.startsWith('sa:') ? checkRefs([key.slice(3)]) : { ok: [], rejected: [] };
}

const rejectedActor = (ctx: PlanContext): string[] => (ctx.rejectedSa === undefined ? [] : [ctx.rejectedSa]);

/** The actor's pods: named by the audit events' bound-token pod, else the pod entities of its namespace it did not act on. */
function actorPods(ctx: PlanContext): Checked<Ref> & { inferred: boolean } {
  const named = ctx.incident.timeline.flatMap((e) => (e.attributes.actorPod ? [e.attributes.actorPod] : []));
  if (named.length > 0) return { ...checkRefs(named), inferred: false };
  const ns = ctx.incident.actor.namespace;
  if (!ns) return { ok: [], rejected: [], inferred: false };
  const targets = new Set(ctx.incident.timeline.flatMap((e) => (e.target.resource === 'pods' && e.target.name ? [`${e.target.namespace}/${e.target.name}`] : [])));
  const prefix = `pod:${ns}/`;
  const candidates = ctx.incident.entities.filter((k) => k.startsWith(prefix)).map((k) => k.slice(4)).filter((p) => !targets.has(p));
  return { ...checkRefs(candidates), inferred: true };
}

const SECRET_READS: ReadonlySet<SignalKind> = new Set(['secret.read', 'secret.read_cross_namespace']);

function secretsRead(ctx: PlanContext): Checked<Ref> {
  const read = entries(ctx, SECRET_READS, true).flatMap((e) => (e.target.namespace && e.target.name ? [`${e.target.namespace}/${e.target.name}`] : []));
  return checkRefs(read.sort());
}

function groupByNamespace(refs: readonly Ref[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of refs) out.set(r.namespace, [...(out.get(r.namespace) ?? []), r.name]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// isolate-workload, delete-workload

const QUARANTINE_LABEL = 'kubevigil.io/quarantine';

function isolateWorkload(ctx: PlanContext): Remediation[] {
  const pods = actorPods(ctx);
  const out = [...groupByNamespace(pods.ok)].map(([ns, names]) => {
    const file = `quarantine-${ns}.yaml`;
    const policy = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: metadata(ctx, 'kubevigil-quarantine', ns),
      spec: { podSelector: { matchLabels: { [QUARANTINE_LABEL]: 'true' } }, policyTypes: ['Ingress', 'Egress'] },
    };
    const verify = pods.inferred ? names.map((n) => `kubectl -n ${ns} get pod ${n} -o jsonpath='{.spec.serviceAccountName}{"\\n"}'`) : [];
    const commands = [...verify, `kubectl -n ${ns} get networkpolicy`, `kubectl apply -f ${file}`, ...names.map((n) => `kubectl -n ${ns} label pod ${n} ${QUARANTINE_LABEL}=true --overwrite`)];
    const source = pods.inferred
      ? `No audit event named the actor's pod; ${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} inferred from the incident's pods in ${ns} it did not act on, so check the first ${names.length === 1 ? 'command prints' : 'commands print'} its service account before acting.`
      : `The audit events name ${names.map((n) => `${ns}/${n}`).join(', ')} as the pod whose service-account token made the requests.`;
    return remediation(
      'isolate-workload',
      `Isolate ${names.length === 1 ? `pod ${ns}/${names[0]}` : `${names.length} pods in ${ns}`}`,
      `${source} Labelling it and applying a NetworkPolicy that selects the label with no rules cuts all its traffic while the pod stays available for forensics.`,
      `The workload stops serving: nothing reaches it and it reaches nothing, DNS included. NetworkPolicies add up, so traffic another policy in ${ns} allows to this pod stays allowed (check the output of \`kubectl get networkpolicy\`); the policy needs a CNI that enforces NetworkPolicy, and some keep established connections open. The pod's token stays valid until the pod is deleted.`,
      commands,
      [manifest(file, [policy])],
    );
  });
  return withRejections(out, pods.rejected, 'isolate-workload', "Isolate the actor's pod");
}

function deleteWorkload(ctx: PlanContext): Remediation[] {
  const pods = actorPods(ctx);
  const out = pods.ok.map((p) =>
    remediation(
      'delete-workload',
      `Delete pod ${refText(p)}`,
      `Deleting the pod ends its bound service-account token wherever that token was copied to. Its logs are saved first, and its owner printed: the owning controller re-creates the pod with the same service account, so remove the binding that granted the access before this step, and isolate the pod first if it needs examining.`,
      `Whatever the attacker left in the container's filesystem or memory is lost. The workload runs one replica short until the controller replaces the pod, with the same image and service account.`,
      [
        `kubectl -n ${p.namespace} get pod ${p.name} -o jsonpath='{range .metadata.ownerReferences[*]}{.kind}/{.name}{"\\n"}{end}'`,
        `kubectl -n ${p.namespace} logs ${p.name} --all-containers --timestamps > ${p.namespace}-${p.name}.log`,
        `kubectl -n ${p.namespace} delete pod ${p.name}`,
      ],
    ),
  );
  return withRejections(out, pods.rejected, 'delete-workload', "Delete the actor's pod");
}

// ---------------------------------------------------------------------------------------------
// remove-binding

function removeBinding(ctx: PlanContext): Remediation[] {
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
  const examples = unique(granted.map((e) => [e.target.verb, e.target.resource, e.target.namespace && e.target.name ? `${e.target.namespace}/${e.target.name}` : e.target.name].filter(Boolean).join(' '))).slice(0, 3);
  const role = b.roleKind && b.roleName ? ` ${b.roleKind} ${isRbacName(b.roleName) ? b.roleName : display(b.roleName)}` : ' its role';
  const granting = granted.length > 0 ? ` The API server named it as what allowed ${plural(granted.length, 'request')} of the incident (${examples.join('; ')}).` : '';
  const replacement = !ctx.sa
    ? ''
    : legitimatePermissions(ctx).byScope.size > 0
      ? ' The least-privilege Role suggested with this plan keeps the access the identity used legitimately.'
      : ' The identity showed no legitimate API use, so no replacement is proposed: it likely needs no API access at all (set automountServiceAccountToken: false on its pods).';
  const impersonators = unique(ctx.incident.timeline.flatMap((e) => (e.attributes.impersonator ? [e.attributes.impersonator] : [])));
  const impersonation = impersonators.length > 0 ? ` The requests were made by ${impersonators.map(display).join(', ')} impersonating the actor: also review who may impersonate it.` : '';
  return [
    remediation(
      'remove-binding',
      title,
      `${b.kind} ${b.name} grants${role} to the actor.${granting} It is backed up, then deleted.${replacement}${impersonation}`,
      `Every subject of this binding loses the role, not only the actor, and kubevigil cannot see the others: read the USERS, GROUPS and SERVICEACCOUNTS columns of the first command, and if anyone else needs the access, re-create the binding from the backup without the actor instead.${b.name.startsWith('system:') ? ' Bindings named system: are defaults the API server re-creates when it restarts: prefer removing whatever made the actor a subject.' : ''} Legitimate calls that relied on it fail until the replacement is applied.`,
      [`kubectl ${scope}get ${resource} ${b.name} -o wide`, `kubectl ${scope}get ${resource} ${b.name} -o yaml > ${backup}`, `kubectl ${scope}delete ${resource} ${b.name}`],
    ),
  ];
}

// ---------------------------------------------------------------------------------------------
// least-privilege-role

interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

// Verbs that let an identity grant itself more; never handed out from observed usage.
const ESCALATION_VERBS = new Set(['bind', 'escalate', 'impersonate']);
const VERB = /^[a-z]+$/;

const isValidUse = (u: PermissionUse): boolean =>
  VERB.test(u.verb) && isName(u.resource) && (u.apiGroup === '' || isName(u.apiGroup)) && (u.subresource === undefined || isName(u.subresource)) && (u.namespace === undefined || isName(u.namespace));

/** The actor's legitimate usage as RBAC rules per namespace ('' = cluster-wide), and what was left out. */
function legitimatePermissions(ctx: PlanContext): { byScope: Map<string, PolicyRule[]>; notes: string[]; rejected: string[] } {
  const verbs = new Map<string, Map<string, Set<string>>>();
  const left = { ownSecrets: false, otherSecrets: false, escalation: new Set<string>() };
  const rejected: string[] = [];
  for (const u of ctx.usage) {
    if (u.count <= 0) continue;
    if (!isValidUse(u)) rejected.push(`${u.verb} ${u.apiGroup}/${u.resource}${u.subresource ? `/${u.subresource}` : ''} in ${u.namespace ?? 'the cluster'}`);
    else if (u.resource === 'secrets' && u.apiGroup === '') left[u.namespace !== undefined && u.namespace === ctx.sa?.namespace ? 'ownSecrets' : 'otherSecrets'] = true;
    else if (ESCALATION_VERBS.has(u.verb)) left.escalation.add(u.verb);
    else {
      const scope = u.namespace ?? '';
      const byResource = verbs.get(scope) ?? new Map<string, Set<string>>();
      const key = `${u.apiGroup}\u0000${u.subresource ? `${u.resource}/${u.subresource}` : u.resource}`;
      byResource.set(key, (byResource.get(key) ?? new Set()).add(u.verb));
      verbs.set(scope, byResource);
    }
  }
  const byScope = new Map(
    [...verbs.keys()].sort().map((scope): [string, PolicyRule[]] => [
      scope,
      [...verbs.get(scope)!].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, vs]) => {
        const [apiGroup = '', resource = ''] = key.split('\u0000');
        return { apiGroups: [apiGroup], resources: [resource], verbs: [...vs].sort() };
      }),
    ]),
  );
  const notes: string[] = [];
  if (left.ownSecrets) notes.push(`It also read secrets in its own namespace, but the usage does not say which, so secrets are left out: add a rule with resourceNames for the ones it needs.`);
  if (left.otherSecrets) notes.push('Secret access outside its own namespace is left out: that is what this kind of attack uses.');
  if (left.escalation.size > 0) notes.push(`The verbs ${[...left.escalation].sort().join(', ')} are left out: they let an identity grant itself more.`);
  return { byScope, notes, rejected };
}

function leastPrivilegeRole(ctx: PlanContext): Remediation[] {
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
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: `${kind}Binding`, metadata: metadata(ctx, name, ns), roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind, name }, subjects: [subject] },
    ];
  });
  const file = `least-privilege-${sa.namespace}-${sa.name}.yaml`;
  const user = `system:serviceaccount:${sa.namespace}:${sa.name}`;
  const scopes = [...byScope.keys()].map((s) => (s === '' ? 'cluster-wide' : s));
  const out = [
    remediation(
      'least-privilege-role',
      `Least-privilege access for service account ${refText(sa)}`,
      [`Generated from the requests ${refText(sa)} made legitimately (outside the attack), as audit2rbac does: exactly those verbs on those resources (${scopes.join(', ')}), bound to the service account only. Apply it when the enabling binding is removed so the workload keeps working.`, ...notes].join(' '),
      'Calls the workload makes rarely (start-up, leader election, a monthly job) may be missing from the observed usage and would be refused; compare the last command\'s output with what the application needs.',
      [`kubectl apply -f ${file}`, ...[...byScope.keys()].map((s) => `kubectl auth can-i --list --as=${user}${s === '' ? '' : ` -n ${s}`}`)],
      [manifest(file, docs)],
    ),
  ];
  return withRejections(out, rejected, 'least-privilege-role', `Least-privilege access for service account ${refText(sa)}`);
}

// ---------------------------------------------------------------------------------------------
// mesh-mtls-strict, mesh-authorization-policy

const MESH_KINDS: ReadonlySet<SignalKind> = new Set(['mtls.failed', 'mesh.security_weakened']);

/** Namespaces to harden in the mesh: where mTLS failed or was weakened, and where stolen credentials lead. */
function meshTargets(ctx: PlanContext): Checked<string> & { fromMesh: Set<string> } {
  const fromMesh = new Set(entries(ctx, MESH_KINDS).flatMap((e) => (e.target.namespace ? [e.target.namespace] : [])));
  const fromSecrets = secretsRead(ctx).ok.map((r) => r.namespace).filter((ns) => ns !== ctx.incident.actor.namespace);
  return { ...checkNames([...fromMesh, ...fromSecrets].sort()), fromMesh };
}

function why(ns: string, fromMesh: ReadonlySet<string>): string {
  return fromMesh.has(ns) ? `Mutual TLS failed or was weakened in ${ns}.` : `The actor read credentials from ${ns}, so its services are the next target.`;
}

function meshMtlsStrict(ctx: PlanContext): Remediation[] {
  const { ok, rejected, fromMesh } = meshTargets(ctx);
  const out = ok.map((ns) => {
    const file = `peerauthentication-${ns}.yaml`;
    const doc = { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: metadata(ctx, 'default', ns), spec: { mtls: { mode: 'STRICT' } } };
    return remediation(
      'mesh-mtls-strict',
      `Require mutual TLS in namespace ${ns}`,
      `${why(ns, fromMesh)} A namespace-wide PeerAuthentication in STRICT mode makes every workload in ${ns} refuse plaintext, so each caller must present a verifiable mesh identity, which an AuthorizationPolicy can then deny. It is named default because Istio honours only one namespace-wide policy (the oldest): this replaces the usual one rather than competing with it.`,
      `Clients without a sidecar (jobs, probes from outside the mesh, ingress not in the mesh, other namespaces outside the mesh) can no longer connect to ${ns}. Check the existing policies with the first command; an existing default policy is overwritten.`,
      [`kubectl -n ${ns} get peerauthentication`, `kubectl apply -f ${file}`],
      [manifest(file, [doc])],
    );
  });
  return withRejections(out, rejected, 'mesh-mtls-strict', 'Require mutual TLS in the target namespaces');
}

function meshAuthorizationPolicy(ctx: PlanContext): Remediation[] {
  const { ok, rejected, fromMesh } = meshTargets(ctx);
  const sa = ctx.sa;
  if (!sa) return ok.length > 0 ? withRejections([], rejectedActor(ctx), 'mesh-authorization-policy', 'Deny the actor in the target namespaces') : [];
  const principal = `cluster.local/ns/${sa.namespace}/sa/${sa.name}`;
  const name = `kubevigil-deny-${sa.namespace}-${sa.name}`;
  const out = ok
    .filter((ns) => ns !== sa.namespace)
    .map((ns) => {
      const file = `authorizationpolicy-${ns}-${name}.yaml`;
      const doc = {
        apiVersion: 'security.istio.io/v1',
        kind: 'AuthorizationPolicy',
        metadata: metadata(ctx, name, ns),
        spec: { action: 'DENY', rules: [{ from: [{ source: { principals: [principal] } }] }] },
      };
      return remediation(
        'mesh-authorization-policy',
        `Deny ${refText(sa)} in namespace ${ns}`,
        `${why(ns, fromMesh)} This DENY policy refuses every request to ${ns} from the actor's mesh identity ${principal}, whichever pod carries it.`,
        `Legitimate calls from ${refText(sa)} to ${ns} are refused too (narrow the rule with to.operation.ports to the database port if the service must keep calling ${ns}). The principal only exists over mutual TLS, so plaintext requests are not matched unless ${ns} is STRICT; the trust domain is assumed to be cluster.local (check meshConfig.trustDomain).`,
        [`kubectl apply -f ${file}`, `kubectl -n ${ns} get authorizationpolicy ${name}`],
        [manifest(file, [doc])],
      );
    });
  return withRejections(out, rejected, 'mesh-authorization-policy', 'Deny the actor in the target namespaces');
}

// ---------------------------------------------------------------------------------------------
// rotate-credentials

const SECRET_LISTS: ReadonlySet<SignalKind> = new Set(['secret.list', 'secret.list_cluster_wide']);

function rotateSecret(ctx: PlanContext, s: Ref): Remediation {
  const reads = entries(ctx, SECRET_READS, true).filter((e) => e.target.namespace === s.namespace && e.target.name === s.name).length;
  const consumers = `{range .items[*]}{.metadata.name}{" "}{.spec.volumes[*].secret.secretName}{" "}{.spec.containers[*].env[*].valueFrom.secretKeyRef.name}{" "}{.spec.containers[*].envFrom[*].secretRef.name}{"\\n"}{end}`;
  return remediation(
    'rotate-credentials',
    `Rotate the credential in secret ${refText(s)}`,
    `Secret ${refText(s)} was read in this incident (${plural(reads, 'allowed read')}), so its value must be treated as stolen. Rotate it at its source, the database or service that issued it (kubevigil cannot know which), then update the secret the way it is managed (the first command prints its labels, owner and the managers that write it: External Secrets, Sealed Secrets, Helm or kubectl; not its annotations, which can hold the value), and restart the workloads that use it (the second command lists pods that mount it or read it from the environment). Deleting or re-creating the secret alone changes nothing: the stolen value stays valid at the source.`,
    `Consumers keep the old value until restarted and fail against the rotated source in between; the last command restarts every Deployment in ${s.namespace}, so restart only the consumers listed if that is too broad.`,
    [
      `kubectl -n ${s.namespace} get secret ${s.name} -o jsonpath='{.metadata.labels}{"\\n"}{.metadata.ownerReferences[*].kind}/{.metadata.ownerReferences[*].name}{"\\n"}{.metadata.managedFields[*].manager}{"\\n"}'`,
      `kubectl -n ${s.namespace} get pods -o jsonpath='${consumers}' | grep -wF ${s.name}`,
      `kubectl -n ${s.namespace} rollout restart deployment`,
    ],
  );
}

/** Secrets listed (values included, as list responses carry them) in a namespace, or everywhere when `ns` is undefined. */
function exposedByList(ns: string | undefined): Remediation {
  const where = ns ? `namespace ${ns}` : 'the cluster';
  const scope = ns ? `-n ${ns}` : '-A';
  return remediation(
    'rotate-credentials',
    `Treat every secret in ${where} as exposed`,
    `The actor listed secrets in ${where} successfully, and a list response carries every secret's data. Rotate them at their sources, most valuable first (database and cloud credentials, API keys, TLS private keys). Service-account token secrets are credentials too: delete those of accounts that do not need a long-lived token.`,
    'Rotating many credentials at once can break many workloads; go one owner at a time. Deleting a token secret breaks whatever outside the cluster still uses it.',
    [`kubectl get secrets ${scope} --field-selector type!=kubernetes.io/service-account-token`, `kubectl get secrets ${scope} --field-selector type=kubernetes.io/service-account-token`],
  );
}

function actorToken(sa: Ref): Remediation {
  return remediation(
    'rotate-credentials',
    `Revoke the tokens of service account ${refText(sa)}`,
    `The attacker held ${refText(sa)}'s token. A bound token dies with its pod (see the pod deletion), but legacy token secrets never expire: the first command lists those in ${sa.namespace} and the second the ones attached to the account; delete each that belongs to ${sa.name} (annotation kubernetes.io/service-account.name) with kubectl -n ${sa.namespace} delete secret followed by its name.`,
    'Anything outside the cluster that uses a deleted legacy token (CI, dashboards) loses access.',
    [`kubectl -n ${sa.namespace} get secrets --field-selector type=kubernetes.io/service-account-token`, `kubectl -n ${sa.namespace} get serviceaccount ${sa.name} -o jsonpath='{.secrets[*].name}{"\\n"}'`],
  );
}

function rotateCredentials(ctx: PlanContext): Remediation[] {
  const read = secretsRead(ctx);
  const lists = entries(ctx, SECRET_LISTS, true);
  const listedNs = checkNames(lists.filter((e) => e.kind === 'secret.list' && e.target.namespace).map((e) => e.target.namespace!).sort());
  const out = [
    ...(lists.some((e) => e.kind === 'secret.list_cluster_wide') ? [exposedByList(undefined)] : []),
    ...listedNs.ok.map((ns) => exposedByList(ns)),
    ...read.ok.map((s) => rotateSecret(ctx, s)),
    ...(ctx.sa ? [actorToken(ctx.sa)] : []),
  ];
  const seen = new Set(read.ok.map(refText));
  const unconfirmed = ctx.incident.blastRadius.secrets.map((s) => s.replace(/^secret:/, '')).filter((s) => !seen.has(s));
  const [first, ...rest] = out;
  const withUnconfirmed = first && unconfirmed.length > 0
    ? [{ ...first, rationale: `${first.rationale} The blast radius also names ${unconfirmed.map(display).join(', ')} with no allowed read in the kept timeline (denied, or trimmed from it): check the audit log before rotating them.` }, ...rest]
    : out;
  return withRejections(withUnconfirmed, [...read.rejected, ...listedNs.rejected, ...rejectedActor(ctx)], 'rotate-credentials', 'Rotate the credentials the actor read');
}

// ---------------------------------------------------------------------------------------------
// admission-policy

interface GatekeeperConstraint {
  kind: string;
  name: string;
  /** ConstraintTemplate name and its folder in gatekeeper-library's pod-security-policy library. */
  template: string;
  libraryPath: string;
  parameters?: Record<string, unknown>;
}

/** A pod-level technique, and the controls that refuse it in each engine. */
interface PodControl {
  signal: SignalKind;
  what: string;
  gatekeeper: GatekeeperConstraint[];
  kyverno: { name: string; message: string; pattern: Record<string, unknown> };
}

const notPrivileged = [{ '=(securityContext)': { '=(privileged)': 'false' } }];

const POD_CONTROLS: readonly PodControl[] = [
  {
    signal: 'pod.privileged',
    what: 'privileged containers',
    gatekeeper: [{ kind: 'K8sPSPPrivilegedContainer', name: 'kubevigil-privileged-container', template: 'k8spspprivilegedcontainer', libraryPath: 'privileged-containers' }],
    kyverno: {
      name: 'disallow-privileged-containers',
      message: 'Privileged containers are not allowed: securityContext.privileged must be unset or false.',
      pattern: { spec: { '=(ephemeralContainers)': notPrivileged, '=(initContainers)': notPrivileged, containers: notPrivileged } },
    },
  },
  {
    signal: 'pod.host_namespace',
    what: 'host namespaces',
    gatekeeper: [
      { kind: 'K8sPSPHostNamespace', name: 'kubevigil-host-namespace', template: 'k8spsphostnamespace', libraryPath: 'host-namespaces' },
      // K8sPSPHostNamespace covers hostPID and hostIPC only; hostNetwork is this template's job.
      { kind: 'K8sPSPHostNetworkingPorts', name: 'kubevigil-host-network', template: 'k8spsphostnetworkingports', libraryPath: 'host-network-ports', parameters: { hostNetwork: false } },
    ],
    kyverno: {
      name: 'disallow-host-namespaces',
      message: 'Sharing the host network, PID or IPC namespace is not allowed.',
      pattern: { spec: { '=(hostNetwork)': 'false', '=(hostPID)': 'false', '=(hostIPC)': 'false' } },
    },
  },
  {
    signal: 'pod.hostpath',
    what: 'hostPath volumes',
    // An empty allowedHostPaths list forbids every hostPath.
    gatekeeper: [{ kind: 'K8sPSPHostFilesystem', name: 'kubevigil-host-filesystem', template: 'k8spsphostfilesystem', libraryPath: 'host-filesystem', parameters: { allowedHostPaths: [] } }],
    kyverno: {
      name: 'disallow-host-path',
      message: 'hostPath volumes are not allowed.',
      pattern: { spec: { '=(volumes)': [{ 'X(hostPath)': 'null' }] } },
    },
  },
];

const POD_KINDS: ReadonlySet<SignalKind> = new Set(POD_CONTROLS.map((c) => c.signal));
const EXCLUDED_NAMESPACES = ['kube-system'];
const LIBRARY = 'https://raw.githubusercontent.com/open-policy-agent/gatekeeper-library/master/library/pod-security-policy';

function gatekeeperPolicy(ctx: PlanContext, controls: readonly PodControl[], context: string): Remediation {
  const constraints = controls.flatMap((c) => c.gatekeeper);
  const file = 'gatekeeper-kubevigil-pod-security.yaml';
  const docs = constraints.map((g) => ({
    apiVersion: 'constraints.gatekeeper.sh/v1beta1',
    kind: g.kind,
    metadata: metadata(ctx, g.name),
    spec: { match: { kinds: [{ apiGroups: [''], kinds: ['Pod'] }], excludedNamespaces: EXCLUDED_NAMESPACES }, ...(g.parameters ? { parameters: g.parameters } : {}) },
  }));
  return remediation(
    'admission-policy',
    `Gatekeeper: deny ${controls.map((c) => c.what).join(', ')}`,
    `${context} These Gatekeeper constraints refuse such pods in every namespace but ${EXCLUDED_NAMESPACES.join(', ')}. They need the gatekeeper-library ConstraintTemplates ${constraints.map((g) => g.template).join(', ')}: if the first commands answer NotFound, install them first (${constraints.map((g) => `${LIBRARY}/${g.libraryPath}/template.yaml`).join(', ')}). Use this or the Kyverno policy, whichever engine the cluster runs.`,
    `Every new pod with ${controls.map((c) => c.what).join(' or ')} outside ${EXCLUDED_NAMESPACES.join(', ')} is refused, legitimate ones too (CNI or storage agents, node exporters): add their namespaces to excludedNamespaces, or set spec.enforcementAction: dryrun first and read the constraints' status.violations. Running pods are not affected.`,
    [...constraints.map((g) => `kubectl get constrainttemplate ${g.template}`), `kubectl apply -f ${file}`, 'kubectl get constraints'],
    [manifest(file, docs)],
  );
}

function kyvernoPolicy(ctx: PlanContext, controls: readonly PodControl[], context: string): Remediation {
  const file = 'kyverno-kubevigil-pod-security.yaml';
  const policy = {
    apiVersion: 'kyverno.io/v1',
    kind: 'ClusterPolicy',
    metadata: metadata(ctx, 'kubevigil-pod-security'),
    spec: {
      validationFailureAction: 'Enforce',
      background: true,
      rules: controls.map((c) => ({
        name: c.kyverno.name,
        match: { any: [{ resources: { kinds: ['Pod'] } }] },
        exclude: { any: [{ resources: { namespaces: EXCLUDED_NAMESPACES } }] },
        validate: { message: c.kyverno.message, pattern: c.kyverno.pattern },
      })),
    },
  };
  return remediation(
    'admission-policy',
    `Kyverno: deny ${controls.map((c) => c.what).join(', ')}`,
    `${context} This Kyverno ClusterPolicy enforces the same in every namespace but ${EXCLUDED_NAMESPACES.join(', ')}; Kyverno extends Pod rules to Deployments, Jobs and other controllers. Use this or the Gatekeeper constraints, whichever engine the cluster runs.`,
    `Every new pod or workload with ${controls.map((c) => c.what).join(' or ')} outside ${EXCLUDED_NAMESPACES.join(', ')} is refused, legitimate ones too; the background scan reports existing violations in policy reports (last command) without touching running pods.`,
    [`kubectl apply -f ${file}`, 'kubectl get clusterpolicy kubevigil-pod-security', 'kubectl get policyreport -A'],
    [manifest(file, [policy])],
  );
}

function podSecurityLabels(namespaces: readonly string[], context: string): Remediation {
  return remediation(
    'admission-policy',
    `Pod Security Admission: enforce baseline in ${namespaces.join(', ')}`,
    `${context} The built-in Pod Security baseline level refuses privileged containers, host namespaces and hostPath volumes with no extra component; restricted is set to warn, the next step. The dry run lists the running pods that would violate it.`,
    'New pods that need those privileges in these namespaces are refused. If a namespace already enforces restricted, keep it: this label would lower it to baseline.',
    namespaces.flatMap((ns) => [
      `kubectl get namespace ${ns} --show-labels`,
      `kubectl label namespace ${ns} pod-security.kubernetes.io/enforce=baseline --overwrite --dry-run=server`,
      `kubectl label namespace ${ns} pod-security.kubernetes.io/enforce=baseline pod-security.kubernetes.io/warn=restricted --overwrite`,
    ]),
  );
}

const ENGINE_NAMES: Record<string, string> = { gatekeeper: 'Gatekeeper constraint', kyverno: 'Kyverno policy', 'pod-security': 'Pod Security level', webhook: 'admission webhook' };

/** Which control refused the denied attempts, in words. */
function heldBy(attempts: readonly TimelineEntry[]): string {
  const policies = unique(
    attempts.flatMap((e) => {
      const engine = e.attributes.admissionEngine;
      const names = (e.attributes.admissionPolicies ?? '').split(',').filter(Boolean);
      return engine ? names.map((n) => `${ENGINE_NAMES[engine] ?? `${display(engine)} policy`} ${display(n)}`) : [];
    }),
  );
  return policies.length > 0
    ? `Every attempt was denied: the existing ${policies.join(', ')} held.`
    : 'Every attempt was denied before admission (by authorization), so no admission policy was put to the test.';
}

function admissionPolicy(ctx: PlanContext): Remediation[] {
  const attempts = entries(ctx, POD_KINDS);
  if (attempts.length === 0) return [];
  const admitted = POD_CONTROLS.filter((c) => attempts.some((e) => e.kind === c.signal && e.outcome !== 'denied'));
  const targets = unique(attempts.flatMap((e) => (e.target.namespace ? [e.target.namespace] : [])));
  const { ok, rejected } = checkNames(targets.filter((ns) => !EXCLUDED_NAMESPACES.includes(ns)).sort());
  const excluded = targets.filter((ns) => EXCLUDED_NAMESPACES.includes(ns));
  const excludedNote = excluded.length > 0 ? ` ${excluded.join(', ')} is left out: system components there need these privileges.` : '';
  if (admitted.length === 0) {
    const out = ok.length > 0 ? [podSecurityLabels(ok, `${heldBy(attempts)} Pod Security labels add defence in depth that holds even if a policy engine is removed or bypassed.${excludedNote}`)] : [];
    return withRejections(out, rejected, 'admission-policy', 'Harden the namespaces the attack targeted');
  }
  const where = ok.length > 0 ? ` in ${ok.join(', ')}` : '';
  const what = admitted.map((c) => c.what).join(', ');
  const context = attempts.some((e) => e.outcome === 'allowed')
    ? `A pod with ${what} was admitted${where}: no policy stopped it.`
    : `A request for a pod with ${what}${where} has no recorded outcome, so nothing shows a policy would refuse it.`;
  const engines = [gatekeeperPolicy(ctx, admitted, context), kyvernoPolicy(ctx, admitted, context)];
  // The engine the cluster already showed in a denial goes first.
  if (attempts.some((e) => e.attributes.admissionEngine === 'kyverno')) engines.reverse();
  const psa = ok.length > 0 ? [podSecurityLabels(ok, `Alternative without a policy engine, for the namespaces the attack used.${excludedNote}`)] : [];
  return withRejections([...engines, ...psa], rejected, 'admission-policy', 'Harden the namespaces the attack targeted');
}

// ---------------------------------------------------------------------------------------------
// The plan

// Contain (cut the pod off, shield the next target), remove access (binding, then its replacement,
// then the pod and the stolen credentials, which would be re-obtained while the binding stands),
// then harden admission.
const PLANNERS: readonly Planner[] = [
  isolateWorkload,
  meshMtlsStrict,
  meshAuthorizationPolicy,
  removeBinding,
  leastPrivilegeRole,
  deleteWorkload,
  rotateCredentials,
  admissionPolicy,
];

/** Suggested remediations for an incident, in the order to apply them; none is ever applied automatically. */
export function planRemediations(input: PlanInput): Remediation[] {
  const ctx: PlanContext = { incident: input.incident, usage: input.usage };
  const { ok: [sa], rejected: [rejectedSa] } = actorServiceAccount(input.incident);
  if (sa) ctx.sa = sa;
  if (rejectedSa !== undefined) ctx.rejectedSa = rejectedSa;
  return PLANNERS.flatMap((plan) => plan(ctx));
}
