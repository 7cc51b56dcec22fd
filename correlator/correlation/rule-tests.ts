/**
 * Correlation rule tests: timed input signals → expected incidents, with a fake clock. A test file
 * sits beside its correlation file (`lateral-movement.yaml` ↔ `lateral-movement.test.yaml`).
 *
 * ```yaml
 * tests:
 *   - name: denials, then mTLS failures from one workload
 *     signals:
 *       - { at: 0s, kind: rbac.denied, actor: "sa:frontend/frontend", outcome: denied }
 *       - { at: 40s, kind: mtls.failed, actor: "sa:frontend/frontend", target: { namespace: payments } }
 *     expect:
 *       - { actor: "sa:frontend/frontend", correlations: [zt-lateral-movement], severity: high, signals: 2 }
 * ```
 */
import { actorFromUsername, nsKey, podKey, saKey, secretKey, type Actor } from '../entities.js';
import type { Incident } from '../incident.js';
import { IncidentManager, type IncidentPolicy } from '../incidents.js';
import type { Problem } from '../detection/problems.js';
import { isSeverity, type Severity } from '../severity.js';
import { isSignalKind, type SignalKind } from '../signal-kinds.js';
import { signalId, type Outcome, type Signal, type SourceName, type Target } from '../signal.js';
import { CorrelationEngine } from './engine.js';
import { parseDuration, type CompiledCorrelation } from './rules.js';
import { isObj } from '../json-guards.js';

/** An expected incident: every field given must match. */
export interface IncidentExpectation {
  actor?: string;
  correlations?: string[];
  severity?: Severity;
  minSeverity?: Severity;
  signals?: number;
  entities?: string[];
  status?: string;
}

/** A loaded correlation test case. */
export interface CorrelationTestCase {
  name: string;
  signals: Signal[];
  expect: IncidentExpectation[];
}

/** Outcome of one case. */
export interface CorrelationTestResult {
  file: string;
  name: string;
  ok: boolean;
  failures: string[];
  /** The correlation ids this test expects an incident to carry. */
  expects: string[];
}

export const BASE_TIME = Date.UTC(2026, 0, 1);

function actorOf(key: string): Actor {
  if (key.startsWith('sa:')) {
    const [ns, name] = key.slice(3).split('/') as [string, string];
    return actorFromUsername(`system:serviceaccount:${ns}:${name}`);
  }
  if (key.startsWith('user:')) return actorFromUsername(key.slice(5));
  if (key.startsWith('node:')) return actorFromUsername(`system:node:${key.slice(5)}`);
  return { key, type: 'pod', name: key };
}

/** Builds a full signal from the compact test notation. */
export function signalFromSpec(spec: Record<string, unknown>, index: number, problems: string[]): Signal | undefined {
  const at = parseDuration(spec.at ?? '0s');
  if (at === undefined && spec.at !== '0s') problems.push(`signals[${index}].at: ${JSON.stringify(spec.at)} is not a duration like 30s or 5m`);
  if (!isSignalKind(spec.kind)) {
    problems.push(`signals[${index}].kind: unknown signal kind ${JSON.stringify(spec.kind)}`);
    return undefined;
  }
  const kind: SignalKind = spec.kind;
  const actor = actorOf(typeof spec.actor === 'string' ? spec.actor : saKey('default', 'default'));
  const target = (isObj(spec.target) ? spec.target : {}) as Target;
  const severity: Severity = isSeverity(spec.severity) ? spec.severity : 'low';
  const attributes = (isObj(spec.attributes) ? spec.attributes : {}) as Record<string, string>;
  const entities = [...(Array.isArray(spec.entities) ? spec.entities.map(String) : [])];
  if (target.namespace) entities.push(nsKey(target.namespace));
  if (target.namespace && target.name && target.resource === 'secrets') entities.push(secretKey(target.namespace, target.name));
  if (target.namespace && target.name && target.resource === 'pods') entities.push(podKey(target.namespace, target.name));
  const rule = typeof spec.rule === 'string' ? spec.rule : `test-${kind}`;
  const time = BASE_TIME + (at ?? 0);
  return {
    id: signalId(rule, 'k8s-audit', `test-${index}-${time}`),
    source: (typeof spec.source === 'string' ? spec.source : 'k8s-audit') as SourceName,
    kind,
    severity,
    title: typeof spec.title === 'string' ? spec.title : `${kind} by ${actor.key}`,
    eventTime: time,
    observedTime: time,
    actor,
    target,
    outcome: (['allowed', 'denied', 'unknown'].includes(String(spec.outcome)) ? spec.outcome : 'allowed') as Outcome,
    entities,
    mitre: [],
    rule: { id: rule, title: rule },
    matched: [],
    attributes,
    excerpt: {},
  };
}

/** Validates a parsed test document. */
export function loadCorrelationTests(file: string, doc: unknown, problems: Problem[]): CorrelationTestCase[] {
  if (!isObj(doc) || !Array.isArray(doc.tests)) {
    problems.push({ file, field: 'tests', message: 'a correlation test file is a mapping with tests: [ {name, signals, expect} ]' });
    return [];
  }
  return doc.tests.flatMap((t, i): CorrelationTestCase[] => {
    const name = isObj(t) && typeof t.name === 'string' ? t.name : `tests[${i}]`;
    if (!isObj(t) || !Array.isArray(t.signals) || !Array.isArray(t.expect)) {
      problems.push({ file, item: name, field: '', message: 'a test needs name:, signals: [ … ] and expect: [ … ] (expect: [] when no incident may open)' });
      return [];
    }
    const errs: string[] = [];
    const signals = t.signals
      .flatMap((s, j) => (isObj(s) ? [signalFromSpec(s, j, errs)] : (errs.push(`signals[${j}] must be a mapping`), [])))
      .filter((s): s is Signal => !!s);
    for (const e of errs) problems.push({ file, item: name, field: 'signals', message: e });
    return [{ name, signals, expect: t.expect.filter(isObj) as IncidentExpectation[] }];
  });
}

function matches(inc: Incident, e: IncidentExpectation): string | undefined {
  if (e.actor && inc.actor.key !== e.actor) return `actor ${inc.actor.key}`;
  for (const c of e.correlations ?? [])
    if (!inc.correlations.some((m) => m.ruleId === c)) return `correlations [${inc.correlations.map((m) => m.ruleId).join(', ')}]`;
  if (e.severity && inc.severity !== e.severity) return `severity ${inc.severity}`;
  if (e.signals !== undefined && inc.signalCount !== e.signals) return `${inc.signalCount} signals`;
  for (const x of e.entities ?? []) if (!inc.entities.includes(x)) return `entities without ${x}`;
  if (e.status && inc.status !== e.status) return `status ${inc.status}`;
  return undefined;
}

/** Runs test cases against compiled correlations; incidents are compared after all signals. */
export function runCorrelationTests(
  file: string,
  cases: CorrelationTestCase[],
  correlations: readonly CompiledCorrelation[],
  policy: Partial<IncidentPolicy> = {},
): CorrelationTestResult[] {
  return cases.map((t) => {
    let now = BASE_TIME;
    const manager = new IncidentManager(new CorrelationEngine(correlations), { now: () => now }, policy);
    const byId = new Map<string, Incident>();
    for (const s of [...t.signals].sort((a, b) => a.observedTime - b.observedTime)) {
      now = s.observedTime;
      for (const inc of manager.process([s]).incidents) byId.set(inc.id, inc);
    }
    const live = [...byId.values()].filter((i) => i.resolution !== 'merged');
    const failures: string[] = [];
    const claimed = new Set<Incident>();
    for (const e of t.expect) {
      const hit = live.find((i) => !claimed.has(i) && !matches(i, e));
      if (hit) claimed.add(hit);
      else
        failures.push(
          `no incident matches ${JSON.stringify(e)}; got ${live.map((i) => `{actor ${i.actor.key}, severity ${i.severity}, ${i.signalCount} signals, correlations [${i.correlations.map((c) => c.ruleId).join(', ')}]}`).join(' ') || 'none'}`,
        );
    }
    for (const i of live)
      if (!claimed.has(i))
        failures.push(
          `unexpected incident: actor ${i.actor.key}, severity ${i.severity}, ${i.signalCount} signals, correlations [${i.correlations.map((c) => c.ruleId).join(', ')}]`,
        );
    return { file, name: t.name, ok: failures.length === 0, failures, expects: [...new Set(t.expect.flatMap((e) => e.correlations ?? []))] };
  });
}
