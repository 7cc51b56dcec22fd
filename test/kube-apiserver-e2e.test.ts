/**
 * kubevigil against a real kube-apiserver (v1.34.4 on etcd, scripts/kube-apiserver.sh): the
 * apiserver's own audit webhook, with the audit policy kubevigil ships
 * (deploy/kube-apiserver/audit-policy.yaml), posts to a kubevigil started in this process (over
 * https with its ingest token, as in deploy/kube-apiserver/webhook-kubeconfig.yaml), while
 * kubectl plays a compromised service account. web/checkout, over-privileged by ClusterRoleBinding
 * checkout-read-secrets, reads secrets in ledger, is denied exec and RBAC escalation, and has a
 * privileged pod refused by a ValidatingAdmissionPolicy (scripts/kube-apiserver/scenario.yaml,
 * the scenario of scripts/kube-apiserver/attack.sh). kubevigil must report ONE incident for it,
 * name the binding as the root cause and propose deleting it; the binding must exist in the
 * apiserver, and deleting it must end the secret reads. The real events must carry what the rules
 * read. Skipped when the binaries are not built (scripts/kube-apiserver.sh build).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Incident } from '../correlator/incident.js';
import type { Signal } from '../correlator/signal.js';
import { loadConfig } from '../services/config.js';
import { createLogger } from '../services/logging.js';
import { serve, type Running } from '../services/main.js';
import {
  kubeApiserverSkip,
  kubeApiserverSkipNote,
  RECIPE_DIR,
  servingCertificate,
  startKubeApiserver,
  type KubeApiserver,
  type Kubectl,
  type RealAuditEvent,
  type RunResult,
  type ServingCertificate,
  run,
} from './helpers/kube-apiserver.js';
import { freePort, waitFor } from './helpers/prometheus.js';

const INGEST = `kapi-e2e-ingest-${randomBytes(12).toString('hex')}`;
const API = `kapi-e2e-api-${randomBytes(12).toString('hex')}`;
const SA_USER = 'system:serviceaccount:web:checkout';
const ACTOR = 'sa:web/checkout';
const BINDING = 'checkout-read-secrets';
const FIX = `kubectl delete clusterrolebinding ${BINDING}`;
const POLICY = 'deny-privileged-containers';
const INVENTORY_RBAC = new URL('../deploy/inventory/clusterrole.yaml', import.meta.url).pathname;

type Want = 'allow' | 'deny' | 'policy';
/** The attack, as attack.sh plays it: what the stolen token tries, and what RBAC and admission must answer. */
const ATTACK: [what: string, args: string[], want: Want][] = [
  ['who am I (SelfSubjectReview)', ['auth', 'whoami'], 'allow'],
  ['enumerate its permissions in web', ['auth', 'can-i', '--list'], 'allow'],
  ['enumerate its permissions in ledger', ['auth', 'can-i', '--list', '-n', 'ledger'], 'allow'],
  ['list secrets in every namespace', ['get', 'secrets', '-A'], 'allow'],
  ['read the ledger database password', ['get', 'secret', 'ledger-db-password', '-n', 'ledger', '-o', 'jsonpath={.data.password}'], 'allow'],
  ['exec into its own pod (pods/exec)', ['exec', 'checkout-7f9d-0', '-c', 'web', '--', 'id'], 'deny'],
  ['exec into a ledger pod (get pods denied first)', ['exec', '-n', 'ledger', 'ledger-api-0', '--', 'id'], 'deny'],
  ['bind itself to cluster-admin', ['create', 'clusterrolebinding', 'pwn-web', '--clusterrole=cluster-admin', '--serviceaccount=web:checkout'], 'deny'],
  ['create a privileged pod in the host namespaces', ['create', '-f', join(RECIPE_DIR, 'privileged-pod.yaml')], 'policy'],
  ['mint a token for ledger/ledger-worker', ['create', 'token', 'ledger-worker', '-n', 'ledger'], 'deny'],
  ['mint a token for kube-system/default', ['create', 'token', 'default', '-n', 'kube-system'], 'deny'],
  ['list nodes', ['get', 'nodes'], 'deny'],
];

function outcome(r: RunResult): Want {
  if (r.code === 0) return 'allow';
  if (r.stderr.includes(`ValidatingAdmissionPolicy '${POLICY}'`)) return 'policy';
  return /forbidden/i.test(r.stderr) ? 'deny' : (`failed (${r.code}): ${r.stderr.trim()}` as Want);
}

/** The sum of a Prometheus counter's series whose labels include `labels`. */
function counter(metrics: string, name: string, labels: string): number {
  let sum = 0;
  for (const line of metrics.split('\n')) if (line.startsWith(`${name}{`) && line.includes(labels)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

if (kubeApiserverSkip) console.warn(`test/kube-apiserver-e2e.test.ts${kubeApiserverSkipNote}`);

describe.skipIf(kubeApiserverSkip)(`kubevigil with a real kube-apiserver's audit webhook${kubeApiserverSkipNote}`, () => {
  let kv: Running | undefined;
  let kapi: KubeApiserver | undefined;
  let sa: Kubectl;
  let incident: Incident;
  let signals: Signal[] = [];
  // Made in beforeAll: a skipped suite still runs this body, and must leave nothing behind.
  let dataDir = '';
  let tls: ServingCertificate;

  /** GET from kubevigil over https (its CA), with the API token. */
  const get = (path: string): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const req = request(`${kv!.url}${path}`, { ca: readFileSync(tls.ca), headers: { authorization: `Bearer ${API}` } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
  const api = async <T>(path: string): Promise<T> => {
    const res = await get(path);
    if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${res.body}`);
    return JSON.parse(res.body) as T;
  };
  const incidents = async (): Promise<Incident[]> => {
    const page = await api<{ items: { id: string }[] }>('/api/v1/incidents?severity=info&limit=200');
    return Promise.all(page.items.map((i) => api<Incident>(`/api/v1/incidents/${i.id}`)));
  };
  const saEvents = (): RealAuditEvent[] => kapi!.auditEvents().filter((e) => e.user.username === SA_USER);

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'kv-kapi-e2e-'));
    tls = servingCertificate(dataDir);
    // kubevigil's port first: the apiserver's webhook points at it from the start (batches sent
    // before kubevigil listens are retried), and kubevigil watches that apiserver for its inventory.
    const port = await freePort();
    kapi = await startKubeApiserver({ webhookUrl: `https://127.0.0.1:${port}/ingest/k8s-audit`, webhookToken: INGEST, webhookCa: tls.ca });
    // The inventory reads the cluster as kubevigil's own service account, with exactly the
    // read-only ClusterRole deploy/inventory ships.
    for (const args of [
      ['create', 'namespace', 'kubevigil-system'],
      ['create', 'serviceaccount', 'kubevigil', '-n', 'kubevigil-system'],
      ['apply', '-f', INVENTORY_RBAC],
    ]) {
      const r = await kapi.admin(args);
      if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
    }
    const inventoryAccount = await kapi.serviceAccount('kubevigil-system', 'kubevigil');
    const kc = new KubeConfig();
    kc.loadFromFile(inventoryAccount.kubeconfig);
    const config = loadConfig({
      KUBEVIGIL_PORT: String(port),
      KUBEVIGIL_DATA_DIR: dataDir,
      KUBEVIGIL_INGEST_TOKEN: INGEST,
      KUBEVIGIL_API_TOKEN: API,
      KUBEVIGIL_LOG_LEVEL: 'silent',
      KUBEVIGIL_INVENTORY: 'off',
      KUBEVIGIL_TLS_CERT_FILE: tls.cert,
      KUBEVIGIL_TLS_KEY_FILE: tls.key,
    });
    kv = await serve(config, createLogger('silent'), { processMetrics: false, sweepSchedule: false, kubeConfig: kc });
    expect(kv.url).toMatch(/^https:/);
  }, 240_000);

  afterAll(async () => {
    try {
      await kapi?.stop();
    } finally {
      await kv?.stop();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);

  it('sets the scene as admin: namespaces, secrets, the over-broad binding, the admission policy', async () => {
    const applied = await kapi!.admin(['apply', '-f', join(RECIPE_DIR, 'scenario.yaml')]);
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    // The policy is loaded asynchronously: a server-side dry run in a namespace of its own shows when it denies.
    await waitFor(
      `ValidatingAdmissionPolicy ${POLICY} to deny a privileged pod`,
      async () => {
        const r = await kapi!.admin(['create', '--dry-run=server', '-f', join(RECIPE_DIR, 'probe-pod.yaml')]);
        return outcome(r) === 'policy' ? true : undefined;
      },
      60_000,
      500,
    );
  }, 120_000);

  it('plays the attack with the service account token, each step answered as RBAC and admission decide', async () => {
    sa = await kapi!.serviceAccount('web', 'checkout');
    const got: string[] = [];
    for (const [what, args] of ATTACK) got.push(`${what}: ${outcome(await sa(args))}`);
    expect(got).toEqual(ATTACK.map(([what, , want]) => `${what}: ${want}`));
  }, 180_000);

  it('receives every audit event through the webhook, authenticated with its ingest token', async () => {
    // The log file and the webhook get the same events (one policy); the webhook batches them every second.
    const logged = kapi!.auditEvents().length;
    await waitFor(
      `the webhook to deliver the ${logged} events of the audit log`,
      async () => {
        const m = (await get('/metrics')).body;
        return counter(m, 'kubevigil_ingest_events_total', 'source="k8s-audit"') >= logged ? m : undefined;
      },
      90_000,
      250,
    ).catch((e: Error) => {
      const why = kapi!
        .logTail(400)
        .split('\n')
        .filter((l) => /audit|webhook/i.test(l) && !l.includes('FLAG:'))
        .slice(-15);
      throw new Error(`${e.message}\nkube-apiserver's log on audit:\n${why.join('\n')}`);
    });
    await kv!.drained();
    const m = (await get('/metrics')).body;
    expect(counter(m, 'kubevigil_ingest_events_total', 'outcome="invalid"')).toBe(0);
    expect(counter(m, 'kubevigil_ingest_requests_total', 'source="k8s-audit"')).toBeGreaterThan(0);
    expect(counter(m, 'kubevigil_ingest_requests_total', 'code="401"')).toBe(0);
  }, 120_000);

  it(`reports ONE incident for ${ACTOR} with ClusterRoleBinding ${BINDING} as the root cause and "${FIX}" as a fix`, async () => {
    incident = await waitFor(
      `an incident for ${ACTOR} naming ${BINDING}`,
      async () => (await incidents()).find((i) => i.actor.key === ACTOR && i.rootCause.enablingBinding?.name === BINDING),
      60_000,
      250,
    );
    signals = (await api<{ items: Signal[] }>(`/api/v1/incidents/${incident.id}/signals?limit=5000`)).items;
    const all = await incidents();
    const others: string[] = [];
    for (const i of all.filter((x) => x.id !== incident.id)) {
      const rows = new Map<string, number>();
      for (const e of i.timeline) {
        const row = `${e.kind} ${e.ruleId} ${e.target.verb ?? ''} ${e.target.resource ?? ''}${e.target.subresource ? `/${e.target.subresource}` : ''} ${e.target.namespace ?? ''}/${e.target.name ?? ''} ${e.outcome}`;
        rows.set(row, (rows.get(row) ?? 0) + 1);
      }
      others.push(`signals of ${i.id} (${i.actor.key}):`, ...[...rows].map(([row, n]) => `  ${n}× ${row}`));
    }
    console.log(
      `incidents:\n${all.map((i) => `  ${i.severity.padEnd(8)} ${i.actor.key.padEnd(22)} ${i.signalCount} signals  ${i.title}`).join('\n')}\n` +
        `signals of ${incident.id} (${ACTOR}):\n${signals
          .map(
            (s) =>
              `  ${s.severity.padEnd(6)} ${s.kind.padEnd(30)} ${s.rule.id.padEnd(40)} ${s.target.verb ?? ''} ${s.target.resource ?? ''}${s.target.subresource ? `/${s.target.subresource}` : ''} ${s.target.namespace ?? ''}/${s.target.name ?? ''} ${s.outcome}`,
          )
          .join(
            '\n',
          )}\nroot cause: ${incident.rootCause.summary}\nremediations:\n${incident.remediations.map((r) => `  ${r.title}: ${r.commands.join(' && ')}`).join('\n')}\n${others.join('\n')}`,
    );

    expect(all.filter((i) => i.actor.key === ACTOR).map((i) => i.id)).toEqual([incident.id]);
    expect(['high', 'critical']).toContain(incident.severity);
    expect(incident.rootCause.actor).toBe(ACTOR);
    expect(incident.rootCause.enablingBinding).toMatchObject({ kind: 'ClusterRoleBinding', name: BINDING, roleName: 'all-secrets-reader' });
    expect(incident.rootCause.summary).toContain('Service account web/checkout');
    expect(incident.rootCause.summary).toContain(`ClusterRoleBinding ${BINDING}`);
    expect(incident.remediations.flatMap((r) => r.commands)).toContain(FIX);
    expect(incident.blastRadius.secrets).toContain('ledger/ledger-db-password');
    expect(incident.blastRadius.bindings).toContain(`ClusterRoleBinding/${BINDING}`);
    expect(incident.blastRadius.policies.join(' ')).toContain(POLICY);
    const kinds = new Set(incident.timeline.map((e) => e.kind));
    for (const kind of [
      'rbac.permission_enumeration',
      'secret.list_cluster_wide',
      'secret.read_cross_namespace',
      'pod.exec',
      'rbac.escalation_attempt',
      'admission.denied',
      'pod.privileged',
      'pod.host_namespace',
      'pod.hostpath',
    ])
      expect(kinds, kind).toContain(kind);
  }, 120_000);

  it('watches the same apiserver for its inventory with the read-only ClusterRole it ships, and checks its advice against it', async () => {
    type Ready = { status: string; inventory?: { synced: boolean; pending: unknown[] } };
    const ready = await waitFor(
      'the inventory to sync',
      async () => {
        const r = JSON.parse((await get('/readyz')).body) as Ready;
        return r.inventory?.synced ? r : undefined;
      },
      30_000,
      100,
    );
    expect(ready.inventory, 'the inventory listed everything with deploy/inventory/clusterrole.yaml alone').toMatchObject({ synced: true, pending: [] });
    // Root cause with the cluster's facts: the rule of the role that granted the reads.
    expect(incident.rootCause.enablingBindingInCluster?.exists).toBe(true);
    expect(JSON.stringify(incident.rootCause.enablingBindingInCluster?.grantingRules)).toContain('secrets');
    // Every suggestion was checked against the cluster, and every manifest is one the apiserver accepts.
    expect(incident.remediations.every((r) => r.basis === 'cluster-inventory')).toBe(true);
    const manifests = incident.remediations.flatMap((r) => r.manifests);
    const rejected: string[] = [];
    for (const m of manifests) {
      // The test cluster runs no Istio, Gatekeeper or Kyverno: their CRDs are not there to check against.
      if (/^apiVersion: (security\.istio\.io|constraints\.gatekeeper\.sh|templates\.gatekeeper\.sh|kyverno\.io)\//m.test(m)) continue;
      const r = await kapi!.admin(['apply', '--dry-run=server', '-f', '-'], m);
      if (r.code !== 0) rejected.push(`${r.stderr.trim()}\n${m}`);
    }
    // Every command runs against the real apiserver as written: reads must find their objects, and
    // every change is sent with --dry-run=server (a backup's redirect is dropped).
    let commands = 0;
    for (const rem of incident.remediations)
      for (const raw of rem.commands) {
        if (!raw.startsWith('kubectl ')) continue;
        let cmd = raw.replace(/\s+>\s*\S+$/, '');
        const mutating = /^kubectl(?: -n \S+)? (delete|create|label|annotate|apply|patch|rollout|scale|auth reconcile|set)\b/.test(cmd);
        if (mutating && !cmd.includes('--dry-run')) cmd += ' --dry-run=server';
        const r = await run('bash', ['-c', `${kapi!.env.KAPI_KUBECTL} ${cmd.slice('kubectl '.length)}`], {
          env: { ...process.env, KUBECONFIG: kapi!.env.KUBECONFIG },
        });
        commands++;
        // A create after the delete the dry run did not perform finds the object still there.
        if (r.code !== 0 && !(/ create /.test(cmd) && /AlreadyExists|already exists/.test(r.stderr)))
          rejected.push(`${rem.kind}: ${cmd}\n  ${r.stderr.trim()}`);
      }
    expect(commands).toBeGreaterThan(5);
    expect(rejected).toEqual([]);
    // What the commands name exists: the binding, its role, the namespaces the pods run in.
    for (const [kind, name, ns] of [
      ['clusterrolebinding', BINDING, undefined],
      ['clusterrole', 'all-secrets-reader', undefined],
      ['pod', 'checkout-7f9d-0', 'web'],
    ] as const) {
      const r = await kapi!.admin(['get', kind, name, ...(ns ? ['-n', ns] : [])]);
      expect(r.code, `${kind} ${name}`).toBe(0);
    }
  }, 120_000);

  it("every manifest the planners write (the inventory planner tests' plans) passes --dry-run=server on the apiserver", async () => {
    // The planner tests write each manifest their plans emit (KUBEVIGIL_DUMP_MANIFESTS); the
    // apiserver judges each one, in namespaces created for the purpose.
    const dir = mkdtempSync(join(tmpdir(), 'kv-manifests-'));
    const vitest = join(dirname(fileURLToPath(import.meta.url)), '..', 'node_modules', '.bin', 'vitest');
    const planned = await run(vitest, ['run', 'correlator/remediation/remediation-inventory.test.ts'], {
      env: { ...process.env, KUBEVIGIL_DUMP_MANIFESTS: dir },
      timeoutMs: 120_000,
    });
    expect(planned.code, planned.stderr.slice(-2000)).toBe(0);
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThan(10);
    const rejected: string[] = [];
    let checked = 0;
    for (const f of files) {
      const text = readFileSync(join(dir, f), 'utf8');
      if (/^apiVersion: (security\.istio\.io|constraints\.gatekeeper\.sh|templates\.gatekeeper\.sh|kyverno\.io)\//m.test(text)) continue;
      for (const ns of new Set([...text.matchAll(/^\s+namespace: ([a-z0-9-]+)$/gm)].map((m) => m[1]!))) await kapi!.admin(['create', 'namespace', ns]);
      const r = await kapi!.admin(['apply', '--dry-run=server', '-f', join(dir, f)]);
      checked++;
      if (r.code !== 0) rejected.push(`${f}: ${r.stderr.trim()}`);
    }
    rmSync(dir, { recursive: true, force: true });
    expect(checked).toBeGreaterThan(10);
    expect(rejected).toEqual([]);
  }, 180_000);

  it('the binding the fix names exists in the apiserver and grants the reads; applying the fix ends them', async () => {
    const got = await kapi!.admin(['get', 'clusterrolebinding', BINDING, '-o', 'json']);
    expect(got.code, got.stderr).toBe(0);
    const crb = JSON.parse(got.stdout) as { roleRef: { kind: string; name: string }; subjects: { kind: string; name: string; namespace?: string }[] };
    expect(crb.roleRef).toMatchObject({ kind: 'ClusterRole', name: 'all-secrets-reader' });
    expect(crb.subjects).toContainEqual({ kind: 'ServiceAccount', name: 'checkout', namespace: 'web' });
    expect((await kapi!.admin(['auth', 'can-i', 'get', 'secrets', '-n', 'ledger', `--as=${SA_USER}`])).stdout.trim()).toBe('yes');

    const fix = await kapi!.admin(FIX.split(' ').slice(1));
    expect(fix.code, fix.stderr).toBe(0);
    expect(outcome(await sa(['get', 'secret', 'ledger-db-password', '-n', 'ledger']))).toBe('deny');
    expect(outcome(await sa(['get', 'secrets', '-n', 'web']))).toBe('deny');
  }, 60_000);

  it('the real events carry what the rules read: one exec signal per request though logged at two stages', () => {
    const events = saEvents();
    const execs = new Map<string, string[]>();
    for (const e of events.filter((e) => e.objectRef?.subresource === 'exec' && e.objectRef.namespace === 'web'))
      execs.set(e.auditID, [...(execs.get(e.auditID) ?? []), e.stage]);
    // kubectl 1.30+ asks over WebSockets (GET), then falls back to SPDY (POST): two requests, each logged when
    // the response starts and when it completes.
    expect(execs.size).toBeGreaterThanOrEqual(1);
    for (const stages of execs.values()) expect(stages.sort()).toEqual(['ResponseComplete', 'ResponseStarted']);
    const execSignals = signals.filter((s) => s.kind === 'pod.exec' && s.target.namespace === 'web');
    expect(execSignals).toHaveLength(execs.size);
    expect(new Set(execSignals.map((s) => s.id)).size).toBe(execs.size);
    expect(incident.timeline.filter((e) => e.kind === 'pod.exec' && e.target.namespace === 'web')).toHaveLength(execs.size);
  });

  it('the real events carry what the rules read: RBAC reasons, the admission denial and the pod spec', () => {
    const events = saEvents();
    const read = events.find(
      (e) => e.verb === 'get' && e.objectRef?.resource === 'secrets' && e.objectRef.name === 'ledger-db-password' && e.responseStatus?.code === 200,
    );
    expect(read?.annotations?.['authorization.k8s.io/reason']).toMatch(
      /^RBAC: allowed by ClusterRoleBinding "checkout-read-secrets" of ClusterRole "all-secrets-reader" to ServiceAccount "checkout\/web"/,
    );
    // Secrets are never logged above Metadata, for anyone.
    for (const e of kapi!.auditEvents().filter((e) => e.objectRef?.resource === 'secrets')) {
      expect(e.level).toBe('Metadata');
      expect(e.requestObject ?? e.responseObject).toBeUndefined();
    }

    const pod = events.find((e) => e.verb === 'create' && e.objectRef?.resource === 'pods' && !e.objectRef.subresource && e.objectRef.name === 'pwn-priv');
    expect(pod?.responseStatus?.code).toBe(403);
    expect(pod?.responseStatus?.message).toContain(`ValidatingAdmissionPolicy '${POLICY}' with binding '${POLICY}' denied request`);
    expect(pod?.annotations?.['validation.policy.admission.k8s.io/validation_failure']).toContain(POLICY);
    expect(JSON.stringify(pod?.requestObject)).toContain('"privileged":true');
    const podSignals = signals.filter((s) => s.target.name === 'pwn-priv').map((s) => s.kind);
    expect(podSignals).toEqual(expect.arrayContaining(['admission.denied', 'pod.privileged', 'pod.host_namespace', 'pod.hostpath']));

    const escalation = events.find((e) => e.verb === 'create' && e.objectRef?.resource === 'clusterrolebindings');
    expect(escalation?.annotations?.['authorization.k8s.io/decision']).toBe('forbid');
    expect(escalation?.responseStatus?.code).toBe(403);
  });

  it('the shipped audit policy keeps minted tokens out of the audit trail (TokenRequests at Request, never RequestResponse)', () => {
    const requests = kapi!.auditEvents().filter((e) => e.objectRef?.resource === 'serviceaccounts' && e.objectRef.subresource === 'token');
    expect(requests.length).toBeGreaterThanOrEqual(3); // the admin's for web/checkout, the attacker's two denied
    for (const e of requests) expect(e.responseObject).toBeUndefined();
    expect(readFileSync(kapi!.env.KAPI_AUDIT_LOG!, 'utf8')).not.toContain(sa.token!);
  });
});
