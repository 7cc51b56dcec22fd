/**
 * No placeholder reaches a reader: root cause, incident titles and every planner's titles,
 * rationales, risks and commands are run over signals with missing fields (no namespace, no name,
 * half a binding, actors without names, titles whose template found nothing) and must never show
 * `?` standing for a value, `undefined`, `null`, `NaN` or `[object Object]`.
 */
import { describe, expect, it } from 'vitest';
import { CorrelationEngine } from './correlation/engine.js';
import type { Actor } from './entities.js';
import type { Incident, Remediation, RootCause, TimelineEntry } from './incident.js';
import { timelineEntry } from './incident.js';
import { IncidentManager } from './incidents.js';
import type { PlanContext } from './remediation/context.js';
import { planRemediations } from './remediation/planner.js';
import { PLANNERS } from './remediation/planners/index.js';
import { analyzeRootCause } from './root-cause.js';
import { SIGNAL_KINDS, type SignalKind } from './signal-kinds.js';
import type { Outcome, Signal, Target } from './signal.js';

// A `?` standing alone or for a path segment (`kube-system/?`, `for ? ?`, `(role ?)`), not a question mark after a word.
const QUESTION = /(^|[\s/(:=,'"[])\?(?=$|[\s/),.;:'"\]])/;
const WORDS = /\bundefined\b|\bnull\b|\bNaN\b|\[object Object\]/;

function expectClean(where: string, text: string | undefined, opts: { nullOk?: boolean } = {}): void {
  if (text === undefined) return;
  expect(QUESTION.test(text), `${where}: ${text}`).toBe(false);
  const words = opts.nullOk ? /\bundefined\b|\bNaN\b|\[object Object\]/ : WORDS;
  expect(words.test(text), `${where}: ${text}`).toBe(false);
}

function expectCleanRootCause(where: string, rc: RootCause): void {
  expectClean(`${where} summary`, rc.summary);
  for (const e of rc.evidence) {
    expectClean(`${where} evidence ${e.type}`, e.detail);
    expectClean(`${where} evidence entity`, e.entity);
  }
  expectClean(`${where} credential`, rc.credentialSource?.detail);
  for (const [k, v] of Object.entries(rc)) if (v === undefined || v === null) throw new Error(`${where}: rootCause.${k} is ${String(v)}`);
}

function expectCleanPlan(where: string, plan: Remediation[]): void {
  for (const r of plan) {
    expectClean(`${where} ${r.kind} title`, r.title);
    expectClean(`${where} ${r.kind} rationale`, r.rationale);
    expectClean(`${where} ${r.kind} risk`, r.risk);
    for (const c of r.commands) expectClean(`${where} ${r.kind} command`, c);
    // YAML may say null on purpose (a Kyverno pattern); an undefined or an object never.
    for (const m of r.manifests) expectClean(`${where} ${r.kind} manifest`, m, { nullOk: true });
  }
}

const ACTORS: Actor[] = [
  { key: 'sa:ci/ci-deployer', type: 'serviceaccount', name: 'system:serviceaccount:ci:ci-deployer', namespace: 'ci' },
  { key: 'sa:', type: 'serviceaccount', name: '' },
  { key: 'user:', type: 'user', name: '' },
  { key: 'user:alice', type: 'user', name: 'alice' },
  { key: 'node:', type: 'node', name: '' },
  { key: 'pod:', type: 'pod', name: '' },
  { key: 'ip:', type: 'ip', name: '' },
  { key: 'user:system:anonymous', type: 'anonymous', name: 'system:anonymous' },
];

// Targets with parts missing: what a rule sees for a create without a name, a cluster-scoped object, nothing at all.
const TARGETS: Target[] = [
  {},
  { resource: 'pods' },
  { resource: 'pods', verb: 'create', namespace: 'shop' },
  { resource: 'pods', subresource: 'exec', verb: 'create' },
  { resource: 'secrets', verb: 'list' },
  { resource: 'secrets', verb: 'get', name: 'db' },
  { resource: 'rolebindings', verb: 'create', apiGroup: 'rbac.authorization.k8s.io' },
  { resource: 'rolebindings', verb: 'patch', name: 'rb', apiGroup: 'rbac.authorization.k8s.io' },
  { resource: 'clusterrolebindings', verb: 'create', name: 'ci-debug', apiGroup: 'rbac.authorization.k8s.io' },
  { resource: 'clusterrolebindings', verb: 'create' },
  { namespace: 'kube-system' },
  { name: 'db' },
  { resource: 'nodes', subresource: 'proxy', name: 'n1' },
];

// Attributes with parts missing or malformed, as older normalizers or forged events may give them.
const ATTRIBUTES: Record<string, string>[] = [
  {},
  { binding: 'RoleBinding/onlyname', role: 'ClusterRole' },
  { binding: 'ClusterRoleBinding/', role: 'Role/' },
  { binding: 'RoleBinding//x', role: 'ClusterRole/' },
  { binding: 'ClusterRoleBinding/ci-debug' },
  { binding: 'RoleBinding/shop/deployer', role: 'Role/shop/' },
  { admissionPolicies: 'privileged' },
  { admissionEngine: 'gatekeeper', admissionPolicies: ',,' },
  { actorPod: '' },
  { actorPod: 'shop/' },
  { impersonated: '' },
  { impersonator: '' },
  { sourceIP: '', userAgent: '' },
  { meshKind: 'istio', sourceNamespace: '', destinationNamespace: '' },
];

// Titles as rules with `|?` defaults render them when the event lacks the fields.
const TITLES = ['cluster-admin for ? ?', 'exec into kube-system/?', 'Binding created (role ?)', 'undefined', '', '?/?', 'null read [object Object]'];

const KINDS = Object.keys(SIGNAL_KINDS) as SignalKind[];
const OUTCOMES: Outcome[] = ['allowed', 'denied', 'unknown'];
const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
const T0 = Date.UTC(2026, 10, 29, 5, 0, 0);

/** A deterministic spread of signals over kinds, targets, attributes, titles and outcomes. */
function signals(actor: Actor, count: number, offset: number): Signal[] {
  return Array.from({ length: count }, (_, i) => {
    const j = i + offset;
    const kind = KINDS[j % KINDS.length]!;
    return {
      id: `ph-${actor.key}-${offset}-${i}`,
      source: j % 5 === 0 ? 'loki' : 'k8s-audit',
      kind,
      severity: SEVERITIES[j % SEVERITIES.length]!,
      title: TITLES[j % TITLES.length]!,
      eventTime: T0 + i * 1000,
      observedTime: T0 + i * 1000,
      actor,
      target: TARGETS[(j * 7) % TARGETS.length]!,
      outcome: OUTCOMES[j % OUTCOMES.length]!,
      entities: j % 4 === 0 ? ['pod:shop/'] : [],
      mitre: [],
      rule: { id: `rule-${kind}`, title: kind },
      matched: [],
      attributes: ATTRIBUTES[(j * 3) % ATTRIBUTES.length]!,
      excerpt: j % 2 ? { sourceIPs: [], userAgent: '' } : { sourceIPs: [null], userAgent: 42 },
    } as Signal;
  });
}

/** Root causes no timeline would give, but a stored incident or an older version might hold. */
const ODD_ROOT_CAUSES: Partial<RootCause>[] = [
  { enablingBinding: { kind: 'RoleBinding', name: 'onlyname' } },
  { enablingBinding: { kind: 'RoleBinding', name: 'x', roleKind: 'ClusterRole' } },
  { enablingBinding: { kind: 'ClusterRoleBinding', name: 'x', roleName: 'r' }, escalation: { kind: 'RoleBinding', name: 'y' } },
  {
    enablingBinding: { kind: 'RoleBinding', name: 'x', namespace: 'shop', roleKind: 'Role', roleName: 'binder' },
    escalation: { kind: 'ClusterRoleBinding', name: 'z' },
  },
  { escalation: { kind: 'ClusterRoleBinding', name: 'z', roleKind: 'ClusterRole' }, credentialSource: { detail: 'credential: long-lived tokens' } },
];

function incident(actor: Actor, timeline: TimelineEntry[], rootCause: RootCause): Omit<Incident, 'remediations'> {
  return {
    id: 'inc_00000000000000000000',
    title: '',
    status: 'open',
    severity: 'high',
    actor,
    entities: [actor.key, 'pod:shop/', 'pod:/x', 'secret:payments/', 'ns:'],
    blastRadius: { namespaces: [''], workloads: [], secrets: ['secret:/', 'secret:payments/db'], bindings: [], policies: [] },
    firstSeen: T0,
    lastSeen: T0,
    createdAt: T0,
    updatedAt: T0,
    version: 1,
    timeline,
    signalCount: timeline.length,
    countsByKind: {},
    sources: ['k8s-audit'],
    correlations: [],
    rules: [],
    mitre: [],
    rootCause,
    notes: [],
    maxSignalSeverity: 'high',
  };
}

describe('no placeholder in what people read', () => {
  for (const actor of ACTORS) {
    it(`root cause, title and plan for ${actor.key}`, () => {
      for (let offset = 0; offset < KINDS.length; offset += 5) {
        const batch = signals(actor, 17, offset);
        const timeline = batch.map(timelineEntry);
        for (const size of [1, 2, 5, timeline.length]) {
          const part = timeline.slice(0, size);
          const rc = analyzeRootCause(actor, part, { correlations: size % 2, actorShare: 1 });
          expectCleanRootCause(`${actor.key}@${offset}/${size}`, rc);
          const usage = [
            { verb: 'get', resource: 'configmaps', apiGroup: '', count: 1 },
            { verb: 'list', resource: 'pods', apiGroup: '', namespace: 'ci', count: 2 },
          ];
          expectCleanPlan(`${actor.key}@${offset}/${size}`, planRemediations({ incident: incident(actor, part, rc), usage }));
        }
        // Through the incident manager: titles too.
        const m = new IncidentManager(new CorrelationEngine([]), { now: () => T0 }, { openOnSeverity: 'info' });
        for (const inc of m.process(batch).incidents) {
          expectClean(`${actor.key}@${offset} title`, inc.title);
          expectCleanRootCause(`${actor.key}@${offset} incident`, inc.rootCause);
          expectCleanPlan(`${actor.key}@${offset} incident`, inc.remediations);
        }
      }
    });
  }

  it('every planner, alone, over root causes with parts missing', () => {
    const timeline = signals(ACTORS[0]!, KINDS.length, 0).map(timelineEntry);
    for (const actor of ACTORS)
      for (const odd of ODD_ROOT_CAUSES) {
        const rc: RootCause = { summary: 's', evidence: [], confidence: 0.5, actor: actor.key, ...odd };
        const inc = incident(actor, timeline, rc);
        const sa = actor.key === 'sa:ci/ci-deployer' ? { sa: { namespace: 'ci', name: 'ci-deployer' } } : {};
        const ctx: PlanContext = { incident: inc, usage: [{ verb: 'get', resource: 'configmaps', apiGroup: '', count: 1 }], ...sa };
        for (const planner of PLANNERS) expectCleanPlan(`${actor.key} ${planner.name} ${JSON.stringify(odd)}`, planner(ctx));
      }
  });

  it('writes cluster-scoped objects and missing fields in words', () => {
    const actor = ACTORS[0]!;
    const [write, use] = [signals(actor, 1, 0)[0]!, signals(actor, 1, 0)[0]!];
    const chain = [
      {
        ...write,
        id: 'w',
        kind: 'rbac.cluster_admin_binding' as const,
        outcome: 'allowed' as const,
        target: { resource: 'clusterrolebindings', verb: 'create', name: 'ci-debug' },
        attributes: { binding: 'RoleBinding/onlyname' },
        title: 'cluster-admin for ? ?',
      },
      {
        ...use,
        id: 'u',
        kind: 'pod.exec' as const,
        severity: 'high' as const,
        outcome: 'allowed' as const,
        eventTime: T0 + 5000,
        target: { resource: 'pods', subresource: 'exec', verb: 'create' },
        attributes: { binding: 'ClusterRoleBinding/ci-debug' },
        title: 'exec into kube-system/?',
      },
    ];
    const rc = analyzeRootCause(actor, chain.map(timelineEntry), { correlations: 0, actorShare: 1 });
    expect(rc.summary).toContain('allowed by RoleBinding onlyname (its namespace was not recorded)');
    expect(rc.summary).toContain('created ClusterRoleBinding ci-debug (cluster-wide)');
    expect(rc.evidence.find((e) => e.type === 'first-signal')?.detail).toBe('First: A cluster-admin binding: ClusterRoleBinding ci-debug (cluster-wide)');
    const plan = planRemediations({ incident: incident(actor, chain.map(timelineEntry), rc), usage: [] });
    const remove = plan.filter((r) => r.kind === 'remove-binding');
    expect(remove.map((r) => r.title)).toEqual(['Remove ClusterRoleBinding ci-debug', 'Remove RoleBinding onlyname (its namespace was not recorded)']);
    expect(remove[0]?.rationale).toContain('create an unnamed pod (exec)');
    expect(remove[1]?.commands).toEqual(['kubectl get rolebindings -A --field-selector metadata.name=onlyname -o wide']);
    const m = new IncidentManager(new CorrelationEngine([]), { now: () => T0 });
    const [inc] = m.process([chain[1]!]).incidents;
    expect(inc?.title).toBe('Service account ci/ci-deployer: Exec into pods: an unnamed pod (exec)');
  });
});
