import { describe, expect, it } from 'vitest';
import { CorrelationEngine } from './correlation/engine.js';
import { signalFromSpec } from './correlation/rule-tests.js';
import { compileCorrelations } from './correlation/rules.js';
import { IncidentManager } from './incidents.js';
import type { Signal } from './signal.js';
import { compileSilence, matchesEverything, SilenceSet, silenceState, silencesToPrune, type Silence, type SilenceMatcher } from './silences.js';

let n = 0;
const sig = (at: string, kind: string, actor: string, extra: Record<string, unknown> = {}): Signal => signalFromSpec({ at, kind, actor, ...extra }, n++, [])!;
const T = Date.UTC(2026, 0, 1);
const m = (name: string, value: string, isRegex = false, isEqual = true): SilenceMatcher => ({ name, value, isRegex, isEqual });
const silence = (id: string, matchers: SilenceMatcher[], startsAt = T, endsAt = T + 3_600_000): Silence => ({
  id,
  matchers,
  startsAt,
  endsAt,
  createdBy: 'test',
  comment: 'test',
  updatedAt: startsAt,
});
const matches = (matchers: SilenceMatcher[], s: Signal) => compileSilence(silence('x', matchers)).matches(s);

describe('silence matchers', () => {
  const s = sig('0s', 'secret.read_cross_namespace', 'sa:ci/deployer', {
    rule: 'k8s-secret-read-cross-namespace',
    severity: 'high',
    target: { namespace: 'payments', resource: 'secrets', name: 'db' },
    attributes: { binding: 'ClusterRoleBinding/ci-admin' },
  });

  it('matches equal and not-equal values of every field', () => {
    expect(matches([m('actor', 'sa:ci/deployer')], s)).toBe(true);
    expect(matches([m('actor', 'sa:ci/other')], s)).toBe(false);
    expect(matches([m('actor', 'sa:ci/other', false, false)], s)).toBe(true);
    expect(matches([m('rule', 'k8s-secret-read-cross-namespace'), m('kind', 'secret.read_cross_namespace')], s)).toBe(true);
    expect(matches([m('namespace', 'payments'), m('source', 'k8s-audit'), m('severity', 'high')], s)).toBe(true);
    // Every matcher must hold.
    expect(matches([m('actor', 'sa:ci/deployer'), m('severity', 'low')], s)).toBe(false);
    // A value the signal lacks is "", as a missing label in Alertmanager.
    expect(matches([m('cluster', '')], s)).toBe(true);
    expect(matches([m('cluster', 'prod')], s)).toBe(false);
    expect(matches([m('cluster', 'prod')], { ...s, cluster: 'prod' })).toBe(true);
  });

  it('anchors regexes as ^(?:re)$', () => {
    expect(matches([m('actor', 'sa:ci/.*', true)], s)).toBe(true);
    expect(matches([m('actor', 'ci', true)], s)).toBe(false);
    expect(matches([m('actor', 'sa:ci/deploy', true)], s)).toBe(false);
    // The alternation stays inside the anchors: "a|b" is not "^a" or "b$".
    expect(matches([m('rule', 'k8s-secret|other', true)], s)).toBe(false);
    expect(matches([m('rule', 'other|k8s-secret-read-cross-namespace', true)], s)).toBe(true);
    expect(matches([m('actor', 'sa:ci/.*', true, false)], s)).toBe(false);
  });

  it('reads signal attributes through attributes.<name>', () => {
    expect(matches([m('attributes.binding', 'ClusterRoleBinding/ci-admin')], s)).toBe(true);
    expect(matches([m('attributes.binding', 'ClusterRoleBinding/.*', true)], s)).toBe(true);
    expect(matches([m('attributes.role', '.+', true)], s)).toBe(false);
  });

  it('recognises matchers that would match every signal', () => {
    expect(matchesEverything([m('actor', '.*', true)])).toBe(true);
    expect(matchesEverything([m('actor', 'x', false, false)])).toBe(true);
    expect(matchesEverything([m('actor', '.*', true), m('rule', 'r')])).toBe(false);
    expect(matchesEverything([m('actor', '.+', true)])).toBe(false);
  });
});

describe('silence time window', () => {
  it('is pending before startsAt, active until endsAt, then expired', () => {
    const w = { startsAt: T, endsAt: T + 1000 };
    expect(silenceState(w, T - 1)).toBe('pending');
    expect(silenceState(w, T)).toBe('active');
    expect(silenceState(w, T + 999)).toBe('active');
    expect(silenceState(w, T + 1000)).toBe('expired');
  });

  it('silences only while active, with the time given', () => {
    const set = new SilenceSet();
    set.replace([silence('s1', [m('actor', 'sa:ci/deployer')], T + 1000, T + 2000)], T);
    const s = sig('0s', 'rbac.denied', 'sa:ci/deployer');
    expect(set.match(s, T)).toBeUndefined();
    expect(set.match(s, T + 1000)).toBe('s1');
    expect(set.match(sig('0s', 'rbac.denied', 'sa:ci/other'), T + 1000)).toBeUndefined();
    expect(set.match(s, T + 2000)).toBeUndefined();
    expect(set.active(T + 1500)).toBe(1);
  });

  it('prunes expired silences past the history bound and the retention', () => {
    const all = [
      silence('active', [m('actor', 'a')], T, T + 10_000),
      silence('recent', [m('actor', 'a')], T - 5000, T - 1000),
      silence('older', [m('actor', 'a')], T - 9000, T - 8000),
      silence('ancient', [m('actor', 'a')], T - 100 * 86_400_000, T - 99 * 86_400_000),
    ];
    expect(silencesToPrune(all, T).sort()).toEqual(['ancient']);
    expect(silencesToPrune(all, T, 1).sort()).toEqual(['ancient', 'older']);
  });
});

describe('IncidentManager with a silencer', () => {
  function manager(silenced: (s: Signal) => string | undefined) {
    const { correlations } = compileCorrelations(
      [
        {
          file: 'c.yaml',
          doc: {
            correlations: [
              {
                id: 'two-denials',
                title: 'Two denials',
                description: 'test; false positives: none',
                type: 'event_count',
                rules: ['rbac.denied'],
                condition: { gte: 2 },
                timespan: '5m',
                severity: 'high',
                mitre: [],
              },
            ],
          },
        },
      ],
      new Set(),
    );
    const im = new IncidentManager(new CorrelationEngine(correlations), { now: () => T });
    im.silencer = silenced;
    return im;
  }

  it('opens nothing for silenced signals, and lists those of an open incident’s actor on it', () => {
    const im = manager((s) => (s.rule.id === 'noisy' ? 'sil-1' : undefined));
    // Severe and correlated, but silenced: nothing opens, nothing feeds the windows.
    const r = im.process([
      sig('0s', 'secret.list_cluster_wide', 'sa:web/web', { severity: 'critical', rule: 'noisy' }),
      sig('1s', 'rbac.denied', 'sa:web/web', { rule: 'noisy' }),
      sig('2s', 'rbac.denied', 'sa:web/web', { rule: 'noisy' }),
    ]);
    expect(r.incidents).toEqual([]);
    expect(im.openIncidents()).toEqual([]);
    // A signal that is not silenced opens the incident; the silenced ones after it are listed, not attached.
    const [opened] = im.process([sig('3s', 'secret.list_cluster_wide', 'sa:web/web', { severity: 'high', rule: 'loud' })]).incidents;
    expect(opened).toMatchObject({ severity: 'high', signalCount: 1 });
    const hidden = sig('4s', 'secret.read_cross_namespace', 'sa:web/web', { severity: 'critical', rule: 'noisy' });
    const after = im.process([hidden]);
    expect(after.incidents).toHaveLength(1);
    expect(after.incidents[0]).toMatchObject({ severity: 'high', signalCount: 1, silenced: [{ silenceId: 'sil-1', signalIds: [hidden.id], count: 1 }] });
    // Stored with the incident's signals, so the ids it lists can be read.
    expect(after.attached).toEqual([{ incidentId: opened!.id, signal: hidden }]);
    expect(after.incidents[0]!.timeline.map((e) => e.signalId)).not.toContain(hidden.id);
  });
});
