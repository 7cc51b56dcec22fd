/**
 * The span rules (rules/detections/otlp.yaml) compiled against the OTLP source alone and run through
 * their own rule tests, plus the real payloads in test/fixtures/real/otlp through a real Detector.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { OTLP_SOURCE } from '../connectors/otlp/source.js';
import { compileRules } from '../correlator/detection/compile.js';
import { Detector } from '../correlator/detection/engine.js';
import { formatProblem, type Problem } from '../correlator/detection/problems.js';
import { loadRuleTestFile, runRuleTests } from '../correlator/detection/rule-tests.js';
import { readReal } from './helpers/fixtures.js';

const RULES = fileURLToPath(new URL('../rules/detections/otlp.yaml', import.meta.url));
const TESTS = fileURLToPath(new URL('../rules/detections/otlp.test.yaml', import.meta.url));

/** The span rules, compiled as the service would once OTLP_SOURCE is registered. */
function otlpDetector(): Detector {
  const compiled = compileRules([{ file: RULES, doc: parse(readFileSync(RULES, 'utf8')) as unknown }], [OTLP_SOURCE.schema]);
  expect(compiled.problems.map(formatProblem)).toEqual([]);
  return new Detector(compiled.rules, [OTLP_SOURCE.schema]);
}

describe('span rules', () => {
  it('lint clean against the OTLP schema', () => {
    const d = otlpDetector();
    expect(d.rules.map((r) => r.id).sort()).toEqual(['otlp-grpc-auth-denied', 'otlp-mesh-authz-denied', 'otlp-mtls-failed', 'otlp-service-auth-denied']);
  });

  it('pass their rule tests, and every rule is expected to fire somewhere', () => {
    const detector = otlpDetector();
    const problems: Problem[] = [];
    const tf = loadRuleTestFile(TESTS, RULES, parse(readFileSync(TESTS, 'utf8')) as unknown, () => [], problems);
    expect(problems.map(formatProblem)).toEqual([]);
    const ids = new Set(detector.rules.map((r) => r.id));
    const results = runRuleTests(tf, detector, (_source, value) => OTLP_SOURCE.decode(value, 0), ids);
    expect(results.filter((r) => !r.ok).map((r) => `${r.name}: ${r.failures.join('; ')}`)).toEqual([]);
    const covered = new Set(tf.tests.flatMap((t) => t.expect.map((e) => e.rule)));
    expect([...ids].filter((id) => !covered.has(id))).toEqual([]);
    expect(tf.tests.some((t) => t.expect.length === 0)).toBe(true);
  });

  it('raise nothing on the real Tempo and OTLP examples (errors there are a 500 and a database error)', () => {
    const detector = otlpDetector();
    for (const f of [
      'otlp-trace-example.json',
      'otlp-http-json-push.tempo-docs.json',
      'api-v2-traces-response.docs.json',
      'tempo-gogo-jsonpb-trace.servicegraphs-testdata.json',
    ]) {
      const { events, invalid } = OTLP_SOURCE.decode(JSON.parse(readReal(`otlp/${f}`)), 0);
      expect(invalid, f).toEqual([]);
      expect(events.length, f).toBeGreaterThan(0);
      expect(
        events.flatMap((e) => detector.detect(e)),
        f,
      ).toEqual([]);
    }
  });
});
