/**
 * The shipped detection pack against real audit payloads from public sources (test/fixtures/real,
 * see SOURCES.md there): Falco's k8s-audit trace files with the detection Falco expects of each,
 * the audit2rbac demo log, and logs captured from kind, OpenShift and a webhook backend.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { decodeAuditJson, decodeAuditLines, type DecodedBatch } from '../connectors/k8s-audit/parse.js';
import { normalizeAuditEvent } from '../connectors/k8s-audit/normalize.js';
import { severityRank } from '../correlator/severity.js';
import type { Signal } from '../correlator/signal.js';
import { loadDetector } from '../services/rules.js';

const AUDIT_DIR = new URL('./fixtures/real/k8s-audit/', import.meta.url);
const detector = loadDetector();

function decode(rel: string): DecodedBatch {
  const text = readFileSync(fileURLToPath(new URL(rel, AUDIT_DIR)), 'utf8');
  return rel.endsWith('.json') ? decodeAuditJson(text) : decodeAuditLines(text);
}

/** Decodes a fixture (which must be entirely valid) and runs every event through the pack. */
function detect(rel: string): Signal[] {
  const batch = decode(rel);
  expect(batch.invalid, `${rel}: invalid events`).toEqual([]);
  expect(batch.events.length, `${rel}: no events decoded`).toBeGreaterThan(0);
  const now = Date.now();
  return batch.events.flatMap((ev) => detector.detect(normalizeAuditEvent(ev, now)));
}

// The activity trail (info) is checked on its own: these are the detections proper.
const kinds = (signals: Signal[]) =>
  signals
    .filter((s) => s.severity !== 'info')
    .map((s) => s.kind)
    .sort();
const aboveLow = (signals: Signal[]) => signals.filter((s) => severityRank(s.severity) > severityRank('low')).map((s) => `${s.rule.id} (${s.severity})`);

describe('real fixtures', () => {
  it('resolve to test/fixtures/real/k8s-audit inside the repository', () => {
    expect(fileURLToPath(AUDIT_DIR)).toMatch(/\/test\/fixtures\/real\/k8s-audit\/$/);
    expect(existsSync(fileURLToPath(new URL('falco-trace-files/exec_pod.json', AUDIT_DIR)))).toBe(true);
  });
});

describe('Falco k8s-audit trace files raise the detection Falco expects', () => {
  // file → the signal kinds the pack must raise for it, no more, no fewer
  const cases: [string, string[]][] = [
    ['exec_pod.json', ['pod.exec']],
    ['attach_pod.json', ['pod.attach']],
    ['attach_cluster_admin_role.json', ['rbac.binding_change', 'rbac.cluster_admin_binding']],
    ['create_nginx_pod_privileged.json', ['pod.privileged']],
    ['create_nginx_pod_sensitive_mount.json', ['pod.hostpath']],
    ['create_cluster_role_wildcard_resources.json', ['rbac.wildcard_role']],
    ['anonymous_creates_namespace_foo.json', ['auth.anonymous_allowed']],
    ['create_configmap_sensitive_values.jsonl', Array<string>(6).fill('configmap.credentials')],
    ['delete_secret.json', ['secret.deleted']],
  ];
  it.each(cases)('%s', (file, want) => {
    expect(kinds(detect(`falco-trace-files/${file}`))).toEqual(want);
  });

  it('records the activity trail Falco keeps at INFO: the binding, the role and the namespace created, the secret deleted', () => {
    const trail = (file: string) =>
      detect(`falco-trace-files/${file}`)
        .filter((s) => s.severity === 'info')
        .map((s) => `${s.rule.id}: ${s.title}`);
    expect(trail('attach_cluster_admin_role.json')).toEqual([expect.stringMatching(/^k8s-activity-created: .* created ClusterRoleBinding /)]);
    expect(trail('create_cluster_role_wildcard_resources.json')).toEqual([expect.stringMatching(/^k8s-activity-created: .* created ClusterRole /)]);
    expect(trail('delete_secret.json')).toEqual([expect.stringMatching(/^k8s-activity-deleted: .* deleted secret /)]);
  });

  it('the privileged pod is reported although a controller created it, naming the controller and the owner', () => {
    const [s] = detect('falco-trace-files/create_nginx_pod_privileged.json');
    expect(s?.rule.id).toBe('k8s-privileged-pod-by-controller');
    expect(s?.actor.key).toBe('sa:kube-system/replicaset-controller');
    expect(s?.title).toContain('ReplicaSet nginx-deployment-5cdcc99dbf');
  });

  it('severities: cluster-admin binding high, anonymous write critical, exec medium', () => {
    const sev = (file: string, kind: string) => detect(`falco-trace-files/${file}`).find((s) => s.kind === kind)?.severity;
    expect(sev('attach_cluster_admin_role.json', 'rbac.cluster_admin_binding')).toBe('high');
    expect(sev('anonymous_creates_namespace_foo.json', 'auth.anonymous_allowed')).toBe('critical');
    expect(sev('exec_pod.json', 'pod.exec')).toBe('medium');
  });

  it('credential values never leave the ConfigMap signals in clear', () => {
    const signals = detect('falco-trace-files/create_configmap_sensitive_values.jsonl');
    const text = JSON.stringify(signals);
    expect(text).not.toContain('MY-KEY');
    expect(text).not.toContain('MY-ID');
  });

  it.each(['create_service_account_token_secret.json', 'create_secret.json', 'create_kube_system_secret.json'])(
    '%s (negative case) raises nothing above low',
    (file) => {
      expect(aboveLow(detect(`falco-trace-files/${file}`))).toEqual([]);
    },
  );
});

describe('audit2rbac demo log (system:admin impersonating alice, bob and ns1:sa1)', () => {
  it('raises rbac.denied for each impersonated identity, with the impersonator as the actor', () => {
    const signals = detect('audit2rbac/demo.log').filter((s) => s.kind === 'rbac.denied');
    expect([...new Set(signals.map((s) => s.actor.key))]).toEqual(['user:system:admin']);
    expect([...new Set(signals.map((s) => s.attributes.impersonated))].sort()).toEqual(['alice', 'bob', 'system:serviceaccount:ns1:sa1']);
  });

  it('reports the impersonation: low for users, medium for the service account, never high', () => {
    const signals = detect('audit2rbac/demo.log');
    const imp = signals.filter((s) => s.kind === 'auth.impersonation');
    expect(imp).toHaveLength(37);
    expect(imp.every((s) => s.attributes.impersonator === 'system:admin')).toBe(true);
    expect(new Set(imp.map((s) => s.actor.key))).toEqual(new Set(['user:system:admin']));
    expect(new Set(imp.filter((s) => s.entities.includes('sa:ns1/sa1')).map((s) => s.severity))).toEqual(new Set(['medium']));
    expect(new Set(imp.filter((s) => !s.entities.includes('sa:ns1/sa1')).map((s) => s.severity))).toEqual(new Set(['low']));
  });
});

describe('captured logs decode cleanly and stay quiet where nothing happened', () => {
  it('webhook EventList bodies (k8s 1.20): one body per line, kubectl run in kube-system', () => {
    const batch = decode('webhook-eventlist-bodies-k8s1.20.jsonl');
    expect(batch.invalid).toEqual([]);
    expect(batch.events).toHaveLength(2);
    expect(detect('webhook-eventlist-bodies-k8s1.20.jsonl')).toEqual([]);
  });

  it('kind log backend (kubelet traffic)', () => {
    expect(detect('log-backend-kind-v1.30.jsonl')).toEqual([]);
  });

  it('OpenShift: anonymous HEAD / refused is an rbac denial, not an allowed anonymous request', () => {
    const signals = detect('log-backend-openshift-403-forbid.jsonl');
    expect(signals.map((s) => [s.kind, s.actor.key, s.outcome])).toEqual([['rbac.denied', 'user:system:anonymous', 'denied']]);
  });

  it('Pod Security audit violations (kind v1.30) become one low admission.psa_violation', () => {
    const signals = detect('psa-audit-violations-kind-v1.30.jsonl');
    expect(signals.map((s) => [s.kind, s.severity, s.actor.key])).toEqual([['admission.psa_violation', 'low', 'user:kubernetes-admin']]);
  });
});
