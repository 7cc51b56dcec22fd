/**
 * Root cause from evidence, not prose: {@link EVIDENCE_RULES}, run in order, each reading the
 * timeline for one kind of fact and adding evidence, a part of the summary sentence, and
 * confidence. Rules ask the kinds' traits (correlator/signal-kinds.ts), never for kind names.
 *
 * 1. **Actor** — the incident's actor and the share of signals it appears in.
 * 2. **First signal** — the earliest event of the timeline: where the story starts.
 * 3. **Enabler** — among the *allowed* actions that need power (secret reads and lists, exec/attach/
 *    port-forward, token requests, nodes/proxy, cluster-admin grants), the RBAC binding named most
 *    often in their `authorization.k8s.io/reason`; a ClusterRoleBinding is reported as cluster-wide.
 * 4. **Blocked by** — denials: admission policies named in denial messages (Gatekeeper constraint,
 *    Kyverno policy, Pod Security level) and RBAC denials, grouped by what was attempted.
 * 5. **Missing controls** — risky things that were *allowed*: a privileged / host-namespace /
 *    hostPath pod no policy stopped, a mesh policy weakened to PERMISSIVE or deleted.
 * 6. **Mesh** — mTLS failures: plaintext or untrusted connections the mesh refused.
 *
 * Confidence starts at 0.3 and grows with each independent piece of evidence: an enabling binding
 * behind allowed sensitive actions (+0.3), each further distinct attack kind (+0.05, up to +0.2),
 * the actor behind ≥90% of signals (+0.1), a correlation rule that matched (+0.1); capped at 0.99.
 */
import type { Actor } from './entities.js';
import type { Evidence, RootCause, TimelineEntry } from './incident.js';
import { admissionPhraseOf, hasTrait, phraseOf, type SignalKind } from './signal-kinds.js';

type EnablingBinding = NonNullable<RootCause['enablingBinding']>;

/** What the rules read: the timeline in time order, and the facts several rules share. */
export interface RootCauseInput {
  actor: Actor;
  /** The timeline, oldest first. */
  sorted: readonly TimelineEntry[];
  first: TimelineEntry | undefined;
  correlations: number;
  actorShare: number;
  /** Allowed actions that need power (trait `needs-power`). */
  allowedSensitive: readonly TimelineEntry[];
  denied: readonly TimelineEntry[];
}

/** The parts of the summary sentence, in sentence order; each part brings its own leading separator. */
const SUMMARY_PARTS = ['actor', 'actions', 'enabler', 'denied', 'admission', 'mesh', 'missing'] as const;
type SummaryPart = (typeof SUMMARY_PARTS)[number];

/** What one rule found. */
export interface Finding {
  evidence?: Evidence[];
  summary?: Partial<Record<SummaryPart, string>>;
  /** Added to the confidence. */
  confidence?: number;
  enablingBinding?: EnablingBinding;
}

/** One kind of fact about the incident. */
export interface EvidenceRule {
  name: string;
  analyze(input: RootCauseInput): Finding | undefined;
}

const BASE_CONFIDENCE = 0.3;

const ids = (es: readonly TimelineEntry[], max = 20) => es.slice(0, max).map((e) => e.signalId);
const uniq = <T>(xs: T[]) => [...new Set(xs)];

/** How the actor reads in a sentence. */
export function describeActor(a: Actor): string {
  if (a.type === 'serviceaccount') return `Service account ${a.namespace}/${a.key.slice(a.key.indexOf('/') + 1)}`;
  if (a.type === 'node') return `Node ${a.key.slice(5)}`;
  if (a.type === 'anonymous') return 'An anonymous client';
  return `User ${a.name}`;
}

function parseBinding(b: string, role: string | undefined): EnablingBinding | undefined {
  const [kind, ...rest] = b.split('/');
  if (kind !== 'ClusterRoleBinding' && kind !== 'RoleBinding') return undefined;
  const out: EnablingBinding = kind === 'RoleBinding' && rest.length === 2 ? { kind, namespace: rest[0]!, name: rest[1]! } : { kind, name: rest.join('/') };
  if (role) {
    const [rk, ...rr] = role.split('/');
    out.roleKind = rk;
    out.roleName = rr[rr.length - 1];
  }
  return out;
}

/** Kinds in a sentence: their phrases, once each, joined with commas and "and". */
function phrase(kinds: readonly SignalKind[], of: (k: SignalKind) => string = phraseOf): string {
  const words = uniq(kinds.map(of));
  return words.length <= 1 ? (words[0] ?? '') : `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;
}

const kindsOf = (es: readonly TimelineEntry[]) => es.map((e) => e.kind);
/** Secrets read or listed: their values left the cluster's control. */
const exposesSecrets = (k: SignalKind) => hasTrait(k, 'secret-read') || hasTrait(k, 'secret-list');

// ---------------------------------------------------------------------------------------------
// The rules

const actorRule: EvidenceRule = {
  name: 'actor',
  analyze: ({ actor, sorted, first, actorShare }) => ({
    evidence: [
      {
        type: 'actor',
        entity: actor.key,
        detail: `${describeActor(actor)} acted in ${Math.round(actorShare * 100)}% of the incident's signals`,
        signalIds: ids(sorted, 10),
      },
    ],
    summary: { actor: describeActor(actor) + (first?.attributes.actorPod ? ` (pod ${first.attributes.actorPod})` : '') },
    confidence: actorShare >= 0.9 ? 0.1 : 0,
  }),
};

const firstSignal: EvidenceRule = {
  name: 'first-signal',
  analyze: ({ first }) => (first ? { evidence: [{ type: 'first-signal', detail: `First: ${first.title}`, signalIds: [first.signalId] }] } : undefined),
};

/** What the actor was allowed to do, or else everything it triggered. */
const allowedActions: EvidenceRule = {
  name: 'allowed-actions',
  analyze: ({ sorted, allowedSensitive }) => {
    const parts: string[] = [];
    const secrets = allowedSensitive.filter((e) => exposesSecrets(e.kind));
    if (secrets.length) {
      const nss = uniq(secrets.map((e) => e.target.namespace).filter(Boolean));
      const listed = secrets.some((e) => hasTrait(e.kind, 'cluster-wide'));
      parts.push(`${listed ? 'listed secrets cluster-wide and ' : ''}read secrets${nss.length ? ` in ${nss.join(', ')}` : ''}`);
    }
    const other = allowedSensitive.filter((e) => !exposesSecrets(e.kind));
    if (other.length) parts.push(`was allowed ${phrase(kindsOf(other))}`);
    return { summary: { actions: ` ${parts.length ? parts.join(' and ') : 'triggered ' + phrase(kindsOf(sorted)).slice(0, 200)}` } };
  },
};

/** The binding behind the allowed sensitive actions: the one the API server named most often. */
const enablingBinding: EvidenceRule = {
  name: 'enabling-binding',
  analyze: ({ allowedSensitive }) => {
    const byBinding = new Map<string, TimelineEntry[]>();
    for (const e of allowedSensitive) {
      const b = e.attributes.binding;
      if (b) byBinding.set(b, [...(byBinding.get(b) ?? []), e]);
    }
    const top = [...byBinding.entries()].sort((a, b) => b[1].length - a[1].length)[0];
    const binding = top ? parseBinding(top[0], top[1][0]!.attributes.role) : undefined;
    if (!top || !binding) return undefined;
    const scope = binding.kind === 'ClusterRoleBinding' ? 'cluster-wide' : `in namespace ${binding.namespace}`;
    const roleTxt = binding.roleName ? ` (${binding.roleKind} ${binding.roleName})` : '';
    return {
      evidence: [
        {
          type: 'enabler',
          entity: `binding:${top[0]}`,
          detail: `${binding.kind} ${binding.name}${roleTxt} allowed ${phrase(kindsOf(top[1]))} ${scope}`,
          signalIds: ids(top[1]),
        },
      ],
      summary: { enabler: ` through ${binding.kind} ${binding.name}${roleTxt}` },
      confidence: 0.3,
      enablingBinding: binding,
    };
  },
};

/** Admission policies named in denials. */
const admissionPolicies: EvidenceRule = {
  name: 'admission-policies',
  analyze: ({ denied }) => {
    const byPolicy = new Map<string, TimelineEntry[]>();
    for (const e of denied) {
      const engine = e.attributes.admissionEngine;
      for (const p of (e.attributes.admissionPolicies ?? '').split(',').filter(Boolean))
        byPolicy.set(`${engine}/${p}`, [...(byPolicy.get(`${engine}/${p}`) ?? []), e]);
    }
    if (!byPolicy.size) return undefined;
    return {
      evidence: [...byPolicy].map(([p, es]): Evidence => ({
        type: 'blocked-by',
        entity: `policy:${p}`,
        detail: `${p.replace('/', ' policy ')} denied ${phrase(kindsOf(es), admissionPhraseOf)}`,
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
    const attempts = rbacDenied.filter((e) => !hasTrait(e.kind, 'authz-refusal'));
    // A refusal kind names no attempt, and mTLS failures have a part of their own.
    const deniedKinds = kindsOf(denied).filter((k) => !hasTrait(k, 'admission-refusal') && !hasTrait(k, 'authz-refusal') && !hasTrait(k, 'mtls-failure'));
    return {
      evidence: rbacDenied.length
        ? [
            {
              type: 'blocked-by',
              detail: `RBAC denied ${rbacDenied.length} request(s)${attempts.length ? `: ${phrase(kindsOf(attempts))}` : ''}`,
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
    const risky = sorted.filter((e) => e.outcome === 'allowed' && hasTrait(e.kind, 'missing-control'));
    if (!risky.length) return undefined;
    const nss = uniq(risky.map((e) => e.target.namespace).filter(Boolean));
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
          detail: `Mesh security was weakened: ${uniq(weakened.map((e) => e.title))
            .slice(0, 3)
            .join('; ')}`,
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
    const to = uniq(mtls.map((e) => e.target.namespace ?? e.target.name).filter(Boolean));
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
    const to = uniq(calls.map((e) => e.target.namespace ?? e.target.name).filter(Boolean));
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

/** Each further distinct kind of signal is another independent piece of evidence. */
const breadth: EvidenceRule = {
  name: 'breadth',
  analyze: ({ sorted }) => ({ confidence: Math.min(0.2, Math.max(0, uniq(kindsOf(sorted)).length - 1) * 0.05) }),
};

const correlated: EvidenceRule = {
  name: 'correlated',
  analyze: ({ correlations }) => ({ confidence: correlations > 0 ? 0.1 : 0 }),
};

/** The rules in the order their evidence is listed. */
export const EVIDENCE_RULES: readonly EvidenceRule[] = [
  actorRule,
  firstSignal,
  allowedActions,
  enablingBinding,
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
export function analyzeRootCause(actor: Actor, timeline: TimelineEntry[], opts: { correlations: number; actorShare: number }): RootCause {
  const sorted = [...timeline].sort((a, b) => a.time - b.time);
  const input: RootCauseInput = {
    actor,
    sorted,
    first: sorted[0],
    correlations: opts.correlations,
    actorShare: opts.actorShare,
    allowedSensitive: sorted.filter((e) => e.outcome === 'allowed' && hasTrait(e.kind, 'needs-power')),
    denied: sorted.filter((e) => e.outcome === 'denied'),
  };
  const evidence: Evidence[] = [];
  const summary: Partial<Record<SummaryPart, string>> = {};
  let confidence = BASE_CONFIDENCE;
  let binding: EnablingBinding | undefined;
  for (const rule of EVIDENCE_RULES) {
    const found = rule.analyze(input);
    if (!found) continue;
    evidence.push(...(found.evidence ?? []));
    Object.assign(summary, found.summary);
    confidence += found.confidence ?? 0;
    binding ??= found.enablingBinding;
  }
  const sentence = `${SUMMARY_PARTS.map((p) => summary[p] ?? '').join('')}.`;
  return {
    summary: sentence,
    evidence,
    confidence: Math.round(Math.min(0.99, confidence) * 100) / 100,
    actor: actor.key,
    ...(binding ? { enablingBinding: binding } : {}),
  };
}
