/**
 * Audit Event → {@link SourceEvent}: who acted (the effective identity, with the impersonator kept),
 * on what, with which outcome, and the facts rules and root-cause analysis need — the binding named
 * in `authorization.k8s.io/reason`, the admission policy named in a denial, the pod spec inside any
 * workload. Expensive facts are computed lazily: most events never need them.
 */
import {
  actorFromIp,
  actorFromUsername,
  bindingKey,
  ipKey,
  nodeKey,
  nsKey,
  podKey,
  policyKey,
  roleKey,
  secretKey,
  userKey,
  type Actor,
} from '../../correlator/entities.js';
import { actorFields } from '../../correlator/detection/fields.js';
import type { EventDetails, SourceEvent, SourceSchema } from '../../correlator/detection/source-event.js';
import { boundedRedactedCopy, redactText, truncate } from '../../correlator/redact.js';
import type { Outcome, Target } from '../../correlator/signal.js';
import type { AuditEvent, UserInfo } from './parse.js';
import { bindsAdminEquivalentRole, learnRole } from './role-facts.js';
import { csrFacts, describeObject, execFacts, type CsrFacts, type ExecFacts } from './facts.js';
import { isObj } from '../../correlator/json-guards.js';
import { parseTimestamp } from '../../platform/timestamp.js';

/** The binding that allowed a request, parsed from the RBAC authorizer's reason. */
export interface AuthzReason {
  decision: string;
  reason: string;
  bindingKind?: 'ClusterRoleBinding' | 'RoleBinding';
  bindingName?: string;
  bindingNamespace?: string;
  roleKind?: string;
  roleName?: string;
  subjectKind?: string;
  subject?: string;
}

/** What an admission controller said when it denied or flagged a request. */
export interface AdmissionInfo {
  /** The request was refused by admission (not by authorization). */
  denied: boolean;
  engine: 'gatekeeper' | 'kyverno' | 'pod-security' | 'admission-policy' | 'webhook' | 'none';
  webhook?: string;
  policies: string[];
  message?: string;
  /** Pod Security audit/warn violations on an allowed request. */
  violations?: string;
}

/** Container-level facts of the pod spec a request creates, whatever the workload kind. */
export interface PodFacts {
  privileged: boolean;
  allowPrivilegeEscalation: boolean;
  hostNetwork: boolean;
  hostPID: boolean;
  hostIPC: boolean;
  hostPaths: string[];
  addedCapabilities: string[];
  serviceAccountName?: string;
  images: string[];
  /** What breaks isolation, in words: "privileged container", "capabilities SYS_ADMIN", "host PID"… */
  risks: string[];
}

// kubernetes plugin/pkg/auth/authorizer/rbac/rbac.go: `RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "r" to User "u"`
// and `RoleBinding "b/ns" of Role "r" to ServiceAccount "sa/ns"`.
const RBAC_REASON = /^RBAC: allowed by (ClusterRoleBinding|RoleBinding) "([^"]*)" of (ClusterRole|Role) "([^"]*)" to (\w+) "([^"]*)"/;
const WEBHOOK_DENY = /admission webhook "([^"]+)" denied the request:?\s*([\s\S]*)$/;
const PSA_DENY = /violates PodSecurity "([^"]+)"/;
const VAP_DENY = /ValidatingAdmissionPolicy '([^']+)' with binding '[^']+' denied request/;
const GATEKEEPER_NAME = /\[(?:denied by )?([^\]\s]+)\]/g;
const KYVERNO_POLICY = /^([A-Za-z0-9][A-Za-z0-9.-]*):\s*$/gm;

/** Parses `authorization.k8s.io/reason` (and the decision beside it). */
export function parseAuthzReason(decision: string, reason: string): AuthzReason {
  const out: AuthzReason = { decision, reason };
  const m = RBAC_REASON.exec(reason);
  if (m) {
    out.bindingKind = m[1] as AuthzReason['bindingKind'];
    if (out.bindingKind === 'RoleBinding') {
      const slash = m[2]!.lastIndexOf('/');
      out.bindingName = slash > 0 ? m[2]!.slice(0, slash) : m[2]!;
      if (slash > 0) out.bindingNamespace = m[2]!.slice(slash + 1);
    } else out.bindingName = m[2]!;
    out.roleKind = m[3]!;
    out.roleName = m[4]!;
    out.subjectKind = m[5]!;
    out.subject = m[6]!;
  }
  return out;
}

/** Extracts the admission engine and policy names from a denial message (Gatekeeper, Kyverno, Pod Security, any webhook). */
export function parseAdmissionMessage(message: string): Omit<AdmissionInfo, 'denied'> | undefined {
  const vap = VAP_DENY.exec(message);
  if (vap) return { engine: 'admission-policy', policies: [vap[1]!], message };
  const psa = PSA_DENY.exec(message);
  if (psa && !message.includes('admission webhook')) return { engine: 'pod-security', policies: [psa[1]!], message };
  const w = WEBHOOK_DENY.exec(message);
  if (!w) return undefined;
  const webhook = w[1]!;
  const body = w[2] ?? '';
  if (webhook.includes('gatekeeper')) {
    const policies = [...new Set([...body.matchAll(GATEKEEPER_NAME)].map((m) => m[1]!))];
    return { engine: 'gatekeeper', webhook, policies, message };
  }
  if (webhook.includes('kyverno')) {
    const after = body.split(/blocked due to the following polic(?:y|ies)/)[1] ?? body.split(/for resource violation:/)[1] ?? '';
    const policies = [...new Set([...after.replace(/\\n/g, '\n').matchAll(KYVERNO_POLICY)].map((m) => m[1]!))];
    return { engine: 'kyverno', webhook, policies, message };
  }
  return { engine: 'webhook', webhook, policies: [webhook], message };
}

/** The pod spec a request object carries: a Pod, a workload template, or a CronJob's job template. */
export function findPodSpec(obj: unknown): Record<string, unknown> | undefined {
  if (!isObj(obj)) return undefined;
  const spec = obj.spec;
  if (!isObj(spec)) return undefined;
  if (obj.kind === 'Pod' || Array.isArray(spec.containers) || Array.isArray(spec.ephemeralContainers)) return spec;
  const tpl = isObj(spec.template) ? spec.template.spec : undefined;
  if (isObj(tpl)) return tpl;
  const job = isObj(spec.jobTemplate) && isObj(spec.jobTemplate.spec) ? spec.jobTemplate.spec.template : undefined;
  if (isObj(job) && isObj(job.spec)) return job.spec;
  return undefined;
}

function allContainers(spec: Record<string, unknown>): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const k of ['containers', 'initContainers', 'ephemeralContainers']) {
    const list = spec[k];
    if (Array.isArray(list)) for (const c of list) if (isObj(c)) out.push(c);
  }
  return out;
}

/** Security-relevant facts of a pod spec. */
export function podFacts(spec: Record<string, unknown>): PodFacts {
  const containers = allContainers(spec);
  const sc = (c: Record<string, unknown>) => (isObj(c.securityContext) ? c.securityContext : {});
  const caps = containers.flatMap((c) => {
    const add = isObj(sc(c).capabilities) ? (sc(c).capabilities as Record<string, unknown>).add : undefined;
    return Array.isArray(add) ? add.filter((x): x is string => typeof x === 'string') : [];
  });
  const volumes = Array.isArray(spec.volumes) ? spec.volumes : [];
  const hostPaths = volumes.flatMap((v) => (isObj(v) && isObj(v.hostPath) && typeof v.hostPath.path === 'string' ? [v.hostPath.path] : []));
  const privileged = containers.some((c) => sc(c).privileged === true);
  const risks: string[] = [];
  if (privileged) risks.push('a privileged container');
  if (caps.length) risks.push(`added capabilities ${[...new Set(caps)].slice(0, 8).join(', ')}`);
  if (spec.hostNetwork === true) risks.push('the host network');
  if (spec.hostPID === true) risks.push('the host PID namespace');
  if (spec.hostIPC === true) risks.push('the host IPC namespace');
  if (hostPaths.length) risks.push(`host paths ${hostPaths.slice(0, 8).join(', ')}`);
  return {
    privileged,
    allowPrivilegeEscalation: containers.some((c) => sc(c).allowPrivilegeEscalation === true),
    hostNetwork: spec.hostNetwork === true,
    hostPID: spec.hostPID === true,
    hostIPC: spec.hostIPC === true,
    hostPaths,
    addedCapabilities: caps,
    risks,
    serviceAccountName:
      typeof spec.serviceAccountName === 'string' ? spec.serviceAccountName : typeof spec.serviceAccount === 'string' ? spec.serviceAccount : undefined,
    images: containers.flatMap((c) => (typeof c.image === 'string' ? [c.image] : [])),
  };
}

// A cluster has few distinct usernames (controllers, kubelets, service accounts) and sends them
// millions of times: parse each once. Bounded; the actors are frozen because they are shared.
const ACTORS = new Map<string, Actor>();
const MAX_CACHED_ACTORS = 10_000;

function cachedActor(username: string): Actor {
  let a = ACTORS.get(username);
  if (!a) {
    if (ACTORS.size >= MAX_CACHED_ACTORS) ACTORS.clear();
    a = Object.freeze(actorFromUsername(username));
    ACTORS.set(username, a);
  }
  return a;
}

const firstExtra = (u: UserInfo | undefined, key: string): string | undefined => {
  const v = u?.extra?.[key];
  return Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined;
};

/**
 * Computed fields of one audit event, reachable from rules by their top-level name (see
 * {@link AUDIT_SCHEMA}). Getters compute on first use and cache.
 */
export class AuditDerived {
  private _authz?: AuthzReason;
  private _admission?: AdmissionInfo;
  private _podSpec?: Record<string, unknown> | null;
  private _pod?: PodFacts | null;

  private _actor?: Actor;
  private _decision?: string;
  private _exec?: ExecFacts | null;
  private _csr?: CsrFacts | null;
  private _object?: string;

  constructor(private readonly ev: AuditEvent) {}

  /**
   * The identity accountable for the request: the one that authenticated. With impersonation that
   * is the impersonator (who holds the impersonate permission); the impersonated identity is
   * context ({@link effective}). A 401 has no identity at all: the client is its address, not
   * system:anonymous (a revoked or expired token is not an anonymous request).
   */
  get actor(): Actor {
    if (this._actor) return this._actor;
    const username = this.ev.user?.username ?? '';
    if (username === '' && this.status === 401) {
      const ip = this.ev.sourceIPs?.[0];
      if (ip) return (this._actor = actorFromIp(ip));
    }
    return (this._actor = cachedActor(username));
  }

  /** The identity whose permissions the request used: the impersonated one when impersonation was used. */
  get effective(): Actor {
    return this.ev.impersonatedUser ? cachedActor(this.ev.impersonatedUser.username ?? '') : this.actor;
  }

  /** The command and container of an exec/attach request, from its query string (absent for other requests). */
  get exec(): ExecFacts | undefined {
    if (this._exec === undefined)
      this._exec = this.ev.objectRef?.subresource === 'exec' || this.ev.objectRef?.subresource === 'attach' ? execFacts(this.ev.requestURI ?? '') : null;
    return this._exec ?? undefined;
  }

  /** What a CertificateSigningRequest asks for, read from the request (else response) object. */
  get csr(): CsrFacts | undefined {
    if (this._csr === undefined)
      this._csr = this.ev.objectRef?.resource === 'certificatesigningrequests' ? csrFacts(this.ev, this.ev.user?.username ?? '') : null;
    return this._csr ?? undefined;
  }

  /** The binding's roleRef names a role that the audit stream showed granting `*` on `*` in `*`. */
  get bindsAdminRole(): boolean {
    return bindsAdminEquivalentRole(this.ev);
  }

  /** The object in words: "secret payments/db", "secrets in payments", "secrets in every namespace", "ClusterRoleBinding ci-debug". */
  get object(): string {
    return (this._object ??= describeObject(this.ev));
  }

  /** HTTP status code of the response. */
  get status(): number | undefined {
    return this.ev.responseStatus?.code;
  }

  /** `allow` / `forbid` from the authorizer's annotation; a 403 without it counts as forbid. */
  get decision(): string {
    return (this._decision ??= this.ev.annotations?.['authorization.k8s.io/decision'] ?? (this.status === 403 ? 'forbid' : ''));
  }

  /** A server-side dry run (`?dryRun=All`): admitted or not, it changed nothing. */
  get dryRun(): boolean {
    const uri = this.ev.requestURI;
    return uri !== undefined && uri.includes('dryRun=All');
  }

  /** The request carried impersonation headers. */
  get impersonated(): boolean {
    return this.ev.impersonatedUser !== undefined;
  }

  /** The real user behind an impersonated request. */
  get impersonator(): string | undefined {
    return this.ev.impersonatedUser ? this.ev.user.username : undefined;
  }

  /** True when a service account acted on a namespace other than its own. */
  get crossNamespace(): boolean {
    const ns = this.ev.objectRef?.namespace;
    const a = this.effective;
    return a.type === 'serviceaccount' && ns !== undefined && ns !== '' && ns !== a.namespace;
  }

  /** True for requests not scoped to one namespace (e.g. `GET /api/v1/secrets`). */
  get clusterWide(): boolean {
    return !this.ev.objectRef?.namespace;
  }

  /** The pod a bound service-account token belongs to (from `user.extra`). */
  get actorPod(): string | undefined {
    return firstExtra(this.effectiveUser, 'authentication.kubernetes.io/pod-name');
  }

  get authz(): AuthzReason {
    return (this._authz ??= parseAuthzReason(this.decision, this.ev.annotations?.['authorization.k8s.io/reason'] ?? ''));
  }

  get admission(): AdmissionInfo {
    if (this._admission) return this._admission;
    const msg = this.ev.responseStatus?.message;
    const parsed = typeof msg === 'string' && (this.status ?? 0) >= 400 ? parseAdmissionMessage(msg) : undefined;
    const violations = this.ev.annotations?.['pod-security.kubernetes.io/audit-violations'];
    this._admission = parsed ? { denied: true, ...parsed, message: truncate(parsed.message ?? '', 1024) } : { denied: false, engine: 'none', policies: [] };
    if (violations) this._admission.violations = violations;
    return this._admission;
  }

  /** The pod spec carried by the request (Pod or any workload template), if any. */
  get podSpec(): Record<string, unknown> | undefined {
    if (this._podSpec === undefined) this._podSpec = findPodSpec(this.ev.requestObject) ?? findPodSpec(this.ev.responseObject) ?? null;
    return this._podSpec ?? undefined;
  }

  get pod(): PodFacts | undefined {
    if (this._pod === undefined) {
      const spec = this.podSpec;
      this._pod = spec ? podFacts(spec) : null;
    }
    return this._pod ?? undefined;
  }

  private get effectiveUser(): UserInfo {
    return this.ev.impersonatedUser ?? this.ev.user;
  }
}

/** The audit source as detection sees it: derived roots and the index field. */
export const AUDIT_SCHEMA: SourceSchema = {
  name: 'k8s-audit',
  derived: [
    'actor',
    'effective',
    'exec',
    'csr',
    'object',
    'bindsAdminRole',
    'impersonated',
    'dryRun',
    'decision',
    'status',
    'impersonator',
    'crossNamespace',
    'clusterWide',
    'actorPod',
    'authz',
    'admission',
    'podSpec',
    'pod',
  ],
  indexField: 'objectRef.resource',
  indexFields: ['verb', 'objectRef.subresource', 'actor.type', 'decision', 'status', 'impersonated'],
  fields: [
    { name: 'auditID', type: 'string', description: 'Unique id of the request, shared by its stages.' },
    { name: 'stage', type: 'string', description: '`RequestReceived`, `ResponseStarted`, `ResponseComplete` or `Panic` (rules never see `RequestReceived`).' },
    { name: 'level', type: 'string', description: 'Audit level the event was recorded at: `Metadata`, `Request` or `RequestResponse`.' },
    {
      name: 'verb',
      type: 'string',
      description: 'Kubernetes verb: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, `impersonate`…',
    },
    { name: 'requestURI', type: 'string', description: 'Request path and query, e.g. `/api/v1/namespaces/default/secrets`.' },
    { name: 'user.username', type: 'string', description: 'The authenticated user (the impersonator when impersonation was used).' },
    { name: 'user.uid', type: 'string', description: 'UID of the authenticated user.' },
    { name: 'user.groups', type: 'string[]', description: 'Groups of the authenticated user.' },
    { name: 'user.extra.*', type: 'string[]', description: 'Extra authentication attributes, e.g. `user.extra["authentication.kubernetes.io/pod-name"]`.' },
    { name: 'impersonatedUser.username', type: 'string', description: 'The user the request impersonated, when it did.' },
    { name: 'impersonatedUser.uid', type: 'string', description: 'UID of the impersonated user.' },
    { name: 'impersonatedUser.groups', type: 'string[]', description: 'Groups of the impersonated user.' },
    { name: 'impersonatedUser.extra.*', type: 'string[]', description: 'Extra attributes of the impersonated user.' },
    { name: 'sourceIPs', type: 'string[]', description: 'Client addresses; `sourceIPs[0]` is the originating client.' },
    { name: 'userAgent', type: 'string', description: 'User agent the client sent.' },
    { name: 'objectRef.resource', type: 'string', description: 'Resource acted on, plural: `pods`, `secrets`, `clusterrolebindings`…' },
    { name: 'objectRef.subresource', type: 'string', description: 'Subresource: `exec`, `attach`, `portforward`, `log`, `ephemeralcontainers`…' },
    { name: 'objectRef.namespace', type: 'string', description: 'Namespace of the object; absent for cluster-scoped and cluster-wide requests.' },
    { name: 'objectRef.name', type: 'string', description: 'Name of the object; absent for `list`, `watch` and `create` without a name.' },
    { name: 'objectRef.uid', type: 'string', description: 'UID of the object.' },
    { name: 'objectRef.apiGroup', type: 'string', description: 'API group (`""` for the core group, `rbac.authorization.k8s.io`…).' },
    { name: 'objectRef.apiVersion', type: 'string', description: 'API version of the object.' },
    { name: 'objectRef.resourceVersion', type: 'string', description: 'Resource version of the object.' },
    { name: 'responseStatus.code', type: 'number', description: 'HTTP status code of the response.' },
    { name: 'responseStatus.status', type: 'string', description: '`Success` or `Failure`.' },
    { name: 'responseStatus.reason', type: 'string', description: 'Machine-readable reason of a failure, e.g. `Forbidden`.' },
    { name: 'responseStatus.message', type: 'string', description: 'Message of a failure, e.g. an admission webhook’s denial.' },
    { name: 'requestObject.*', type: 'any', description: 'The request body as sent (audit level `Request` and above).' },
    { name: 'responseObject.*', type: 'any', description: 'The response body (audit level `RequestResponse`).' },
    { name: 'requestReceivedTimestamp', type: 'string', description: 'When the API server received the request (RFC 3339).' },
    { name: 'stageTimestamp', type: 'string', description: 'When the stage was reached (RFC 3339).' },
    { name: 'annotations.*', type: 'string', description: 'Annotations of authorizers and admission, e.g. `annotations["authorization.k8s.io/decision"]`.' },
    ...actorFields('the identity that made the request: the impersonator when impersonation was used; the client address for a 401'),
    {
      name: 'effective.key',
      type: 'string',
      description: 'Entity key of the identity whose permissions were used: the impersonated one, else the actor.',
    },
    { name: 'effective.type', type: 'string', description: '`serviceaccount`, `user`, `node` or `anonymous`: type of that identity.' },
    { name: 'effective.name', type: 'string', description: 'Kubernetes username of that identity.' },
    { name: 'effective.namespace', type: 'string', description: 'Namespace of a service-account effective identity.' },
    {
      name: 'bindsAdminRole',
      type: 'boolean',
      description:
        'A binding whose roleRef names a Role or ClusterRole seen (in this stream) granting every verb on every resource: cluster-admin under another name.',
    },
    {
      name: 'object',
      type: 'string',
      description:
        'The object in words, for outputs: `secret payments/db`, `secrets in payments`, `secrets in every namespace`, `ClusterRoleBinding ci-debug`.',
    },
    {
      name: 'exec.command',
      type: 'string',
      description: 'The command of an exec request, its `command=` arguments joined by spaces (decoded from `requestURI`).',
    },
    { name: 'exec.container', type: 'string', description: 'The container named by an exec or attach request.' },
    { name: 'exec.interactive', type: 'boolean', description: 'The exec or attach request asked for a terminal or stdin.' },
    {
      name: 'csr.commonName',
      type: 'string',
      description: 'Common name (the identity) a CertificateSigningRequest asks for, read from its PEM request.',
    },
    { name: 'csr.organizations', type: 'string[]', description: 'Organizations (the groups) it asks for.' },
    { name: 'csr.signerName', type: 'string', description: 'Its signer, e.g. `kubernetes.io/kube-apiserver-client`.' },
    { name: 'csr.usages', type: 'string[]', description: 'Its key usages, e.g. `client auth`.' },
    { name: 'csr.requester', type: 'string', description: 'Who created the CSR (`spec.username`), on approvals.' },
    { name: 'csr.approved', type: 'boolean', description: 'The request sets an `Approved` condition (an approval).' },
    { name: 'csr.selfApproved', type: 'boolean', description: 'The approver is the identity that requested the certificate.' },
    { name: 'decision', type: 'string', description: '`allow` or `forbid` from the authorizer’s annotation; a 403 without it counts as `forbid`; else empty.' },
    { name: 'status', type: 'number', description: 'HTTP status code of the response (`responseStatus.code`).' },
    {
      name: 'dryRun',
      type: 'boolean',
      description: 'A server-side dry run (`dryRun=All` in the URI, `kubectl apply --dry-run=server`, `kubectl diff`): it changed nothing.',
    },
    { name: 'impersonated', type: 'boolean', description: 'The request carried impersonation headers (`impersonatedUser` is set).' },
    { name: 'impersonator', type: 'string', description: 'The real user behind an impersonated request.' },
    { name: 'crossNamespace', type: 'boolean', description: 'A service account acted on a namespace other than its own.' },
    { name: 'clusterWide', type: 'boolean', description: 'The request was not scoped to one namespace (e.g. `GET /api/v1/secrets`).' },
    { name: 'actorPod', type: 'string', description: 'The pod a bound service-account token belongs to (from `user.extra`).' },
    { name: 'authz.decision', type: 'string', description: 'The authorizer’s decision, as `decision`.' },
    { name: 'authz.reason', type: 'string', description: 'The authorizer’s reason annotation (`authorization.k8s.io/reason`).' },
    { name: 'authz.bindingKind', type: 'string', description: '`ClusterRoleBinding` or `RoleBinding` that allowed the request (RBAC).' },
    { name: 'authz.bindingName', type: 'string', description: 'Name of that binding.' },
    { name: 'authz.bindingNamespace', type: 'string', description: 'Namespace of a `RoleBinding`.' },
    { name: 'authz.roleKind', type: 'string', description: '`ClusterRole` or `Role` the binding grants.' },
    { name: 'authz.roleName', type: 'string', description: 'Name of that role.' },
    { name: 'authz.subjectKind', type: 'string', description: 'Kind of the binding subject that matched: `User`, `Group`, `ServiceAccount`.' },
    { name: 'authz.subject', type: 'string', description: 'Name of that subject.' },
    { name: 'admission.denied', type: 'boolean', description: 'Admission (not authorization) refused the request.' },
    {
      name: 'admission.engine',
      type: 'string',
      description: '`gatekeeper`, `kyverno`, `pod-security`, `admission-policy` (a ValidatingAdmissionPolicy), `webhook`, or `none` when not denied.',
    },
    { name: 'admission.webhook', type: 'string', description: 'Name of the webhook that denied.' },
    { name: 'admission.policies', type: 'string[]', description: 'Policies or constraints named in the denial.' },
    { name: 'admission.message', type: 'string', description: 'The denial message, bounded.' },
    { name: 'admission.violations', type: 'string', description: 'Pod Security audit violations on an allowed request.' },
    { name: 'podSpec.*', type: 'any', description: 'The pod spec of the Pod or workload template the request (else the response) carries.' },
    { name: 'pod.privileged', type: 'boolean', description: 'A container of that pod spec is privileged.' },
    { name: 'pod.allowPrivilegeEscalation', type: 'boolean', description: 'A container sets `allowPrivilegeEscalation: true`.' },
    { name: 'pod.hostNetwork', type: 'boolean', description: 'The pod uses the host network.' },
    { name: 'pod.hostPID', type: 'boolean', description: 'The pod uses the host PID namespace.' },
    { name: 'pod.hostIPC', type: 'boolean', description: 'The pod uses the host IPC namespace.' },
    { name: 'pod.hostPaths', type: 'string[]', description: 'Host paths mounted through `hostPath` volumes.' },
    { name: 'pod.addedCapabilities', type: 'string[]', description: 'Linux capabilities added by any container.' },
    { name: 'pod.serviceAccountName', type: 'string', description: 'Service account the pod runs as, when set.' },
    { name: 'pod.images', type: 'string[]', description: 'Images of every container, init and ephemeral container.' },
    {
      name: 'pod.risks',
      type: 'string[]',
      description: 'What breaks isolation, in words (`a privileged container`, `added capabilities SYS_ADMIN`, `the host PID namespace`…), for outputs.',
    },
  ],
};

function eventTime(ev: AuditEvent, fallback: number): number {
  for (const s of [ev.stageTimestamp, ev.requestReceivedTimestamp, ev.timestamp]) {
    if (s) {
      const t = parseTimestamp(s);
      if (Number.isFinite(t)) return t;
    }
  }
  return fallback;
}

function outcomeOf(decision: string, status: number | undefined): Outcome {
  if (decision === 'forbid' || status === 401 || status === 403) return 'denied';
  if (status !== undefined) return status >= 400 ? 'denied' : 'allowed';
  if (decision === 'allow') return 'allowed';
  return 'unknown';
}

function excerptOf(ev: AuditEvent): Record<string, unknown> {
  return boundedRedactedCopy({
    auditID: ev.auditID,
    stage: ev.stage,
    verb: ev.verb,
    requestURI: ev.requestURI,
    user: ev.user && { username: ev.user.username, groups: ev.user.groups },
    impersonatedUser: ev.impersonatedUser && { username: ev.impersonatedUser.username, groups: ev.impersonatedUser.groups },
    sourceIPs: ev.sourceIPs,
    userAgent: ev.userAgent,
    objectRef: ev.objectRef,
    responseStatus: ev.responseStatus && { code: ev.responseStatus.code, reason: ev.responseStatus.reason, message: ev.responseStatus.message },
    annotations: ev.annotations,
    stageTimestamp: ev.stageTimestamp ?? ev.timestamp,
  }) as Record<string, unknown>;
}

/** Normalizes one validated audit event. `observedTime` is when kubevigil received it. */
export function normalizeAuditEvent(ev: AuditEvent, observedTime: number): AuditSourceEvent {
  const resource = ev.objectRef?.resource;
  if (resource === 'clusterroles' || resource === 'roles') learnRole(ev);
  return new AuditSourceEvent(ev, observedTime);
}

/** An audit event as detection sees it; the per-event cost is one object until a rule matches. */
export class AuditSourceEvent implements SourceEvent {
  readonly source = 'k8s-audit' as const;
  readonly derived: AuditDerived;
  readonly final: boolean;
  private _details?: EventDetails;

  constructor(
    readonly raw: AuditEvent,
    readonly observedTime: number,
  ) {
    this.final = raw.stage !== 'RequestReceived';
    this.derived = new AuditDerived(raw);
  }

  get key(): string {
    return `${this.raw.auditID}/${this.raw.stage}`;
  }

  get requestKey(): string {
    return this.raw.auditID ? this.raw.auditID : this.key;
  }

  details(): EventDetails {
    return (this._details ??= auditDetails(this.raw, this.derived, this.observedTime));
  }
}

function auditDetails(ev: AuditEvent, derived: AuditDerived, observedTime: number): EventDetails {
  const { actor, status, decision } = derived;
  const effective = ev.impersonatedUser ?? ev.user;
  const ref = ev.objectRef;
  const name = ref?.name ?? metadataName(ev.responseObject) ?? metadataName(ev.requestObject);
  const target: Target = {};
  if (ref?.namespace) target.namespace = ref.namespace;
  if (ref?.resource) target.resource = ref.resource;
  if (ref?.subresource) target.subresource = ref.subresource;
  if (ref?.apiGroup) target.apiGroup = ref.apiGroup;
  if (name) target.name = name;
  target.verb = ev.verb;

  const entities: string[] = [];
  const attributes: Record<string, string> = {};
  if (ref?.namespace) entities.push(nsKey(ref.namespace));
  if (name && ref?.namespace && ref.resource === 'pods') entities.push(podKey(ref.namespace, name));
  if (name && ref?.namespace && ref.resource === 'secrets') entities.push(secretKey(ref.namespace, name));
  if (ev.sourceIPs?.[0]) entities.push(ipKey(ev.sourceIPs[0]));
  if (ev.impersonatedUser && ev.user.username) {
    // The actor is the impersonator; the identity it wore is context.
    entities.push(derived.effective.key);
    attributes.impersonator = ev.user.username;
    if (ev.impersonatedUser.username) attributes.impersonated = ev.impersonatedUser.username;
  }
  const pod = firstExtra(effective, 'authentication.kubernetes.io/pod-name');
  if (pod && actor.namespace) {
    entities.push(podKey(actor.namespace, pod));
    attributes.actorPod = `${actor.namespace}/${pod}`;
  }
  const node = firstExtra(effective, 'authentication.kubernetes.io/node-name');
  if (node) entities.push(nodeKey(node));
  const a = derived.authz;
  if (decision === 'allow' && a.bindingKind && a.bindingName) {
    entities.push(bindingKey(a.bindingKind, a.bindingName, a.bindingNamespace));
    attributes.binding = a.bindingNamespace ? `${a.bindingKind}/${a.bindingNamespace}/${a.bindingName}` : `${a.bindingKind}/${a.bindingName}`;
    if (a.roleKind && a.roleName) {
      const roleNs = a.roleKind === 'Role' ? a.bindingNamespace : undefined;
      entities.push(roleKey(a.roleKind, a.roleName, roleNs));
      attributes.role = roleNs ? `${a.roleKind}/${roleNs}/${a.roleName}` : `${a.roleKind}/${a.roleName}`;
    }
  }
  const adm = derived.admission;
  if (adm.denied) {
    attributes.admissionEngine = adm.engine;
    attributes.admissionPolicies = adm.policies.join(',');
    for (const p of adm.policies) entities.push(policyKey(adm.engine, p));
  }
  if (ev.annotations?.['audit.k8s.io/truncated'] === 'true') attributes.truncated = 'true';
  const exec = derived.exec;
  // Copies, cut and redacted: a slice would keep an attacker's megabyte-long original alive.
  if (exec?.command) attributes.command = redactText(truncate(exec.command, 512));
  if (ev.userAgent) attributes.userAgent = redactText(truncate(ev.userAgent, 256));
  if (ev.sourceIPs?.[0]) attributes.sourceIP = truncate(ev.sourceIPs[0], 64);
  if (actor.type === 'anonymous') entities.push(userKey('system:anonymous'));
  let excerpt: Record<string, unknown> | undefined;
  return {
    time: eventTime(ev, observedTime),
    actor,
    target,
    outcome: outcomeOf(decision, status),
    entities,
    attributes,
    // Built on first read: info signals (the activity trail) carry none.
    get excerpt() {
      return (excerpt ??= excerptOf(ev));
    },
  };
}

function metadataName(obj: unknown): string | undefined {
  if (!isObj(obj) || !isObj(obj.metadata)) return undefined;
  const n = obj.metadata.name;
  return typeof n === 'string' && n !== '' ? n : undefined;
}
