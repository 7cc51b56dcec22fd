/**
 * The Alertmanager rule pack (rules/detections/alertmanager.yaml): it lints, its tests pass, every
 * rule is exercised, and through the real correlator a resolved alert updates an incident but never
 * opens one, while a firing alert joins the audit signals of the same identity.
 */
import { describe, expect, it } from 'vitest';
import { AUDIT_SOURCE } from '../connectors/k8s-audit/source.js';
import { ALERTMANAGER_SOURCE } from '../connectors/alertmanager/source.js';
import { CorrelationEngine } from '../correlator/correlation/engine.js';
import { compileCorrelations } from '../correlator/correlation/rules.js';
import { compileRules } from '../correlator/detection/compile.js';
import { Detector } from '../correlator/detection/engine.js';
import { formatProblem, type Problem } from '../correlator/detection/problems.js';
import { loadRuleTestFile, runRuleTests } from '../correlator/detection/rule-tests.js';
import { IncidentManager } from '../correlator/incidents.js';
import type { Signal } from '../correlator/signal.js';
import { readRuleFiles, readYaml, SCHEMAS, SHIPPED_DETECTIONS } from '../services/rules.js';

const RULE_FILE = `${SHIPPED_DETECTIONS}/alertmanager.yaml`;
const TEST_FILE = `${SHIPPED_DETECTIONS}/alertmanager.test.yaml`;
// Until services/sources.ts registers the source, SCHEMAS lacks it; a duplicate is harmless after.
const schemas = [...SCHEMAS.filter((s) => s.name !== 'alertmanager'), ALERTMANAGER_SOURCE.schema];
const sources = new Map([AUDIT_SOURCE, ALERTMANAGER_SOURCE].map((s) => [s.schema.name as string, s]));

function shippedPack() {
  const problems: Problem[] = [];
  const files = readRuleFiles([], problems);
  const detection = compileRules(files.detection, schemas);
  const ids = new Set([...detection.rules.map((r) => r.id), ...detection.disabled]);
  const corr = compileCorrelations(files.correlation, ids);
  return { detection, correlations: corr.correlations, problems: [...problems, ...detection.problems, ...corr.problems] };
}

describe('rules/detections/alertmanager.yaml', () => {
  it('lints clean on its own and within the shipped pack', () => {
    const alone = compileRules([{ file: RULE_FILE, doc: readYaml(RULE_FILE, []) }], [ALERTMANAGER_SOURCE.schema]);
    expect(alone.problems.map(formatProblem)).toEqual([]);
    expect(alone.rules.length).toBe(15);
    expect(new Set(alone.rules.map((r) => r.source))).toEqual(new Set(['alertmanager']));
    expect(shippedPack().problems.map(formatProblem)).toEqual([]);
  });

  it('passes its rule tests, and every rule fires in at least one', () => {
    const { detection } = shippedPack();
    const problems: Problem[] = [];
    const tf = loadRuleTestFile(TEST_FILE, RULE_FILE, readYaml(TEST_FILE, problems), () => [], problems);
    expect(problems.map(formatProblem)).toEqual([]);
    const mine = detection.rules.filter((r) => r.file === RULE_FILE).map((r) => r.id);
    const results = runRuleTests(tf, new Detector(detection.rules, schemas), (source, v) => sources.get(source)!.decode(v, 0), new Set(mine));
    expect(results.filter((t) => !t.ok).map((t) => `${t.name}: ${t.failures.join('; ')}`)).toEqual([]);
    expect(results.length).toBeGreaterThanOrEqual(12);
    const expected = new Set(tf.tests.flatMap((t) => t.expect.map((e) => e.rule)));
    expect(mine.filter((id) => !expected.has(id))).toEqual([]);
    // Negative cases: tests that expect nothing at all.
    expect(tf.tests.filter((t) => t.expect.length === 0).length).toBeGreaterThanOrEqual(2);
  });

  it('only firing alerts raise their kind; a resolved one raises a single info signal', () => {
    const { detection } = shippedPack();
    const detector = new Detector(detection.rules, schemas);
    const labels = { alertname: 'GatekeeperViolations', severity: 'critical', namespace: 'payments', pod: 'x' };
    const detect = (status: string) =>
      ALERTMANAGER_SOURCE.decode({ status, labels, startsAt: '2025-03-01T10:00:00Z', endsAt: '2025-03-01T10:09:00Z' }, 0).events.flatMap((e) =>
        detector.detect(e),
      );
    expect(detect('firing').map((s) => [s.rule.id, s.severity, s.kind])).toEqual([['alertmanager-policy-violations', 'high', 'alert.policy_violation']]);
    expect(detect('resolved').map((s) => [s.rule.id, s.severity, s.kind])).toEqual([['alertmanager-alert-resolved', 'info', 'alert.security']]);
  });
});

describe('alert signals through the correlator', () => {
  const { detection, correlations } = shippedPack();
  const detector = new Detector(detection.rules, schemas);
  const clock = { now: () => Date.parse('2025-03-01T12:00:00Z') };
  const alertSignals = (alerts: unknown[]): Signal[] =>
    ALERTMANAGER_SOURCE.decode({ version: '4', status: 'firing', alerts }, clock.now()).events.flatMap((e) => detector.detect(e));
  const mtls = (status: string, severity: string, fingerprint: string, at = '10:00') => ({
    status,
    labels: {
      alertname: 'IstioMTLSFailures',
      severity,
      source_principal: 'spiffe://cluster.local/ns/frontend/sa/frontend',
      destination_workload: 'postgres',
      destination_workload_namespace: 'payments',
    },
    startsAt: `2025-03-01T${at}:00Z`,
    endsAt: status === 'resolved' ? '2025-03-01T10:30:00Z' : '0001-01-01T00:00:00Z',
    fingerprint,
  });

  it('never opens an incident from resolved alerts, however many', () => {
    const m = new IncidentManager(new CorrelationEngine(correlations), clock);
    const resolved = alertSignals(Array.from({ length: 50 }, (_, i) => mtls('resolved', 'critical', `fp${i}`)));
    expect(resolved).toHaveLength(50);
    expect(m.process(resolved).incidents).toEqual([]);
    expect(m.openIncidents()).toEqual([]);
  });

  it('opens on a critical firing alert and records its resolution on the same incident', () => {
    const m = new IncidentManager(new CorrelationEngine(correlations), clock);
    const [opened] = m.process(alertSignals([mtls('firing', 'critical', 'aa')])).incidents;
    expect(opened).toMatchObject({ status: 'open', severity: 'high', actor: { key: 'sa:frontend/frontend' }, signalCount: 1 });
    const [updated] = m.process(alertSignals([mtls('resolved', 'critical', 'aa')])).incidents;
    expect(updated).toMatchObject({ id: opened!.id, status: 'open', signalCount: 2, severity: 'high' });
    expect(m.openIncidents()).toHaveLength(1);
  });

  it('joins a warning-level mTLS alert with an RBAC denial of the same service account into lateral movement', () => {
    const m = new IncidentManager(new CorrelationEngine(correlations), clock);
    expect(m.process(alertSignals([mtls('firing', 'warning', 'bb')])).incidents).toEqual([]);
    const denial = AUDIT_SOURCE.decode(
      {
        auditID: 'am-rules-1',
        stage: 'ResponseComplete',
        verb: 'get',
        requestURI: '/api/v1/namespaces/payments/secrets/db',
        user: { username: 'system:serviceaccount:frontend:frontend' },
        objectRef: { resource: 'secrets', namespace: 'payments', name: 'db', apiVersion: 'v1' },
        responseStatus: { code: 403 },
        annotations: { 'authorization.k8s.io/decision': 'forbid' },
        stageTimestamp: '2025-03-01T10:03:00Z',
      },
      clock.now(),
    ).events.flatMap((e) => detector.detect(e));
    const [inc] = m.process(denial).incidents;
    expect(inc).toBeDefined();
    expect(inc!.correlations.map((c) => c.ruleId)).toContain('zt-lateral-movement');
    expect([...inc!.sources].sort()).toEqual(['alertmanager', 'k8s-audit']);
    expect(inc!.timeline.map((e) => e.kind)).toEqual(expect.arrayContaining(['mtls.failed', 'rbac.denied']));
  });
});
