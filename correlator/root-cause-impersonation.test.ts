/**
 * Impersonation: the actor is the identity that holds the impersonate permission (the normalizer
 * makes it the signal's actor and puts the impersonated identity in `attributes.impersonated`);
 * the impersonated identity is context in the title and the root cause.
 */
import { describe, expect, it } from 'vitest';
import { CorrelationEngine } from './correlation/engine.js';
import type { Actor } from './entities.js';
import type { Incident } from './incident.js';
import { IncidentManager } from './incidents.js';
import type { SignalKind } from './signal-kinds.js';
import type { Signal, Target } from './signal.js';

const T0 = Date.UTC(2026, 10, 29, 4, 0, 0);
const ALICE: Actor = { key: 'user:alice', type: 'user', name: 'alice' };
const DEPLOYER: Actor = { key: 'sa:x/y', type: 'serviceaccount', name: 'system:serviceaccount:x:y', namespace: 'x' };
const READER = { binding: 'ClusterRoleBinding/y-secret-reader', role: 'ClusterRole/secret-reader' };

let n = 0;
function signal(actor: Actor, kind: SignalKind, target: Target, attributes: Record<string, string>): Signal {
  n += 1;
  return {
    id: `imp-${n}`,
    source: 'k8s-audit',
    kind,
    severity: 'high',
    title: `${kind} ${target.namespace ?? ''}/${target.name ?? ''}`,
    eventTime: T0 + n * 1000,
    observedTime: T0 + n * 1000,
    actor,
    target,
    outcome: 'allowed',
    entities: [],
    mitre: [],
    rule: { id: `rule-${kind}`, title: kind },
    matched: [],
    attributes,
    excerpt: {},
  };
}

function incidentOf(signals: Signal[]): Incident {
  const m = new IncidentManager(new CorrelationEngine([]), { now: () => T0 });
  const [inc] = m.process(signals).incidents;
  return inc!;
}

describe('impersonation', () => {
  it('names the impersonator as the actor and the impersonated identity as context', () => {
    const inc = incidentOf([
      signal(
        ALICE,
        'secret.read_cross_namespace',
        { namespace: 'payments', resource: 'secrets', name: 'db', verb: 'get' },
        {
          ...READER,
          impersonated: 'system:serviceaccount:x:y',
        },
      ),
      signal(
        ALICE,
        'secret.read_cross_namespace',
        { namespace: 'payments', resource: 'secrets', name: 'stripe', verb: 'get' },
        {
          ...READER,
          impersonated: 'system:serviceaccount:x:y',
        },
      ),
    ]);
    expect(inc.actor.key).toBe('user:alice');
    expect(inc.title.startsWith('User alice (impersonating system:serviceaccount:x:y): ')).toBe(true);
    expect(inc.rootCause.actor).toBe('user:alice');
    expect(inc.rootCause.impersonated).toEqual(['system:serviceaccount:x:y']);
    expect(inc.rootCause.summary).toMatch(
      /^User alice \(impersonating system:serviceaccount:x:y\) read secrets in payments through ClusterRoleBinding y-secret-reader/,
    );
    expect(inc.rootCause.evidence[0]?.detail).toContain('User alice (impersonating system:serviceaccount:x:y)');
    // The binding grants the impersonated identity: the plan says the narrower fix is the impersonate permission.
    const remove = inc.remediations.find((r) => r.kind === 'remove-binding');
    expect(remove?.rationale).toContain('withdrawing the impersonate permission from User alice');
    // No service account acted: no token rotation or replacement role for one.
    expect(inc.remediations.some((r) => r.title.includes('service account'))).toBe(false);
  });

  it('lists several impersonated identities once each', () => {
    const inc = incidentOf([
      signal(ALICE, 'pod.exec', { namespace: 'a', resource: 'pods', subresource: 'exec', name: 'p', verb: 'create' }, { impersonated: 'bob' }),
      signal(ALICE, 'pod.exec', { namespace: 'a', resource: 'pods', subresource: 'exec', name: 'q', verb: 'create' }, { impersonated: 'carol' }),
      signal(ALICE, 'pod.exec', { namespace: 'a', resource: 'pods', subresource: 'exec', name: 'r', verb: 'create' }, { impersonated: 'bob' }),
    ]);
    expect(inc.title.startsWith('User alice (impersonating bob and carol): ')).toBe(true);
  });

  it('reads older signals, whose actor is the impersonated identity, as impersonated by the real user', () => {
    const inc = incidentOf([
      signal(
        DEPLOYER,
        'secret.read_cross_namespace',
        { namespace: 'payments', resource: 'secrets', name: 'db', verb: 'get' },
        { ...READER, impersonator: 'alice' },
      ),
    ]);
    expect(inc.title.startsWith('Service account x/y (impersonated by alice): ')).toBe(true);
    expect(inc.rootCause.summary.startsWith('Service account x/y (impersonated by alice)')).toBe(true);
    expect(inc.rootCause.impersonated).toBeUndefined();
    expect(inc.remediations.find((r) => r.kind === 'remove-binding')?.rationale).toContain('"alice" impersonating the actor');
  });
});
