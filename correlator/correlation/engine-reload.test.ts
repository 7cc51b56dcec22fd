import { describe, expect, it } from 'vitest';
import { signalFromSpec } from './rule-tests.js';
import { CorrelationEngine } from './engine.js';
import { compileCorrelations } from './rules.js';
import type { Signal } from '../signal.js';

const base = { title: 't', description: 'for tests; false positives: none', severity: 'high', mitre: ['T1098'], timespan: '10m' };
const compile = (correlations: unknown[]) => {
  const r = compileCorrelations([{ file: 'c.yaml', doc: { correlations } }], new Set());
  expect(r.problems).toEqual([]);
  return r.correlations;
};
const sig = (at: string, kind: string, actor = 'sa:a/b', extra: Record<string, unknown> = {}): Signal =>
  signalFromSpec({ at, kind, actor, ...extra }, Math.random() * 1e9, [])!;

const twoDenials = { ...base, id: 'two-denials', type: 'event_count', rules: ['rbac.denied'], condition: { gte: 2 } };
const perNamespace = { ...base, id: 'ns-denials', type: 'event_count', rules: ['rbac.denied'], condition: { gte: 2 }, group_by: ['target.namespace'] };
const execs = { ...base, id: 'two-execs', type: 'event_count', rules: ['pod.exec'], condition: { gte: 2 } };

describe('CorrelationEngine.replaceCorrelations', () => {
  it('keeps the windows of correlations still there, under their new positions and group keys', () => {
    const engine = new CorrelationEngine(compile([twoDenials, perNamespace, execs]));
    engine.process(sig('2026-01-01T00:00:00Z', 'rbac.denied', 'sa:a/b', { target: { namespace: 'payments' } }));
    engine.process(sig('2026-01-01T00:00:10Z', 'pod.exec'));
    // New order, a new correlation with its own grouping first (grouping spec ids shift), two-execs gone.
    const byUser = { ...base, id: 'user-denials', type: 'event_count', rules: ['rbac.denied'], condition: { gte: 5 }, group_by: ['actor.name'] };
    const r = engine.replaceCorrelations(compile([byUser, perNamespace, twoDenials]));
    expect(r).toEqual({ kept: 2, dropped: 1 });
    expect(engine.entries).toBe(2);
    const fired = engine.process(sig('2026-01-01T00:01:00Z', 'rbac.denied', 'sa:a/b', { target: { namespace: 'payments' } }));
    expect(fired.map((f) => f.correlation.id).sort()).toEqual(['ns-denials', 'two-denials']);
    // The exec window went with its correlation: a new one starts from nothing.
    const again = engine.replaceCorrelations(compile([twoDenials, execs]));
    expect(again.dropped).toBeGreaterThan(0);
    expect(engine.process(sig('2026-01-01T00:01:10Z', 'pod.exec'))).toEqual([]);
  });

  it('drops the windows of a correlation whose references changed', () => {
    const engine = new CorrelationEngine(compile([twoDenials]));
    engine.process(sig('2026-01-01T00:00:00Z', 'rbac.denied'));
    expect(engine.replaceCorrelations(compile([{ ...twoDenials, rules: ['pod.exec', 'rbac.denied'] }]))).toEqual({ kept: 0, dropped: 1 });
    expect(engine.entries).toBe(0);
    expect(engine.size).toBe(0);
  });
});
