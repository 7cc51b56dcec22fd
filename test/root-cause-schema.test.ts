/**
 * The root cause's new fields (escalation, credential source, impersonated identities, the
 * escalation and credential evidence) are in the API document, and incidents stored before them
 * still validate and load: every new field is optional.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { CorrelationEngine } from '../correlator/correlation/engine.js';
import type { Incident, RootCause } from '../correlator/incident.js';
import { IncidentManager } from '../correlator/incidents.js';
import type { Signal } from '../correlator/signal.js';
import { openApiDocument } from '../services/api/openapi.js';
import { RootCause as RootCauseSchema } from '../services/api/schemas.js';

const doc = openApiDocument();
const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
addFormats.default(ajv);
ajv.addSchema(doc, 'openapi.json');
const validRootCause = ajv.getSchema('openapi.json#/components/schemas/RootCause')!;

const OLD: RootCause = {
  summary: 'Service account frontend/frontend read secrets in payments through ClusterRoleBinding frontend-secrets-reader (ClusterRole secret-reader).',
  evidence: [{ type: 'enabler', entity: 'binding:ClusterRoleBinding/frontend-secrets-reader', detail: 'allowed secret reads', signalIds: ['a'] }],
  confidence: 0.9,
  actor: 'sa:frontend/frontend',
  enablingBinding: { kind: 'ClusterRoleBinding', name: 'frontend-secrets-reader', roleKind: 'ClusterRole', roleName: 'secret-reader' },
};

const NEW: RootCause = {
  ...OLD,
  evidence: [
    ...OLD.evidence,
    { type: 'escalation', entity: 'binding:ClusterRoleBinding/ci-debug', detail: 'created and used', signalIds: ['b'] },
    { type: 'credential', entity: 'sa:ci/ci-deployer', detail: 'token used from 203.0.113.7 with kubectl/v1.31.0', signalIds: ['c'] },
  ],
  escalation: { kind: 'ClusterRoleBinding', name: 'ci-debug', roleKind: 'ClusterRole', roleName: 'cluster-admin' },
  credentialSource: { detail: 'token used from 203.0.113.7 with kubectl/v1.31.0', sourceIP: '203.0.113.7', userAgent: 'kubectl/v1.31.0' },
  impersonated: ['system:serviceaccount:x:y'],
};

describe('root cause in the API document', () => {
  it('accepts a root cause stored before the new fields, and one with all of them', () => {
    for (const rc of [OLD, NEW, { summary: '.', evidence: [], confidence: 0.3, actor: 'user:alice' }]) {
      expect(validRootCause(rc), JSON.stringify(validRootCause.errors)).toBe(true);
      expect(RootCauseSchema.safeParse(rc).success).toBe(true);
    }
  });

  it('refuses a misspelt field, so the document stays exact', () => {
    expect(validRootCause({ ...OLD, escalations: [] })).toBe(false);
  });

  it('resumes an incident stored without the new fields and fills them in', () => {
    const t0 = Date.UTC(2026, 10, 29, 7, 0, 0);
    const ci = { key: 'sa:ci/ci-deployer', type: 'serviceaccount' as const, name: 'system:serviceaccount:ci:ci-deployer', namespace: 'ci' };
    const base = {
      source: 'k8s-audit' as const,
      severity: 'critical' as const,
      observedTime: t0,
      actor: ci,
      outcome: 'allowed' as const,
      mitre: [],
      matched: [],
    };
    const create: Signal = {
      ...base,
      id: 'create',
      kind: 'rbac.cluster_admin_binding',
      title: 'cluster-admin binding ci-debug',
      eventTime: t0,
      target: { resource: 'clusterrolebindings', apiGroup: 'rbac.authorization.k8s.io', name: 'ci-debug', verb: 'create' },
      entities: ['binding:ClusterRoleBinding/ci-rbac-manager'],
      rule: { id: 'r1', title: 'r1' },
      attributes: { binding: 'ClusterRoleBinding/ci-rbac-manager', role: 'ClusterRole/rbac-manager' },
      excerpt: {},
    };
    const m1 = new IncidentManager(new CorrelationEngine([]), { now: () => t0 });
    const [stored] = m1.process([create]).incidents;
    // As an older version stored it: no escalation, no credential source.
    const old = structuredClone(stored!) as Incident;
    old.rootCause = { ...OLD, actor: ci.key };
    const m2 = new IncidentManager(new CorrelationEngine([]), { now: () => t0 + 1000 });
    m2.restore([old]);
    const use: Signal = {
      ...base,
      id: 'use',
      kind: 'pod.exec',
      title: 'exec into etcd',
      eventTime: t0 + 1000,
      target: { namespace: 'kube-system', resource: 'pods', subresource: 'exec', name: 'etcd-0', verb: 'create' },
      entities: ['binding:ClusterRoleBinding/ci-debug'],
      rule: { id: 'r2', title: 'r2' },
      attributes: { binding: 'ClusterRoleBinding/ci-debug', role: 'ClusterRole/cluster-admin' },
      excerpt: {},
    };
    const [resumed] = m2.process([use]).incidents;
    expect(resumed!.id).toBe(old.id);
    expect(resumed!.rootCause.escalation).toMatchObject({ name: 'ci-debug', roleName: 'cluster-admin' });
    expect(resumed!.rootCause.enablingBinding).toMatchObject({ name: 'ci-rbac-manager' });
    expect(validRootCause(resumed!.rootCause), JSON.stringify(validRootCause.errors)).toBe(true);
  });
});
