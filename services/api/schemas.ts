/**
 * The API's wire format, declared once with zod: the OpenAPI document's component schemas are
 * generated from these (openapi.ts), the handlers validate what they take with them, the tests
 * validate every real response against the generated document, and the functions below turn the
 * engine's objects (epoch milliseconds) into what the API sends (RFC 3339 strings in UTC, as
 * Kubernetes and Alertmanager do).
 */
import { z } from 'zod';
import { INCIDENT_STATUSES, type Incident as EngineIncident } from '../../correlator/incident.js';
import { SEVERITIES } from '../../correlator/severity.js';
import { SIGNAL_KINDS } from '../../correlator/signal-kinds.js';
import { describeValue } from '../../platform/describe.js';
import { SOURCE_LIST } from '../sources.js';
import type { Signal as EngineSignal } from '../../correlator/signal.js';
import { matcherNameProblem, matchesEverything, regexProblem, SILENCE_LIMITS, silenceState, type Silence as EngineSilence } from '../../correlator/silences.js';

/** Schemas that become `#/components/schemas/<id>` in the OpenAPI document. */
export const registry = z.registry<{ id: string; description?: string }>();

const tuple = <T extends string>(values: readonly T[]) => values as unknown as [T, ...T[]];

const Timestamp = z.iso.datetime().describe('RFC 3339 time in UTC, e.g. 2026-11-29T12:00:00.000Z');
const Strings = z.array(z.string());

export const Severity = z.enum(tuple(SEVERITIES)).register(registry, { id: 'Severity', description: 'info < low < medium < high < critical' });
export const Status = z.enum(tuple(INCIDENT_STATUSES)).register(registry, { id: 'Status', description: 'open → acknowledged → resolved' });
const Source = z.enum(tuple(SOURCE_LIST.map((s) => s.name)));
const Outcome = z.enum(['allowed', 'denied', 'unknown']);
const Kind = z.enum(tuple(Object.keys(SIGNAL_KINDS)));

export const Problem = z
  .object({
    type: z.string().optional(),
    title: z.string(),
    status: z.int(),
    detail: z.string(),
    field: z.string().optional().describe('the input field at fault, when one is'),
  })
  .register(registry, { id: 'Problem', description: 'An RFC 9457 problem: what is wrong and how to fix it' });

export const ReloadResult = z
  .object({ status: z.literal('reloaded'), reloaded: Strings.describe('what was reloaded (rules, …)') })
  .register(registry, { id: 'ReloadResult', description: 'A reload that applied' });

export const ReloadProblem = z
  .object({
    type: z.string().optional(),
    title: z.string(),
    status: z.int(),
    detail: z.string(),
    problems: z.array(
      z.object({
        reloadable: z.string(),
        file: z.string(),
        item: z.string().optional(),
        field: z.string(),
        message: z.string(),
        text: z.string().describe('file: item: field: message, as kubevigil rules lint prints it'),
      }),
    ),
  })
  .register(registry, { id: 'ReloadProblem', description: 'A reload refused: every problem found; the running configuration stays' });

export const Actor = z
  .object({
    key: z.string().meta({ examples: ['sa:frontend/frontend'] }),
    type: z.enum(['serviceaccount', 'user', 'node', 'anonymous', 'pod', 'ip']),
    name: z.string(),
    namespace: z.string().optional(),
  })
  .register(registry, { id: 'Actor', description: 'The identity that acted, normalized across sources' });

export const Target = z
  .object({ namespace: z.string(), resource: z.string(), subresource: z.string(), apiGroup: z.string(), name: z.string(), verb: z.string() })
  .partial()
  .register(registry, { id: 'Target', description: 'What the action was aimed at' });

const Attributes = z.record(z.string(), z.string());

export const Signal = z
  .object({
    id: z.string(),
    source: Source,
    kind: Kind,
    severity: Severity,
    title: z.string(),
    eventTime: Timestamp,
    observedTime: Timestamp,
    actor: Actor,
    target: Target,
    outcome: Outcome,
    entities: Strings,
    mitre: Strings,
    rule: z.object({ id: z.string(), title: z.string() }),
    matched: z.array(z.object({ field: z.string(), op: z.string(), expected: z.unknown().optional(), actual: z.unknown().optional() })),
    attributes: Attributes,
    excerpt: z.record(z.string(), z.unknown()),
    cluster: z.string().optional().describe('the cluster it came from (KUBEVIGIL_CLUSTER_NAME); absent when not set'),
  })
  .register(registry, { id: 'Signal', description: 'One suspicious (or, for info, noteworthy) event and the rule that matched it' });

const RbacRule = z
  .object({
    apiGroups: Strings.optional(),
    resources: Strings.optional(),
    resourceNames: Strings.optional(),
    nonResourceURLs: Strings.optional(),
    verbs: Strings,
  })
  .register(registry, { id: 'RbacRule', description: 'A policy rule of a Role or ClusterRole, as the cluster holds it' });

const RbacSubject = z
  .object({ kind: z.enum(['User', 'Group', 'ServiceAccount']), name: z.string(), namespace: z.string().optional() })
  .register(registry, { id: 'RbacSubject', description: 'A subject of a RoleBinding or ClusterRoleBinding' });

export const Remediation = z
  .object({
    kind: z.string(),
    title: z.string(),
    rationale: z.string(),
    risk: z.string(),
    commands: Strings,
    manifests: z.array(z.string().describe('a complete YAML manifest')),
    basis: z
      .enum(['audit-data', 'cluster-inventory'])
      .optional()
      .describe('what the names and facts rest on: the audit data alone, or checked against the live cluster (the cluster inventory)'),
    roleDiff: z
      .object({
        kind: z.enum(['Role', 'ClusterRole']),
        name: z.string(),
        namespace: z.string().optional(),
        rules: z.array(
          z.object({
            rule: RbacRule,
            stays: z.array(RbacRule).describe('what stays of the rule: itself, narrower rules, or nothing'),
            removed: z.string().optional().describe('why what goes goes; absent when the whole rule stays'),
          }),
        ),
      })
      .optional()
      .describe('for a role rewritten or replaced: its rules as the cluster has them, and what stays of each (cluster inventory)'),
  })
  .register(registry, { id: 'Remediation', description: 'A suggested fix; nothing is applied without a person' });

const BindingRef = z.object({
  kind: z.enum(['ClusterRoleBinding', 'RoleBinding']),
  name: z.string(),
  namespace: z.string().optional().describe('a RoleBinding’s namespace; absent for a ClusterRoleBinding'),
  roleKind: z.string().optional(),
  roleName: z.string().optional(),
});

const BindingInCluster = z
  .object({
    exists: z.boolean().describe('false when the binding no longer exists'),
    roleKind: z.enum(['Role', 'ClusterRole']).optional(),
    roleName: z.string().optional(),
    roleExists: z.boolean().optional().describe('false when the role it names does not exist: it grants nothing'),
    grantingRules: z
      .array(RbacRule)
      .describe('the rules of its role that granted what was done through it (for an escalation’s enabler: the write, and bind/escalate/wildcards)'),
    actorSubjects: z.array(RbacSubject).describe('how the identity that used it is a subject: itself, or a group it belongs to'),
    otherSubjects: z.array(RbacSubject).describe('every other subject: who else loses the role if it is deleted'),
  })
  .register(registry, { id: 'BindingInCluster', description: 'A binding the root cause names, as the live cluster has it (cluster inventory)' });

const WorkloadOwner = z.object({
  kind: z.enum(['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob', 'ReplicaSet', 'ReplicationController']),
  namespace: z.string(),
  name: z.string(),
});

export const RootCause = z
  .object({
    summary: z.string(),
    confidence: z.number().min(0).max(1),
    actor: z.string().describe('the identity that acted; with impersonation, the impersonator'),
    evidence: z.array(
      z.object({
        type: z.enum(['actor', 'enabler', 'escalation', 'credential', 'first-signal', 'novelty', 'blocked-by', 'missing-control', 'mesh']),
        entity: z.string().optional(),
        detail: z.string(),
        signalIds: Strings,
      }),
    ),
    enablingBinding: BindingRef.optional().describe(
      'the binding that enabled the attack (after an escalation, the one that allowed the actor to write a binding)',
    ),
    escalation: BindingRef.optional().describe('the binding the actor created or changed during the incident and then used'),
    credentialSource: z
      .object({
        detail: z.string().meta({ examples: ['token used from 203.0.113.7 with kubectl/v1.31.0'] }),
        sourceIP: z.string().optional(),
        userAgent: z.string().optional(),
      })
      .optional()
      .describe("where the actor's credential was used from"),
    impersonated: Strings.optional().describe('the identities the actor impersonated (Kubernetes usernames)'),
    enablingBindingInCluster: BindingInCluster.optional().describe('the enabling binding as the live cluster has it (cluster inventory)'),
    escalationInCluster: BindingInCluster.optional().describe('the escalation binding as the live cluster has it (cluster inventory)'),
    workloads: z
      .array(
        z.object({
          pod: z.string().describe('ns/name of the pod'),
          workload: WorkloadOwner.describe('its top owner: the Deployment behind its ReplicaSet, the CronJob behind its Job'),
          actorPod: z.boolean().describe("true for the actor's own pod, false for a pod it acted on"),
        }),
      )
      .optional()
      .describe('the workloads that own the pods the incident names (cluster inventory)'),
  })
  .register(registry, { id: 'RootCause', description: 'Which identity acted, what enabled it, the evidence and how sure the engine is' });

const TimelineEntry = z
  .object({
    signalId: z.string(),
    time: Timestamp,
    actor: z.string(),
    source: Source,
    kind: Kind,
    severity: Severity,
    title: z.string(),
    outcome: Outcome,
    ruleId: z.string(),
    target: Target,
    attributes: Attributes,
  })
  .register(registry, { id: 'TimelineEntry', description: "One signal as the incident's timeline keeps it" });

const incidentCore = {
  id: z.string().regex(/^inc_[0-9a-f]{20}$/),
  title: z.string(),
  status: Status,
  severity: Severity,
  actor: Actor,
  entities: Strings,
  blastRadius: z.object({ namespaces: Strings, workloads: Strings, secrets: Strings, bindings: Strings, policies: Strings }),
  firstSeen: Timestamp,
  lastSeen: Timestamp,
  createdAt: Timestamp,
  updatedAt: Timestamp,
  version: z.int(),
  signalCount: z.int(),
  countsByKind: z.record(z.string(), z.int()),
  sources: z.array(Source),
  correlations: z.array(z.object({ ruleId: z.string(), title: z.string(), signalIds: Strings, time: Timestamp })),
  rules: Strings,
  mitre: Strings,
  rootCause: RootCause,
  resolvedAt: Timestamp.optional(),
  resolution: z.enum(['manual', 'quiet', 'lifetime', 'merged', 'evicted']).optional(),
  mergedInto: z.string().optional(),
  assignee: z.string().optional().describe('who is working on it (Slack "Assign to me": slack:<username> (<user id>))'),
  flood: z
    .object({
      pattern: z.string().describe('the detection rule or correlation id every actor of the flood matched'),
      actors: z.int().describe('distinct actors that matched it in the window'),
      sample: Strings.describe('a few of the actors, first seen first'),
    })
    .optional()
    .describe('set on a flood incident: many actors, one pattern, one incident (see KUBEVIGIL_FLOOD_ACTORS)'),
  maxSignalSeverity: Severity,
  silenced: z
    .array(
      z.object({
        silenceId: z.string(),
        signalIds: Strings.describe('the first 50 signals it hid (stored with the incident’s signals)'),
        count: z.int().describe('every signal it hid'),
      }),
    )
    .optional()
    .describe('signals of this incident’s actors that silences hid: they did not join the timeline, escalate or notify (at most 20 silences)'),
  cluster: z.string().optional().describe('the cluster of the signals that opened it (KUBEVIGIL_CLUSTER_NAME); absent when not set'),
};

export const Incident = z
  .object({
    ...incidentCore,
    timeline: z.array(TimelineEntry),
    remediations: z.array(Remediation),
    notes: z.array(z.object({ time: Timestamp, status: Status, note: z.string(), by: z.string().optional() })),
  })
  .register(registry, { id: 'Incident', description: 'One attack or failure: its signals, root cause and fixes' });

export const IncidentSummary = z
  .object({ ...incidentCore, remediationCount: z.int() })
  .register(registry, { id: 'IncidentSummary', description: 'An incident as lists show it: without timeline, remediations and notes' });

export const IncidentPage = z
  .object({ items: z.array(IncidentSummary), nextCursor: z.string().nullable().describe('pass as `cursor` for the next page; null on the last page') })
  .register(registry, { id: 'IncidentPage' });

export const SignalPage = z.object({ items: z.array(Signal) }).register(registry, { id: 'SignalPage' });

export const IncidentPatch = z
  .strictObject(
    {
      status: z.enum(['acknowledged', 'resolved'], { error: 'must be "acknowledged" or "resolved"' }),
      note: z.string({ error: 'must be a string' }).max(2000, { error: 'must be at most 2000 characters' }).optional(),
      by: z.string({ error: 'must be a string' }).max(200, { error: 'must be at most 200 characters' }).optional(),
    },
    {
      error: (iss) =>
        iss.code === 'unrecognized_keys'
          ? `unknown field(s) ${iss.keys.join(', ')}; send status, note and optionally by`
          : 'send a JSON object such as {"status": "acknowledged", "note": "looking"}',
    },
  )
  .register(registry, { id: 'IncidentPatch', description: 'Acknowledge or resolve, with a note' });

export const IngestResult = z
  .object({
    accepted: z.int(),
    duplicates: z.int(),
    invalid: z.int(),
    signals: z.int(),
    errors: z
      .array(
        z.object({
          index: z.int(),
          auditID: z.string().optional(),
          fingerprint: z.string().optional(),
          uuid: z.string().optional(),
          rule: z.string().optional(),
          field: z.string().optional(),
          reason: z.string(),
        }),
      )
      .optional(),
    warnings: Strings.optional(),
  })
  .register(registry, { id: 'IngestResult', description: 'What was taken from a batch; invalid items are reported, not refused' });

export const OtlpResponse = z
  .object({ partialSuccess: z.object({ rejectedSpans: z.string(), errorMessage: z.string() }).optional() })
  .register(registry, { id: 'ExportTraceServiceResponse', description: 'OTLP/HTTP response; partialSuccess when spans were rejected' });

export const RpcStatus = z
  .object({ code: z.int(), message: z.string(), details: z.array(z.unknown()).optional() })
  .register(registry, { id: 'RpcStatus', description: 'google.rpc.Status, the OTLP error body' });

const BudgetUse = z.object({ used: z.int(), max: z.int() });

const InventoryState = z
  .object({
    enabled: z.boolean(),
    synced: z.boolean().meta({ description: 'Every watched resource has been listed once; until then identities resolve from the audit stream alone.' }),
    pending: z.array(z.object({ resource: z.string(), error: z.string().optional() })),
  })
  .meta({ description: 'The cluster inventory (KUBEVIGIL_INVENTORY), when one is configured. It never makes kubevigil unready.' });

const Budgets = z
  .object({
    openIncidents: BudgetUse.meta({ description: 'open incidents held (KUBEVIGIL_MAX_OPEN_INCIDENTS)' }),
    windowEntries: BudgetUse.meta({ description: 'correlation window entries held (KUBEVIGIL_MAX_WINDOW_ENTRIES)' }),
    prologueSignals: BudgetUse.meta({ description: "signals kept as actors' prologues" }),
    floodIncidents: z.int().meta({ description: 'open flood incidents (many actors, one pattern)' }),
  })
  .meta({
    description:
      'The correlator’s count budgets in use (processes with the correlator role). A full budget never makes kubevigil unready: the least severe, least recent state is evicted and counted in kubevigil_dropped_total.',
  });

export const Health = z
  .object({
    status: z.enum(['ok', 'ready']),
    inventory: InventoryState.optional(),
    budget: Budgets.optional(),
  })
  .register(registry, { id: 'Health' });

const Rate = z.number().min(0).meta({ description: 'per second, over the last minute' });

export const SystemStatus = z
  .object({
    status: z.enum(['ready', 'not-ready']).meta({ description: 'as /readyz: not-ready while starting or draining, or when Kafka or Redis cannot be reached' }),
    scope: z.literal('process').meta({
      description:
        'every value (rates, totals, bus lag, budgets, stream clients) is the answering process’s own; in distributed mode ingest and correlation run in other pods — read their /metrics',
    }),
    version: z.string(),
    mode: z.enum(['embedded', 'distributed']).meta({ description: 'embedded: every role in one process; distributed: Kafka between processes' }),
    roles: z.array(z.enum(['ingest', 'correlator', 'notifier', 'api'])).meta({ description: 'the roles of the process that answered' }),
    cluster: z.string().optional().meta({ description: 'KUBEVIGIL_CLUSTER_NAME, when set' }),
    uptimeSeconds: z.int().min(0),
    ingest: z
      .array(
        z.object({
          source: Source,
          eventsPerSecond: Rate,
          eventsTotal: z.number().min(0).meta({ description: 'events received since start, every outcome (kubevigil_ingest_events_total)' }),
          rejectedTotal: z.number().min(0).meta({ description: 'requests turned away to protect the process (kubevigil_ingest_rejected_total)' }),
        }),
      )
      .meta({ description: 'every source, in this process (0 where this process has no ingest role)' }),
    signalsPerSecond: Rate,
    incidentsOpen: z.int().min(0).optional().meta({ description: 'open and acknowledged incidents the correlator holds (processes with the correlator role)' }),
    bus: z.object({
      kind: z.enum(['memory', 'kafka']),
      lagMessages: z.number().min(0).optional().meta({ description: 'messages the consumers of this process are behind (kubevigil_bus_lag_messages, summed)' }),
    }),
    inventory: InventoryState.optional(),
    budget: Budgets.optional(),
    stream: z.object({ clients: z.int().min(0).meta({ description: 'event stream listeners connected to this process' }) }),
  })
  .register(registry, { id: 'SystemStatus', description: 'What the console’s system view shows, for the process that answers' });

export const RuleList = z
  .object({
    items: z.array(
      z.object({
        type: z.literal('detection'),
        id: z.string(),
        title: z.string(),
        description: z.string(),
        source: z.string(),
        severity: Severity,
        kind: z.string(),
        mitre: Strings,
        file: z.string(),
      }),
    ),
    correlations: z.array(
      z.object({
        type: z.string(),
        id: z.string(),
        title: z.string(),
        description: z.string(),
        rules: Strings,
        timespanMs: z.int(),
        severity: Severity,
        mitre: Strings,
        file: z.string(),
      }),
    ),
  })
  .register(registry, { id: 'RuleList', description: 'The loaded detection and correlation rules' });

// Silences (Alertmanager API v2 semantics; correlator/silences.ts matches them).

const SilenceTime = z.iso.datetime({ offset: true, error: 'must be an RFC 3339 time such as 2026-12-06T15:00:00Z' });

const SilenceMatcherIn = z
  .strictObject(
    {
      name: z
        .string({ error: 'must be a string' })
        .min(1, { error: 'must not be empty' })
        .max(SILENCE_LIMITS.name, { error: `must be at most ${SILENCE_LIMITS.name} characters` })
        .superRefine((name, ctx) => {
          const problem = matcherNameProblem(name);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        }),
      value: z.string({ error: 'must be a string' }).max(SILENCE_LIMITS.value, { error: `must be at most ${SILENCE_LIMITS.value} characters` }),
      isRegex: z.boolean({ error: 'must be true or false' }),
      isEqual: z.boolean({ error: 'must be true or false' }).optional().describe('false for != and !~ (default true)'),
    },
    {
      error: (iss) =>
        iss.code === 'unrecognized_keys' ? `unknown field(s) ${iss.keys.join(', ')}; a matcher has name, value, isRegex and isEqual` : undefined,
    },
  )
  .superRefine((m, ctx) => {
    const problem = m.isRegex ? regexProblem(m.value) : undefined;
    if (problem) ctx.addIssue({ code: 'custom', path: ['value'], message: `is not a valid regular expression (${problem}); it is anchored as ^(?:value)$` });
  });

export const PostableSilence = z
  .strictObject(
    {
      matchers: z
        .array(SilenceMatcherIn, { error: 'must be a list of matchers such as {"name": "actor", "value": "sa:ci/deployer", "isRegex": false}' })
        .min(1, { error: 'must hold at least one matcher' })
        .max(SILENCE_LIMITS.matchers, { error: `must hold at most ${SILENCE_LIMITS.matchers} matchers` }),
      startsAt: SilenceTime.optional().describe('default: now'),
      endsAt: SilenceTime,
      createdBy: z
        .string({ error: 'must be a string' })
        .min(1, { error: 'must name who creates the silence' })
        .max(SILENCE_LIMITS.createdBy, { error: `must be at most ${SILENCE_LIMITS.createdBy} characters` }),
      comment: z
        .string({ error: 'must be a string' })
        .min(1, { error: 'must say why the signals are silenced' })
        .max(SILENCE_LIMITS.comment, { error: `must be at most ${SILENCE_LIMITS.comment} characters` }),
    },
    {
      error: (iss) =>
        iss.code === 'unrecognized_keys'
          ? `unknown field(s) ${iss.keys.join(', ')}; send matchers, startsAt, endsAt, createdBy and comment`
          : iss.code === 'invalid_type'
            ? 'send a JSON object with matchers, endsAt, createdBy and comment'
            : undefined,
    },
  )
  .superRefine((s, ctx) => {
    const starts = s.startsAt === undefined ? Date.now() : Date.parse(s.startsAt);
    if (Date.parse(s.endsAt) <= starts)
      ctx.addIssue({ code: 'custom', path: ['endsAt'], message: 'must be after startsAt (and after now when startsAt is omitted)' });
    // A matcher with a bad regex is reported on its own (refinements run past other issues).
    if (s.matchers.some((m) => typeof m?.value !== 'string' || (m.isRegex && regexProblem(m.value)))) return;
    if (s.matchers.length && matchesEverything(s.matchers.map((m) => ({ ...m, isEqual: m.isEqual ?? true }))))
      ctx.addIssue({
        code: 'custom',
        path: ['matchers'],
        message: 'would silence every signal: each matcher also matches an empty value; add one that requires a value, such as actor="sa:ci/deployer"',
      });
  })
  .register(registry, { id: 'PostableSilence', description: 'A new silence: signals every matcher matches, between startsAt and endsAt' });

export const SilenceMatcherSchema = z
  .object({ name: z.string(), value: z.string(), isRegex: z.boolean(), isEqual: z.boolean() })
  .register(registry, { id: 'SilenceMatcher', description: 'name is actor, rule, kind, namespace, source, severity, cluster or attributes.<name>' });

export const GettableSilence = z
  .object({
    id: z.string(),
    status: z.object({ state: z.enum(['active', 'pending', 'expired']) }),
    updatedAt: Timestamp,
    matchers: z.array(SilenceMatcherSchema),
    startsAt: Timestamp,
    endsAt: Timestamp,
    createdBy: z.string(),
    comment: z.string(),
    source: z.enum(['api', 'file']).describe('file: from KUBEVIGIL_SILENCES_FILE (cannot be expired through the API)'),
    file: z.string().optional().describe('the silences file, for source file'),
  })
  .register(registry, { id: 'GettableSilence', description: 'A silence and where it stands now' });

export const SilenceList = z.object({ items: z.array(GettableSilence) }).register(registry, { id: 'SilenceList' });

export const SilenceCreated = z.object({ silenceID: z.string() }).register(registry, { id: 'SilenceCreated' });

export const BenignRequest = z
  .strictObject(
    {
      duration: z
        .string({ error: 'must be a duration such as 7d, 12h or 30m' })
        .regex(/^[1-9][0-9]{0,5}(m|h|d)$/, { error: 'must be a duration such as 7d, 12h or 30m (at most 365d)' })
        .optional()
        .describe('how long the silence lasts (default 7d)'),
      createdBy: z.string({ error: 'must be a string' }).max(SILENCE_LIMITS.createdBy).optional(),
      comment: z
        .string({ error: 'must be a string' })
        .max(SILENCE_LIMITS.comment - 200, { error: 'must be at most 800 characters' })
        .optional(),
    },
    { error: (iss) => (iss.code === 'unrecognized_keys' ? `unknown field(s) ${iss.keys.join(', ')}; send duration, createdBy and comment` : undefined) },
  )
  .register(registry, { id: 'BenignRequest', description: 'Mark an incident benign: silence its actor and rules for a while' });

/** A silence as the API sends it. */
export function apiSilence(s: EngineSilence, now: number): z.infer<typeof GettableSilence> {
  return {
    id: s.id,
    status: { state: silenceState(s, now) },
    updatedAt: rfc3339(s.updatedAt),
    matchers: s.matchers,
    startsAt: rfc3339(s.startsAt),
    endsAt: rfc3339(s.endsAt),
    createdBy: s.createdBy,
    comment: s.comment,
    source: s.file === undefined ? 'api' : 'file',
    ...(s.file === undefined ? {} : { file: s.file }),
  };
}

/** One line naming each problem of a failed zod parse, field first: `status (\"x\"): must be …; note: …`. */
export function describeIssues(error: z.ZodError, input: unknown): string {
  return error.issues
    .map((i) => {
      if (i.path.length === 0) return i.message;
      const value = i.path.reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined), input);
      // The value is the client's: quoted short, never serialized whole (deep nesting, huge strings).
      const shown = value === undefined ? '' : ` (${describeValue(value, 80)})`;
      return `${i.path.join('.')}${shown} ${i.message}`;
    })
    .join('; ');
}

/** An RFC 3339 UTC string for epoch milliseconds; a time outside JavaScript's range becomes the epoch rather than failing the response. */
export function rfc3339(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? new Date(0).toISOString() : d.toISOString();
}

/** A signal as the API sends it. */
export function apiSignal(s: EngineSignal): z.infer<typeof Signal> {
  return { ...s, eventTime: rfc3339(s.eventTime), observedTime: rfc3339(s.observedTime) } as z.infer<typeof Signal>;
}

function apiCore(i: EngineIncident) {
  return {
    firstSeen: rfc3339(i.firstSeen),
    lastSeen: rfc3339(i.lastSeen),
    createdAt: rfc3339(i.createdAt),
    updatedAt: rfc3339(i.updatedAt),
    correlations: i.correlations.map((c) => ({ ...c, time: rfc3339(c.time) })),
    ...(i.resolvedAt === undefined ? {} : { resolvedAt: rfc3339(i.resolvedAt) }),
  };
}

/** An incident as the API, the event stream and webhooks send it. */
export function apiIncident(i: EngineIncident): z.infer<typeof Incident> {
  return {
    ...i,
    ...apiCore(i),
    timeline: i.timeline.map((e) => ({ ...e, time: rfc3339(e.time) })),
    notes: i.notes.map((n) => ({ ...n, time: rfc3339(n.time) })),
  } as z.infer<typeof Incident>;
}

/** An incident as lists and the event stream send it: without the long parts. */
export function apiIncidentSummary(i: EngineIncident): z.infer<typeof IncidentSummary> {
  const { timeline: _t, remediations, notes: _n, ...rest } = i;
  return { ...rest, ...apiCore(i), remediationCount: remediations.length } as z.infer<typeof IncidentSummary>;
}
