import { describe, expect, it } from 'vitest';
import { readReal } from '../../test/helpers/fixtures.js';
import { normalizeAuditEvent, parseAdmissionMessage, parseAuthzReason } from './normalize.js';
import { decodeAuditJson, decodeAuditLines, type AuditEvent } from './parse.js';

const one = (rel: string): AuditEvent => {
  const b = decodeAuditJson(readReal(rel));
  expect(b.invalid).toEqual([]);
  return b.events[0]!;
};

describe('normalizeAuditEvent', () => {
  it('names the binding and role that allowed a request, from authorization.k8s.io/reason', () => {
    const ev = one('k8s-audit/falco-trace-files/create_nginx_pod_privileged.json');
    const n = normalizeAuditEvent(ev, 0);
    const s = n.details();
    expect(s.actor).toEqual({
      key: 'sa:kube-system/replicaset-controller',
      type: 'serviceaccount',
      name: 'system:serviceaccount:kube-system:replicaset-controller',
      namespace: 'kube-system',
    });
    expect(s.attributes).toMatchObject({
      binding: 'ClusterRoleBinding/system:controller:replicaset-controller',
      role: 'ClusterRole/system:controller:replicaset-controller',
    });
    expect(s.entities).toEqual(
      expect.arrayContaining([
        'ns:default',
        'binding:ClusterRoleBinding/system:controller:replicaset-controller',
        'pod:default/nginx-deployment-5cdcc99dbf-rgw6z',
      ]),
    );
    // v1beta1 event: time from stageTimestamp.
    expect(s.time).toBe(Date.parse('2018-10-25T14:09:12.581541Z'));
    expect(n.derived.pod).toMatchObject({ privileged: true, hostNetwork: false });
    expect(s.outcome).toBe('allowed');
  });

  it('parses RoleBinding reasons with their namespace and subjects', () => {
    expect(
      parseAuthzReason('allow', 'RBAC: allowed by RoleBinding "read-secrets/payments" of Role "secret-reader" to ServiceAccount "frontend/shop"'),
    ).toMatchObject({
      bindingKind: 'RoleBinding',
      bindingName: 'read-secrets',
      bindingNamespace: 'payments',
      roleKind: 'Role',
      roleName: 'secret-reader',
      subjectKind: 'ServiceAccount',
      subject: 'frontend/shop',
    });
    expect(parseAuthzReason('allow', '')).toEqual({ decision: 'allow', reason: '' });
  });

  it('makes the impersonator (who holds the impersonate permission) the actor; the identity worn is context', () => {
    const lines = decodeAuditLines(readReal('k8s-audit/audit2rbac/demo.log'));
    const sa = lines.events.find((e) => e.impersonatedUser?.username === 'system:serviceaccount:ns1:sa1')!;
    const ev = normalizeAuditEvent(sa, 0);
    const s = ev.details();
    expect(s.actor.key).toBe('user:system:admin');
    expect(ev.derived.effective.key).toBe('sa:ns1/sa1');
    expect(s.attributes.impersonator).toBe('system:admin');
    expect(s.attributes.impersonated).toBe('system:serviceaccount:ns1:sa1');
    expect(s.entities).toContain('sa:ns1/sa1');
  });

  it('names a 401 client by its address, not system:anonymous (a revoked or expired token is not anonymous)', () => {
    const ev = normalizeAuditEvent(
      {
        auditID: 'x',
        stage: 'ResponseComplete',
        verb: 'get',
        requestURI: '/api/v1/secrets',
        user: {},
        sourceIPs: ['198.51.100.23'],
        responseStatus: { code: 401 },
      },
      0,
    );
    expect(ev.details().actor).toMatchObject({ key: 'ip:198.51.100.23', type: 'ip' });
  });

  it('marks forbidden requests denied and RequestReceived events not final', () => {
    const [received, complete] = decodeAuditLines(readReal('k8s-audit/log-backend-openshift-403-forbid.jsonl')).events.map((e) => normalizeAuditEvent(e, 5));
    expect(received!.final).toBe(false);
    expect(complete!.final).toBe(true);
    expect(complete!.details().outcome).toBe('denied');
    expect(complete!.details().actor.type).toBe('anonymous');
  });

  it('reads Pod Security audit violations without treating the request as denied', () => {
    const ev = one('k8s-audit/psa-audit-violations-kind-v1.30.jsonl');
    const d = normalizeAuditEvent(ev, 0).derived;
    expect(d.admission.denied).toBe(false);
    expect(d.admission.violations).toMatch(/^would violate PodSecurity "restricted:latest"/);
  });

  it('tolerates JSON-patch request objects and truncated events', () => {
    const patch = normalizeAuditEvent(
      {
        auditID: 'p',
        stage: 'ResponseComplete',
        verb: 'patch',
        user: { username: 'u' },
        objectRef: { resource: 'deployments', namespace: 'a', name: 'd' },
        requestObject: [{ op: 'replace', path: '/spec/replicas', value: 3 }],
      } as AuditEvent,
      0,
    );
    expect(patch.derived.podSpec).toBeUndefined();
    const truncated = normalizeAuditEvent(
      { auditID: 't', stage: 'ResponseComplete', verb: 'create', user: { username: 'u' }, annotations: { 'audit.k8s.io/truncated': 'true' } } as AuditEvent,
      0,
    );
    expect(truncated.details().attributes.truncated).toBe('true');
  });

  it('finds the pod spec inside workloads and CronJobs', () => {
    const cron = {
      auditID: 'c',
      stage: 'ResponseComplete',
      verb: 'create',
      user: { username: 'u' },
      requestObject: {
        kind: 'CronJob',
        spec: { jobTemplate: { spec: { template: { spec: { hostPID: true, containers: [{ image: 'x' }], volumes: [{ hostPath: { path: '/' } }] } } } } },
      },
    };
    const d = normalizeAuditEvent(cron as AuditEvent, 0).derived;
    expect(d.pod).toMatchObject({ hostPID: true, hostPaths: ['/'], images: ['x'] });
  });
});

describe('parseAdmissionMessage on real denial messages', () => {
  const text = readReal('admission/denial-messages.txt');
  const lineWith = (needle: string) => text.split('\n').find((l) => l.includes(needle))!;

  it('extracts Gatekeeper constraint names, in both message formats', () => {
    expect(parseAdmissionMessage(lineWith('[privileged] Security Violation'))).toMatchObject({
      engine: 'gatekeeper',
      webhook: 'validation.gatekeeper.sh',
      policies: ['privileged'],
    });
    expect(parseAdmissionMessage(lineWith('[denied by allowed-registry]'))).toMatchObject({ engine: 'gatekeeper', policies: ['allowed-registry'] });
  });

  it('extracts Kyverno policy names from the YAML block', () => {
    const start = text.indexOf('Error from server: error when creating "nginx_privileged.yaml"');
    const msg = text.slice(start, text.indexOf('# src', start));
    expect(parseAdmissionMessage(msg)).toMatchObject({
      engine: 'kyverno',
      webhook: 'validate.kyverno.svc-fail',
      policies: ['pod-security-admission-disallow-privileged'],
    });
    expect(parseAdmissionMessage(lineWith('james-disallow-privileged-containers'))).toMatchObject({
      engine: 'kyverno',
      policies: ['james-disallow-privileged-containers'],
    });
  });

  it('extracts the Pod Security level', () => {
    expect(parseAdmissionMessage(lineWith('violates PodSecurity "restricted:latest"'))).toMatchObject({
      engine: 'pod-security',
      policies: ['restricted:latest'],
    });
  });

  it('leaves plain RBAC denials alone', () => {
    expect(parseAdmissionMessage('pods is forbidden: User "bob" cannot list pods in the namespace "default"')).toBeUndefined();
  });
});
