/**
 * The loki-mesh rule pack through the real detection engine: the rule tests of
 * rules/detections/loki-mesh.test.yaml (run here with the Loki schema registered alongside the
 * audit one), and signals from every real mesh and Gatekeeper fixture line.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AUDIT_SCHEMA } from '../connectors/k8s-audit/normalize.js';
import { LOKI_SOURCE } from '../connectors/loki/source.js';
import { compileRules, type RuleFileInput } from '../correlator/detection/compile.js';
import { Detector } from '../correlator/detection/engine.js';
import { formatProblem, type Problem } from '../correlator/detection/problems.js';
import { loadRuleTestFile, runRuleTests } from '../correlator/detection/rule-tests.js';
import type { Signal } from '../correlator/signal.js';
import { readYaml } from '../services/rules.js';
import { readReal } from './helpers/fixtures.js';

const rulesFile = fileURLToPath(new URL('../rules/detections/loki-mesh.yaml', import.meta.url));
const testFile = fileURLToPath(new URL('../rules/detections/loki-mesh.test.yaml', import.meta.url));
const commonFile = fileURLToPath(new URL('../rules/detections/common.yaml', import.meta.url));

function compileLoki() {
  const problems: Problem[] = [];
  const files: RuleFileInput[] = [commonFile, rulesFile].map((file) => ({ file, doc: readYaml(file, problems) }));
  const compiled = compileRules(files, [AUDIT_SCHEMA, LOKI_SOURCE.schema]);
  return { ...compiled, problems: [...problems, ...compiled.problems] };
}

const realLines = (rel: string) =>
  readReal(rel)
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'));

describe('rules/detections/loki-mesh.yaml', () => {
  const compiled = compileLoki();
  const detector = new Detector(compiled.rules, [AUDIT_SCHEMA, LOKI_SOURCE.schema]);
  const lokiRules = compiled.rules.filter((r) => r.file === rulesFile);

  it('lints clean with the loki schema registered', () => {
    expect(compiled.problems.map(formatProblem)).toEqual([]);
    expect(lokiRules.map((r) => r.id).sort()).toEqual([
      'loki-gatekeeper-denied',
      'loki-linkerd-authz-denied',
      'loki-linkerd-tls-failed',
      'loki-mesh-authz-denied',
      'loki-mesh-ext-authz-denied',
      'loki-mesh-mtls-plaintext-refused',
      'loki-mesh-service-auth-failed',
      'loki-mesh-upstream-tls-failed',
    ]);
  });

  it('passes its rule tests, and every rule is expected to fire somewhere', () => {
    const problems: Problem[] = [];
    const tf = loadRuleTestFile(testFile, rulesFile, readYaml(testFile, problems), () => [], problems);
    expect(problems.map(formatProblem)).toEqual([]);
    const ids = new Set(lokiRules.map((r) => r.id));
    const results = runRuleTests(
      tf,
      detector,
      (source, value) => (source === 'loki' ? LOKI_SOURCE.decode(value, 0) : { events: [], invalid: [`no source ${source}`] }),
      ids,
    );
    expect(results.filter((r) => !r.ok).map((r) => `${r.name}: ${r.failures.join('; ')}`)).toEqual([]);
    expect(results.length).toBeGreaterThanOrEqual(9);
    const expected = new Set(tf.tests.flatMap((t) => t.expect.map((e) => e.rule)));
    expect([...ids].filter((id) => !expected.has(id))).toEqual([]);
  });

  const detect = (line: string, labels: Record<string, string>): Signal[] =>
    LOKI_SOURCE.decode({ labels, line, time: '1764410400000000000' }, 1).events.flatMap((e) => detector.detect(e));
  const sidecar = { namespace: 'payments', pod: 'postgres-0', container: 'istio-proxy' };

  it('turns the real mesh sample lines into the expected signal kinds', () => {
    const kinds = (lines: string[], labels: Record<string, string>) =>
      lines.map(
        (l) =>
          detect(l, labels)
            .map((s) => `${s.kind}/${s.severity}`)
            .join(',') || '-',
      );
    expect(kinds(realLines('mesh/istio-access-log-text-samples.log'), sidecar)).toEqual([
      '-', // 418 via upstream (client side)
      '-', // 418 (server side)
      'mesh.authz_denied/medium', // rbac named policy
      'mesh.authz_denied/medium', // rbac [none]
      'mesh.authz_denied/medium', // at a gateway
      'mesh.authz_denied/low', // ext_authz
      'mtls.failed/medium', // NR filter_chain_not_found
      'mtls.failed/medium',
      '-', // UC without a TLS error: the server's NR line is the evidence
      'mtls.failed/medium',
      'mtls.failed/medium', // URX,UF CERTIFICATE_VERIFY_FAILED
      '-', // UH
      '-', // URX 500
      'mesh.authz_denied/medium', // VM rbac [none]
    ]);
    expect(kinds(realLines('mesh/istio-access-log-json-samples.jsonl'), sidecar)).toEqual(['-', '-', '-']);
    expect(kinds(realLines('mesh/envoy-plain-response-flag-samples.log'), { job: 'envoy' })).toEqual(['-', '-', '-', '-', '-', '-', '-']);
    expect(kinds(realLines('mesh/linkerd-proxy-log-samples.log'), { namespace: 'emojivoto', pod: 'web-5f86686c4d-58p7k', container: 'linkerd-proxy' })).toEqual(
      ['mesh.authz_denied/medium', '-', 'mesh.authz_denied/medium', '-', 'mesh.authz_denied/medium', '-', 'mtls.failed/medium', 'mtls.failed/medium', '-'],
    );
    expect(kinds(realLines('admission/gatekeeper-controller-log-denies.jsonl'), { namespace: 'gatekeeper-system' })).toEqual([
      'admission.denied/low',
      'admission.denied/low',
      'admission.denied/low',
    ]);
  });

  it('builds signals with deterministic ids, the rule that matched and a redacted excerpt', () => {
    const line = realLines('mesh/istio-access-log-text-samples.log')[2]!;
    const [a] = detect(line, sidecar);
    const [b] = detect(line, sidecar);
    expect(a).toBeDefined();
    expect(a!.id).toBe(b!.id);
    expect(a!.id).toMatch(/^[0-9a-f]{32}$/);
    expect(a!.source).toBe('loki');
    expect(a!.rule.id).toBe('loki-mesh-authz-denied');
    expect(a!.matched.map((m) => m.field)).toEqual(['format', 'mesh.authzDenied', 'mesh.authzEngine']);
    expect(a!.eventTime).toBe(Date.parse('2026-10-09T08:05:55.932Z'));
    expect(a!.excerpt).toMatchObject({ tenant: 'fake', labels: sidecar });
    expect(a!.title).toBe('ip:10.244.0.12 denied GET payments/postgres/status/200 by AuthorizationPolicy starfleet/probe-deny-status');
    // Another stream or another tenant is another event.
    const [c] = detect(line, { ...sidecar, pod: 'postgres-1' });
    expect(c!.id).not.toBe(a!.id);
  });

  it('redacts credentials that a request path carries into titles, attributes and excerpts', () => {
    const line =
      '[2026-11-29T10:00:07.000Z] "GET /v1/x?token=s3cr3t-value HTTP/1.1" 403 - rbac_access_denied_matched_policy[none] - "-" 0 19 0 - "-" "curl/8" "id-1" "ledger:8080" "-" inbound|8080|| - 10.244.1.21:8080 10.244.2.15:1 - default';
    const [s] = detect(line, sidecar);
    const text = JSON.stringify(s);
    expect(text).not.toContain('s3cr3t-value');
    expect(s!.attributes.path).toContain('token=[REDACTED]');
  });
});
