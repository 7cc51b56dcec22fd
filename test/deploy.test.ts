/**
 * The deployment files in deploy/ validated by parsing (no cluster here): every YAML document is a
 * known kind, the pods meet Pod Security "restricted", kustomizations name files that exist, the
 * audit policy never logs secrets above Metadata, the alerts and the dashboard use metrics the code
 * defines, and the settings the manifests give kubevigil pass its own configuration check.
 * kubectl, promtool and amtool, when installed, check the same files the way the real tools read them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { loadConfig, SETTINGS } from '../services/config.js';
import { Metrics } from '../services/metrics.js';
import { AUDIT_LEVELS, auditLevel, levelRank, policyProblems, type AuditRequest } from './helpers/audit-policy.js';
import { arr, get, isObj, str, walk, type Obj } from './helpers/config-files.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DEPLOY = join(ROOT, 'deploy');
const IMAGE = 'ghcr.io/kubevigil/kubevigil:0.1.0';
const NAMESPACE = 'kubevigil-system';
/** Where every sender reaches kubevigil (both overlays name that Service "kubevigil"). */
const SERVICE_HOST = 'kubevigil.kubevigil-system.svc:8080';

// deploy/compose/ holds docker-compose's configs (Prometheus, Loki…), checked by test/compose.test.ts.
const FILES = walk(DEPLOY)
  .map((p) => relative(DEPLOY, p))
  .filter((f) => !f.startsWith('compose/'));
const YAML_FILES = FILES.filter((f) => /\.ya?ml$/.test(f));

/** One parsed YAML document and the file it came from (relative to deploy/). */
interface Doc {
  file: string;
  index: number;
  value: Obj;
}

function loadDocs(file: string): Doc[] {
  const docs = parseAllDocuments(readFileSync(join(DEPLOY, file), 'utf8'));
  const list = Array.isArray(docs) ? docs : [docs];
  return list.flatMap((d, index) => {
    if (d.errors.length) throw new Error(`${file} document ${index}: ${d.errors.map((e) => e.message).join('; ')}`);
    const value: unknown = d.toJS();
    if (value === null || value === undefined) return []; // an empty document (a trailing ---)
    if (!isObj(value)) throw new Error(`${file} document ${index} is not a mapping`);
    return [{ file, index, value }];
  });
}

const DOCS: Doc[] = YAML_FILES.flatMap(loadDocs);
const kindOf = (d: Doc) => `${str(d.value.apiVersion)} ${str(d.value.kind)}`;
const docsOfKind = (kind: string, fileFilter: (f: string) => boolean = () => true) => DOCS.filter((d) => d.value.kind === kind && fileFilter(d.file));

/** apiVersion + kind pairs the Kubernetes manifests may use. */
const KNOWN_KINDS = new Set([
  'v1 Namespace',
  'v1 ServiceAccount',
  'v1 Secret',
  'v1 ConfigMap',
  'v1 Service',
  'v1 PersistentVolumeClaim',
  'apps/v1 Deployment',
  'networking.k8s.io/v1 NetworkPolicy',
  'policy/v1 PodDisruptionBudget',
  'kustomize.config.k8s.io/v1beta1 Kustomization',
  'kustomize.config.k8s.io/v1alpha1 Component',
  'rbac.authorization.k8s.io/v1 ClusterRole',
  'rbac.authorization.k8s.io/v1 ClusterRoleBinding',
  'audit.k8s.io/v1 Policy',
  'monitoring.coreos.com/v1 PrometheusRule',
  'monitoring.coreos.com/v1 PodMonitor',
]);

/** Configuration files of other programs, each with a check of what it must say. */
const OTHER_CONFIGS: Record<string, (doc: Obj) => void> = {
  'kube-apiserver/webhook-kubeconfig.yaml': (kc) => {
    expect(kindOf({ file: '', index: 0, value: kc })).toBe('v1 Config');
    const cluster = arr(kc.clusters).find(isObj);
    const user = arr(kc.users).find(isObj);
    const context = arr(kc.contexts).find((c) => get(c, 'name') === kc['current-context']);
    expect(get(cluster, 'cluster.server')).toBe(`https://${SERVICE_HOST}/ingest/k8s-audit`);
    expect(str(get(cluster, 'cluster.certificate-authority'))).toMatch(/^\/etc\/kubernetes\//);
    expect(str(get(user, 'user.token'))).not.toBe('');
    expect(get(context, 'context.cluster')).toBe(get(cluster, 'name'));
    expect(get(context, 'context.user')).toBe(get(user, 'name'));
  },
  'integrations/alertmanager-route.yaml': (am) => {
    // First child route, matches every alert but kubevigil's own incidents, and lets the alert
    // continue to the existing routes; a last catch-all keeps the top-level receiver's share.
    const routes = arr(get(am, 'route.routes'));
    const first = routes[0];
    expect(get(first, 'receiver')).toBe('kubevigil');
    expect(get(first, 'continue')).toBe(true);
    expect(get(first, 'matchers')).toEqual(['alertname!="KubevigilIncident"']);
    expect(get(first, 'match')).toBeUndefined();
    expect(routes.at(-1)).toEqual({ receiver: get(am, 'route.receiver') });
    const receiver = arr(am.receivers).find((r) => get(r, 'name') === 'kubevigil');
    const hook = arr(get(receiver, 'webhook_configs'))[0];
    expect(str(get(hook, 'url'))).toMatch(new RegExp(`^https?://${SERVICE_HOST.replace(/\./g, '\\.')}/ingest/alertmanager$`));
    expect(get(hook, 'http_config.authorization.type')).toBe('Bearer');
    expect(str(get(hook, 'http_config.authorization.credentials_file'))).not.toBe('');
    expect(get(hook, 'send_resolved')).toBe(true);
  },
  'integrations/promtail-mesh-logs.yaml': (pt) => {
    const urls = arr(pt.clients).map((c) => str(get(c, 'url')));
    expect(urls).toContain(`http://${SERVICE_HOST}/loki/api/v1/push`);
    expect(urls.some((u) => !u.includes('kubevigil'))).toBe(true); // the real Loki alongside
    const kv = arr(pt.clients).find((c) => str(get(c, 'url')).includes('kubevigil'));
    expect(str(get(kv, 'bearer_token_file'))).not.toBe('');
    const relabels = arr(get(arr(pt.scrape_configs)[0], 'relabel_configs'));
    expect(relabels.some((r) => get(r, 'action') === 'keep' && str(get(r, 'regex')).includes('istio-proxy'))).toBe(true);
  },
  'integrations/otel-collector.yaml': (oc) => {
    const exporters = get(oc, 'exporters');
    expect(get(exporters, 'otlphttp/kubevigil.traces_endpoint')).toBe(`http://${SERVICE_HOST}/v1/traces`);
    expect(str(get(exporters, 'otlphttp/kubevigil.headers.Authorization'))).toMatch(/^Bearer \$\{env:KUBEVIGIL_INGEST_TOKEN\}$/);
    expect(get(exporters, 'otlp/tempo')).toBeDefined();
    expect(get(oc, 'service.pipelines.traces.exporters')).toEqual(['otlp/tempo', 'otlphttp/kubevigil']);
  },
};

describe('deploy/: every YAML document parses and is of a known kind', () => {
  it('finds the files the deployment consists of', () => {
    for (const f of [
      'README.md',
      'base/kustomization.yaml',
      'base/secret.template.yaml',
      'embedded/kustomization.yaml',
      'distributed/kustomization.yaml',
      'kube-apiserver/audit-policy.yaml',
      'kube-apiserver/webhook-kubeconfig.yaml',
      'kube-apiserver/README.md',
      'integrations/alertmanager-route.yaml',
      'integrations/alloy-mesh-logs.alloy',
      'integrations/promtail-mesh-logs.yaml',
      'integrations/otel-collector.yaml',
      'integrations/prometheusrule.yaml',
      'integrations/kubevigil-dashboard.json',
    ])
      expect(FILES, f).toContain(f);
  });

  it.each(YAML_FILES)('%s', (file) => {
    const docs = loadDocs(file);
    expect(docs.length).toBeGreaterThan(0);
    const other = OTHER_CONFIGS[file];
    if (other) {
      expect(docs).toHaveLength(1);
      other(docs[0]!.value);
      return;
    }
    for (const d of docs) {
      expect(
        KNOWN_KINDS,
        `${file} document ${d.index}: ${kindOf(d)} is not a known apiVersion/kind (add it to KNOWN_KINDS, or the file to OTHER_CONFIGS)`,
      ).toContain(kindOf(d));
      if (d.value.kind !== 'Kustomization' && d.value.kind !== 'Component' && d.value.kind !== 'Policy')
        expect(str(get(d.value, 'metadata.name')), `${file} document ${d.index} has no metadata.name`).not.toBe('');
    }
  });

  it('grants kubevigil no API permissions by default; only the optional inventory component grants read-only access', () => {
    // The base and the overlays hold no RBAC object and mount no token; deploy/inventory, a
    // kustomize Component an overlay opts into, holds the read-only ClusterRole (test/inventory-rbac.test.ts).
    expect([...new Set(DOCS.filter((d) => /^rbac\.authorization\.k8s\.io\//.test(str(d.value.apiVersion))).map((d) => d.file))]).toEqual([
      'inventory/clusterrole.yaml',
    ]);
    const sas = docsOfKind('ServiceAccount');
    expect(sas).toHaveLength(1);
    expect(sas[0]!.value.automountServiceAccountToken).toBe(false);
    const component = DOCS.find((d) => d.file === 'inventory/kustomization.yaml')!.value;
    expect(JSON.stringify(component)).toContain('automountServiceAccountToken');
    expect(JSON.stringify(component)).toContain('KUBEVIGIL_INVENTORY');
  });

  it('labels the namespace for Pod Security "restricted"', () => {
    const ns = docsOfKind('Namespace');
    expect(ns).toHaveLength(1);
    expect(get(ns[0]!.value, 'metadata.name')).toBe(NAMESPACE);
    const labels = get(ns[0]!.value, 'metadata.labels');
    for (const mode of ['enforce', 'audit', 'warn']) expect(get(labels, [`pod-security.kubernetes.io/${mode}`])).toBe('restricted');
  });
});

describe('deploy/: kustomizations', () => {
  const kustomizations = docsOfKind('Kustomization');

  it('exist for base and both overlays', () => {
    expect(kustomizations.map((k) => k.file).sort()).toEqual(['base/kustomization.yaml', 'distributed/kustomization.yaml', 'embedded/kustomization.yaml']);
  });

  it.each(kustomizations.map((k) => [k.file, k] as const))('%s names only files that exist', (_file, k) => {
    const dir = join(DEPLOY, dirname(k.file));
    const refs = [...arr(k.value.resources).map(str), ...arr(k.value.patches).map((p) => str(get(p, 'path')))];
    expect(refs.length).toBeGreaterThan(0);
    for (const r of refs) {
      const p = join(dir, r);
      expect(existsSync(p), `${k.file}: ${r} does not exist`).toBe(true);
      if (statSync(p).isDirectory()) expect(existsSync(join(p, 'kustomization.yaml')), `${k.file}: ${r} has no kustomization.yaml`).toBe(true);
    }
    expect(k.value.namespace).toBe(NAMESPACE);
  });

  it('keep the Secret template out of every kustomization (apply -k must not overwrite real tokens)', () => {
    for (const k of kustomizations) expect(arr(k.value.resources).map(str)).not.toContain('secret.template.yaml');
    const secret = docsOfKind('Secret');
    expect(secret.map((s) => s.file)).toEqual(['base/secret.template.yaml']);
    expect(get(secret[0]!.value, 'stringData.KUBEVIGIL_INGEST_TOKEN')).toBeDefined();
    expect(get(secret[0]!.value, 'stringData.KUBEVIGIL_API_TOKEN')).toBeDefined();
    expect(get(secret[0]!.value, 'stringData.KUBEVIGIL_METRICS_TOKEN')).toBeDefined();
    expect(get(secret[0]!.value, 'stringData.SLACK_BOT_TOKEN')).toBeDefined();
    expect(get(secret[0]!.value, 'data')).toBeUndefined();
  });
});

/** The pod template of a Deployment document. */
const podSpec = (d: Doc): Obj => {
  const s = get(d.value, 'spec.template.spec');
  if (!isObj(s)) throw new Error(`${d.file}: Deployment without spec.template.spec`);
  return s;
};
const containers = (d: Doc): Obj[] => arr(podSpec(d).containers).filter(isObj);
const deployments = docsOfKind('Deployment');

describe('deploy/: every Deployment runs kubevigil locked down', () => {
  it('has the embedded Deployment and one per distributed role', () => {
    expect(deployments.map((d) => `${d.file}:${str(get(d.value, 'metadata.name'))}`).sort()).toEqual([
      'distributed/api.yaml:kubevigil-api',
      'distributed/correlator.yaml:kubevigil-correlator',
      'distributed/ingest.yaml:kubevigil-ingest',
      'distributed/notifier.yaml:kubevigil-notifier',
      'embedded/deployment.yaml:kubevigil',
    ]);
  });

  it.each(deployments.map((d) => [`${d.file} ${str(get(d.value, 'metadata.name'))}`, d] as const))('%s', (_name, d) => {
    const pod = podSpec(d);
    expect(pod.serviceAccountName).toBe('kubevigil');
    expect(pod.automountServiceAccountToken).toBe(false);
    // Service links would set KUBEVIGIL_PORT=tcp://… from the Service named "kubevigil".
    expect(pod.enableServiceLinks).toBe(false);
    expect(get(pod, 'securityContext.runAsNonRoot')).toBe(true);
    expect(get(pod, 'securityContext.seccompProfile.type')).toBe('RuntimeDefault');
    const volumes = arr(pod.volumes).filter(isObj);
    const selector = get(d.value, 'spec.selector.matchLabels');
    expect(isObj(selector) && Object.keys(selector).length > 0).toBe(true);
    for (const [k, v] of Object.entries(selector as Obj)) expect(get(d.value, 'spec.template.metadata.labels')).toHaveProperty([k], v);
    expect(containers(d).length).toBeGreaterThan(0);
    for (const c of containers(d)) {
      const sc = get(c, 'securityContext');
      expect(c.image).toBe(IMAGE);
      expect(arr(c.command).slice(0, 3)).toEqual(['node', 'bin/kubevigil.js', 'serve']);
      expect(get(sc, 'runAsNonRoot')).toBe(true);
      expect(get(sc, 'runAsUser')).toBe(10001);
      expect(get(sc, 'readOnlyRootFilesystem')).toBe(true);
      expect(get(sc, 'allowPrivilegeEscalation')).toBe(false);
      expect(arr(get(sc, 'capabilities.drop'))).toContain('ALL');
      expect(get(sc, 'capabilities.add')).toBeUndefined();
      expect(get(sc, 'privileged')).not.toBe(true);
      expect(get(sc, 'seccompProfile.type')).toBe('RuntimeDefault');
      expect(get(c, 'livenessProbe.httpGet.path')).toBe('/healthz');
      expect(get(c, 'readinessProbe.httpGet.path')).toBe('/readyz');
      for (const r of ['cpu', 'memory']) {
        expect(get(c, `resources.requests.${r}`), `${r} request`).toBeDefined();
        expect(get(c, `resources.limits.${r}`), `${r} limit`).toBeDefined();
      }
      expect(arr(c.env)).toContainEqual({ name: 'KUBEVIGIL_HOST', value: '0.0.0.0' });
      expect(arr(c.envFrom)).toContainEqual({ configMapRef: { name: 'kubevigil' } });
      expect(arr(c.envFrom)).toContainEqual({ secretRef: { name: 'kubevigil' } });
      expect(arr(c.ports)).toContainEqual(expect.objectContaining({ name: 'http', containerPort: 8080 }));
      // The root filesystem is read-only: /tmp and the data directory are volumes.
      const mounts = arr(c.volumeMounts).filter(isObj);
      const volumeAt = (path: string) => volumes.find((v) => v.name === mounts.find((m) => m.mountPath === path)?.name);
      expect(get(volumeAt('/tmp'), 'emptyDir'), '/tmp is an emptyDir').toBeDefined();
      expect(volumeAt('/data'), '/data is a volume').toBeDefined();
    }
  });

  it('runs embedded as one replica, recreated, on a PersistentVolumeClaim', () => {
    const d = deployments.find((x) => x.file === 'embedded/deployment.yaml')!;
    expect(get(d.value, 'spec.replicas')).toBe(1);
    expect(get(d.value, 'spec.strategy.type')).toBe('Recreate');
    const claim = arr(podSpec(d).volumes)
      .map((v) => get(v, 'persistentVolumeClaim.claimName'))
      .find(Boolean);
    expect(docsOfKind('PersistentVolumeClaim', (f) => f.startsWith('embedded/')).map((p) => get(p.value, 'metadata.name'))).toContain(claim);
  });

  it('runs the distributed roles with their replica counts, budgets and Services', () => {
    const dist = deployments.filter((d) => d.file.startsWith('distributed/'));
    const roles = Object.fromEntries(dist.map((d) => [str(arr(containers(d)[0]!.command)[4]), get(d.value, 'spec.replicas')]));
    expect(roles).toEqual({ ingest: 2, correlator: 2, api: 2, notifier: 1 });
    for (const d of dist)
      expect(arr(containers(d)[0]!.command).slice(3)).toEqual(['--role', get(d.value, ['metadata', 'labels', 'app.kubernetes.io/component'])]);
    const pdbRoles = docsOfKind('PodDisruptionBudget')
      .map((p) => get(p.value, 'spec.selector.matchLabels'))
      .map((l) => (isObj(l) ? l['app.kubernetes.io/component'] : undefined));
    expect(pdbRoles.sort()).toEqual(['api', 'correlator', 'ingest']);
    const services = docsOfKind('Service', (f) => f.startsWith('distributed/')).map((s) => [
      get(s.value, 'metadata.name'),
      (get(s.value, 'spec.selector') as Obj)['app.kubernetes.io/component'],
    ]);
    expect(services).toEqual([
      ['kubevigil', 'ingest'],
      ['kubevigil-api', 'api'],
    ]);
  });

  it('gives every role a NetworkPolicy; correlators take no ingress but metrics scrapes', () => {
    const policies = docsOfKind('NetworkPolicy');
    const base = policies.find((p) => p.file === 'base/networkpolicy-default-deny.yaml')!;
    expect(get(base.value, 'spec.podSelector')).toEqual({});
    expect(get(base.value, 'spec.policyTypes')).toEqual(['Ingress', 'Egress']);
    const forRole = (role: string) => policies.find((p) => get(p.value, ['spec', 'podSelector', 'matchLabels', 'app.kubernetes.io/component']) === role);
    for (const role of ['embedded', 'ingest', 'correlator', 'api', 'notifier']) {
      const p = forRole(role);
      expect(p, role).toBeDefined();
      expect(get(p!.value, 'spec.policyTypes')).toEqual(['Ingress', 'Egress']);
      // Every ingress rule opens port 8080 only, every egress rule names its ports.
      for (const r of arr(get(p!.value, 'spec.ingress'))) expect(arr(get(r, 'ports'))).toEqual([{ protocol: 'TCP', port: 8080 }]);
      for (const r of arr(get(p!.value, 'spec.egress'))) expect(arr(get(r, 'ports')).length).toBeGreaterThan(0);
    }
    const correlatorIngress = arr(get(forRole('correlator')!.value, 'spec.ingress'));
    expect(correlatorIngress).toHaveLength(1);
    expect(get(arr(get(correlatorIngress[0], 'from'))[0], 'namespaceSelector.matchLabels')).toEqual({ 'kubernetes.io/metadata.name': 'monitoring' });
    const egressPorts = (role: string) => arr(get(forRole(role)!.value, 'spec.egress')).flatMap((r) => arr(get(r, 'ports')).map((p) => get(p, 'port')));
    expect(egressPorts('correlator')).toEqual(expect.arrayContaining([53, 9092, 6379]));
    expect(egressPorts('ingest')).not.toContain(6379);
    expect(egressPorts('notifier')).toEqual(expect.arrayContaining([53, 9092, 443]));
    expect(egressPorts('embedded')).toEqual(expect.arrayContaining([53, 443]));
  });
});

/** The ConfigMap an overlay produces: base data, then each ConfigMap patch's data on top. */
function overlayConfigMap(overlay: string): Record<string, string> {
  const base = docsOfKind('ConfigMap', (f) => f === 'base/configmap.yaml')[0]!;
  const data: Record<string, string> = { ...(base.value.data as Record<string, string>) };
  const k = docsOfKind('Kustomization', (f) => f === `${overlay}/kustomization.yaml`)[0]!;
  for (const p of arr(k.value.patches)) {
    const patch = parse(readFileSync(join(DEPLOY, overlay, str(get(p, 'path'))), 'utf8')) as Obj;
    if (patch.kind === 'ConfigMap' && get(patch, 'metadata.name') === 'kubevigil') Object.assign(data, patch.data as Record<string, string>);
  }
  return data;
}

describe('deploy/: the settings the manifests give kubevigil pass its configuration check', () => {
  const template = (docsOfKind('Secret')[0]!.value.stringData ?? {}) as Record<string, string>;
  const filled = { ...template, KUBEVIGIL_INGEST_TOKEN: 'i'.repeat(48), KUBEVIGIL_API_TOKEN: 'a'.repeat(48), KUBEVIGIL_METRICS_TOKEN: 'm'.repeat(48) };
  const cases = deployments.map((d) => {
    const c = containers(d)[0]!;
    const env = Object.fromEntries(arr(c.env).map((e) => [str(get(e, 'name')), str(get(e, 'value'))]));
    const args = arr(c.command).map(str);
    const role = args.includes('--role') ? args[args.indexOf('--role') + 1] : undefined;
    return [`${d.file} ${str(get(d.value, 'metadata.name'))}`, { overlay: d.file.split('/')[0]!, env, role }] as const;
  });

  it.each(cases)('%s', (_name, { overlay, env, role }) => {
    const all = { ...overlayConfigMap(overlay), ...filled, ...env };
    const config = loadConfig(all, role ? { role } : {});
    expect(config.host).toBe('0.0.0.0');
    expect(config.port).toBe(8080);
    expect(config.dataDir).toBe('/data');
    if (overlay === 'distributed') {
      expect(config.kafkaBrokers.length).toBeGreaterThan(0);
      expect(config.redisUrl).toMatch(/^redis/);
      expect([...config.roles]).toEqual([role]);
    } else {
      expect(config.kafkaBrokers).toEqual([]);
      expect(config.roles.size).toBe(4);
    }
    // The template's placeholders are refused: nobody runs with a token everyone can read here.
    expect(() => loadConfig({ ...overlayConfigMap(overlay), ...template, ...env }, role ? { role } : {})).toThrow(/KUBEVIGIL_INGEST_TOKEN is \d+ characters/);
  });

  it('sizes the V8 heap below each container memory limit', () => {
    const bytes = (q: string) => Number(q.replace(/Mi$/, '')) * 2 ** 20 || Number(q.replace(/Gi$/, '')) * 2 ** 30;
    for (const d of deployments)
      for (const c of containers(d)) {
        const opts = str(
          get(
            arr(c.env).find((e) => get(e, 'name') === 'NODE_OPTIONS'),
            'value',
          ),
        );
        const heapMiB = Number(/--max-old-space-size=(\d+)/.exec(opts)?.[1]);
        const limit = bytes(str(get(c, 'resources.limits.memory')));
        expect(heapMiB * 2 ** 20, d.file).toBeLessThanOrEqual(limit * 0.8);
        expect(heapMiB * 2 ** 20, d.file).toBeGreaterThanOrEqual(limit * 0.5);
      }
  });
});

describe('deploy/kube-apiserver/audit-policy.yaml', () => {
  const policy = docsOfKind('Policy')[0]!.value;
  const rules = arr(policy.rules).filter(isObj);
  const node = { user: 'system:node:worker-1', groups: ['system:nodes', 'system:authenticated'] };
  const sa = (ns: string, name: string) => ({
    user: `system:serviceaccount:${ns}:${name}`,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'],
  });
  const alice = { user: 'alice@example.com', groups: ['developers', 'system:authenticated'] };
  const admin = { user: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] };
  const controllers = { user: 'system:kube-controller-manager', groups: ['system:authenticated'] };

  it('omits RequestReceived and uses only valid levels, ending with a catch-all at Metadata', () => {
    expect(arr(policy.omitStages)).toContain('RequestReceived');
    for (const r of rules) expect(AUDIT_LEVELS).toContain(r.level);
    const last = rules[rules.length - 1]!;
    expect(Object.keys(last)).toEqual(['level']);
    expect(last.level).toBe('Metadata');
  });

  it('is a policy kube-apiserver accepts, with no key the evaluator would not understand', () => {
    expect(policyProblems(policy)).toEqual([]);
  });

  it('never logs secrets above Metadata, whoever asks and however', () => {
    // Structurally: no rule that could match a secret request raises it above Metadata unless an
    // earlier rule that matches every secret request at Metadata or None comes first.
    const matchesAllSecrets = (r: Obj) =>
      !arr(r.users).length &&
      !arr(r.userGroups).length &&
      !arr(r.verbs).length &&
      !arr(r.namespaces).length &&
      arr(r.resources).some((gr) => str(get(gr, 'group')) === '' && arr(get(gr, 'resources')).includes('secrets'));
    const couldMatchSecrets = (r: Obj) =>
      !arr(r.nonResourceURLs).length &&
      (!arr(r.resources).length ||
        arr(r.resources).some(
          (gr) =>
            str(get(gr, 'group')) === '' &&
            (arr(get(gr, 'resources')).length === 0 || arr(get(gr, 'resources')).some((x) => x === 'secrets' || x === '*' || x === 'secrets/*')),
        ));
    const guard = rules.findIndex(matchesAllSecrets);
    expect(guard, 'a rule for all secrets').toBeGreaterThanOrEqual(0);
    expect(['None', 'Metadata']).toContain(rules[guard]!.level);
    rules.slice(0, guard).forEach((r, i) => {
      if (couldMatchSecrets(r))
        expect(['None', 'Metadata'], `rule ${i} comes before the secrets rule and could log secrets at ${str(r.level)}`).toContain(r.level);
    });
    // And by evaluation, for every verb and identity.
    for (const who of [node, sa('frontend', 'frontend'), alice, admin, controllers, sa('kube-system', 'generic-garbage-collector')])
      for (const verb of ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'])
        for (const namespace of ['payments', 'kube-system', ''])
          expect(auditLevel(rules, { ...who, verb, resource: 'secrets', namespace }), `${who.user} ${verb} secrets in "${namespace}"`).toBe('Metadata');
  });

  it('logs the ways in and the writes that grant or persist for every identity, nodes and kube-system included, before any None rule', () => {
    const everyone = [
      node,
      sa('kube-system', 'coredns'),
      sa('kube-system', 'generic-garbage-collector'),
      controllers,
      { user: 'system:kube-proxy', groups: ['system:authenticated'] },
      { user: 'system:apiserver', groups: ['system:authenticated'] },
      sa('frontend', 'frontend'),
      alice,
    ];
    const writes = ['create', 'update', 'patch', 'delete'];
    const rbac = 'rbac.authorization.k8s.io';
    // [request, the level it must be logged at]: exactly, or at least with a trailing "+".
    const needs: [Omit<AuditRequest, 'user' | 'groups'>, string][] = [
      ...['exec', 'attach', 'portforward'].flatMap((subresource) =>
        ['get', 'create'].map((verb): [Omit<AuditRequest, 'user' | 'groups'>, string] => [
          { verb, resource: 'pods', subresource, namespace: 'kube-system', name: 'etcd-cp-1' },
          'Request+',
        ]),
      ),
      ...['get', 'create', 'update', 'patch', 'delete'].map((verb): [Omit<AuditRequest, 'user' | 'groups'>, string] => [
        { verb, resource: 'nodes', subresource: 'proxy', name: 'worker-2' },
        'Metadata',
      ]),
      [{ verb: 'create', resource: 'serviceaccounts', subresource: 'token', namespace: 'kube-system', name: 'clusterrole-aggregation-controller' }, 'Request'],
      [{ verb: 'patch', resource: 'pods', subresource: 'ephemeralcontainers', namespace: 'payments', name: 'db-0' }, 'Request+'],
      ...['create', 'update', 'patch'].map((verb): [Omit<AuditRequest, 'user' | 'groups'>, string] => [
        { verb, resource: 'pods', namespace: 'payments', name: 'db-0' },
        'RequestResponse',
      ]),
      ...[
        ['apps', 'deployments'],
        ['apps', 'daemonsets'],
        ['apps', 'statefulsets'],
        ['apps', 'replicasets'],
        ['batch', 'jobs'],
        ['batch', 'cronjobs'],
      ].map(([group, resource]): [Omit<AuditRequest, 'user' | 'groups'>, string] => [
        { verb: 'patch', group, resource, namespace: 'kube-system' },
        'RequestResponse',
      ]),
      ...['roles', 'clusterroles', 'rolebindings', 'clusterrolebindings'].flatMap((resource) =>
        writes.map((verb): [Omit<AuditRequest, 'user' | 'groups'>, string] => [
          { verb, group: rbac, resource, namespace: resource.startsWith('cluster') ? '' : 'kube-system' },
          'RequestResponse',
        ]),
      ),
      ...['mutatingwebhookconfigurations', 'validatingwebhookconfigurations', 'validatingadmissionpolicies', 'validatingadmissionpolicybindings'].flatMap(
        (resource) =>
          writes.map((verb): [Omit<AuditRequest, 'user' | 'groups'>, string] => [{ verb, group: 'admissionregistration.k8s.io', resource }, 'RequestResponse']),
      ),
      ...[undefined, 'approval', 'status'].flatMap((subresource) =>
        ['create', 'update', 'patch'].map((verb): [Omit<AuditRequest, 'user' | 'groups'>, string] => [
          { verb, group: 'certificates.k8s.io', resource: 'certificatesigningrequests', subresource, name: 'csr-x7k2p' },
          'RequestResponse',
        ]),
      ),
      ...writes.flatMap((verb): [Omit<AuditRequest, 'user' | 'groups'>, string][] => [
        [{ verb, resource: 'services', namespace: 'kube-system' }, 'Request'],
        [{ verb, group: 'networking.k8s.io', resource: 'ingresses', namespace: 'payments' }, 'Request'],
        [{ verb, resource: 'namespaces', namespace: 'scratch', name: 'scratch' }, 'Request'],
      ]),
      [{ verb: 'create', resource: 'serviceaccounts', namespace: 'kube-system' }, 'Request'],
      [{ verb: 'delete', resource: 'serviceaccounts', namespace: 'kube-system', name: 'coredns' }, 'Request'],
      [{ verb: 'create', resource: 'nodes', name: 'worker-9' }, 'Request'],
      ...['create', 'update', 'patch'].flatMap((verb): [Omit<AuditRequest, 'user' | 'groups'>, string][] => [
        [{ verb, resource: 'configmaps', namespace: 'kube-system', name: 'coredns' }, 'Request'],
        [{ verb, resource: 'configmaps', namespace: 'kube-system', name: 'aws-auth' }, 'Request'],
        [{ verb, resource: 'configmaps', namespace: 'payments', name: 'app-config' }, 'Request'],
      ]),
    ];
    const failures: string[] = [];
    for (const who of everyone)
      for (const [req, want] of needs) {
        const got = auditLevel(rules, { ...who, ...req });
        const ok = want.endsWith('+') ? levelRank(got) >= levelRank(want.slice(0, -1)) : got === want;
        const what = [req.group, req.resource, req.subresource].filter(Boolean).join('/');
        if (!ok) failures.push(`${who.user} ${req.verb} ${what} ${req.namespace ?? ''}/${req.name ?? ''}: ${got}, want ${want}`);
      }
    expect(failures, failures.join('\n')).toEqual([]);
  });

  it('logs what the shipped rules read at the level they need', () => {
    const cases: [AuditRequest, string][] = [
      [{ ...sa('kube-system', 'replicaset-controller'), verb: 'create', resource: 'pods', namespace: 'payments' }, 'RequestResponse'],
      [{ ...alice, verb: 'create', resource: 'pods', namespace: 'payments' }, 'RequestResponse'],
      [{ ...alice, verb: 'create', resource: 'pods', subresource: 'exec', namespace: 'payments' }, 'Request'],
      [{ ...alice, verb: 'get', resource: 'pods', subresource: 'exec', namespace: 'payments' }, 'Request'],
      [{ ...alice, verb: 'create', resource: 'pods', subresource: 'attach', namespace: 'payments' }, 'Request'],
      [{ ...alice, verb: 'create', resource: 'pods', subresource: 'portforward', namespace: 'payments' }, 'Request'],
      [{ ...alice, verb: 'patch', resource: 'pods', subresource: 'ephemeralcontainers', namespace: 'payments' }, 'RequestResponse'],
      ...['deployments', 'daemonsets', 'statefulsets', 'replicasets'].map((resource): [AuditRequest, string] => [
        { ...alice, verb: 'patch', group: 'apps', resource, namespace: 'payments' },
        'RequestResponse',
      ]),
      ...['jobs', 'cronjobs'].map((resource): [AuditRequest, string] => [
        { ...alice, verb: 'create', group: 'batch', resource, namespace: 'payments' },
        'RequestResponse',
      ]),
      [{ ...alice, verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' }, 'RequestResponse'],
      [{ ...alice, verb: 'update', group: 'rbac.authorization.k8s.io', resource: 'roles', namespace: 'payments' }, 'RequestResponse'],
      [{ ...alice, verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings' }, 'RequestResponse'],
      [
        { ...sa('frontend', 'frontend'), verb: 'patch', group: 'rbac.authorization.k8s.io', resource: 'rolebindings', namespace: 'payments' },
        'RequestResponse',
      ],
      [{ ...alice, verb: 'get', group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings' }, 'Metadata'],
      [{ ...alice, verb: 'create', resource: 'serviceaccounts', subresource: 'token', namespace: 'payments' }, 'Request'],
      [{ ...node, verb: 'create', resource: 'serviceaccounts', subresource: 'token', namespace: 'payments' }, 'Request'],
      [{ ...alice, verb: 'patch', group: 'admissionregistration.k8s.io', resource: 'validatingwebhookconfigurations' }, 'RequestResponse'],
      [
        { ...sa('kube-system', 'coredns'), verb: 'delete', group: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations' },
        'RequestResponse',
      ],
      [{ ...node, verb: 'create', group: 'certificates.k8s.io', resource: 'certificatesigningrequests' }, 'RequestResponse'],
      [{ ...alice, verb: 'update', group: 'certificates.k8s.io', resource: 'certificatesigningrequests', subresource: 'approval' }, 'RequestResponse'],
      [{ ...sa('kube-system', 'coredns'), verb: 'update', resource: 'configmaps', namespace: 'kube-system', name: 'coredns' }, 'Request'],
      [{ ...sa('kube-system', 'aws-node'), verb: 'patch', resource: 'configmaps', namespace: 'kube-system', name: 'aws-auth' }, 'Request'],
      [{ ...sa('kube-system', 'coredns'), verb: 'create', resource: 'services', namespace: 'kube-system' }, 'Request'],
      [{ ...node, verb: 'create', group: 'networking.k8s.io', resource: 'ingresses', namespace: 'payments' }, 'Request'],
      [{ ...node, verb: 'create', resource: 'nodes', name: 'worker-9' }, 'Request'],
      [{ ...controllers, verb: 'create', resource: 'namespaces', name: 'scratch' }, 'Request'],
      [{ ...sa('kube-system', 'coredns'), verb: 'delete', resource: 'serviceaccounts', namespace: 'payments' }, 'Request'],
      [{ ...alice, verb: 'patch', group: 'security.istio.io', resource: 'peerauthentications', namespace: 'payments' }, 'Request'],
      [{ ...alice, verb: 'delete', group: 'security.istio.io', resource: 'authorizationpolicies', namespace: 'payments' }, 'Request'],
      [{ ...alice, verb: 'update', resource: 'configmaps', namespace: 'payments' }, 'Request'],
      [{ ...alice, verb: 'get', resource: 'configmaps', namespace: 'payments' }, 'Metadata'],
      [{ ...sa('frontend', 'frontend'), verb: 'create', group: 'authorization.k8s.io', resource: 'selfsubjectrulesreviews' }, 'Metadata'],
      [{ ...sa('monitoring', 'prometheus'), verb: 'create', group: 'authentication.k8s.io', resource: 'tokenreviews' }, 'Metadata'],
      [{ ...alice, verb: 'get', resource: 'nodes', subresource: 'proxy' }, 'Metadata'],
      [{ ...node, verb: 'get', resource: 'nodes', subresource: 'proxy', name: 'worker-2' }, 'Metadata'],
      [{ ...controllers, verb: 'get', resource: 'pods', subresource: 'log', namespace: 'payments' }, 'Metadata'],
      [{ ...alice, verb: 'delete', resource: 'events', namespace: 'payments' }, 'Metadata'],
      [{ user: 'system:anonymous', groups: ['system:unauthenticated'], verb: 'get', path: '/api/v1' }, 'Metadata'],
      // The noise nobody needs.
      [{ ...node, verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: 'kube-node-lease' }, 'None'],
      [{ user: 'system:kube-proxy', groups: ['system:authenticated'], verb: 'watch', group: 'discovery.k8s.io', resource: 'endpointslices' }, 'None'],
      [{ ...node, verb: 'create', resource: 'events', namespace: 'payments' }, 'None'],
      [{ ...node, verb: 'get', resource: 'pods', namespace: 'payments' }, 'None'],
      [{ ...sa('kube-system', 'coredns'), verb: 'watch', resource: 'services' }, 'None'],
      [{ ...node, verb: 'get', resource: 'configmaps', namespace: 'kube-system', name: 'kube-proxy' }, 'None'],
      [{ ...node, verb: 'patch', resource: 'pods', subresource: 'status', namespace: 'payments' }, 'Metadata'],
      [{ ...controllers, verb: 'list', group: 'apps', resource: 'deployments' }, 'None'],
      [{ ...alice, verb: 'get', path: '/apis/apps/v1' }, 'None'],
      [{ user: 'system:anonymous', groups: ['system:unauthenticated'], verb: 'get', path: '/healthz' }, 'None'],
    ];
    for (const [req, want] of cases)
      expect(auditLevel(rules, req), `${req.user} ${req.verb} ${[req.group, req.resource, req.subresource].filter(Boolean).join('/') || req.path}`).toBe(want);
  });
});

/** Metric names the code defines: `name: 'kubevigil_…'` in services/**\/*.ts, plus prom-client's process metrics under the same prefix. */
async function knownMetrics(): Promise<{ names: Set<string>; histograms: Set<string> }> {
  const names = new Set<string>();
  const histograms = new Set<string>();
  const sources = walk(join(ROOT, 'services'))
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .map((f) => readFileSync(f, 'utf8'));
  for (const src of sources) {
    for (const m of src.matchAll(/name:\s*['"](kubevigil_[a-z0-9_]+)['"]/g)) names.add(m[1]!);
    for (const m of src.matchAll(/new Histogram(?:<[^>]*>)?\(\{\s*name:\s*['"](kubevigil_[a-z0-9_]+)['"]/g)) histograms.add(m[1]!);
  }
  // The process and Node.js metrics a running kubevigil exposes, under their standard names.
  const registry = new Metrics({ processMetrics: true }).registry;
  for (const m of await registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') histograms.add(m.name);
  }
  registry.clear();
  return { names, histograms };
}

/** The series names an expression reads: kubevigil's own, and the standard process_… and nodejs_… ones. */
const metricsIn = (expr: string) => [...expr.matchAll(/\b(?:kubevigil|process|nodejs)_[a-z0-9_]+/g)].map((m) => m[0]);

function checkNames(exprs: string[], known: { names: Set<string>; histograms: Set<string> }) {
  const used = new Set(exprs.flatMap(metricsIn));
  for (const name of used) {
    const base = name.replace(/_(bucket|sum|count)$/, '');
    const ok = known.names.has(name) || (base !== name && known.histograms.has(base));
    expect(ok, `${name} is not a metric defined in services/ (name: '${name}')`).toBe(true);
  }
  return used;
}

describe('deploy/integrations: alerts and dashboard use the metrics kubevigil exposes', () => {
  it('finds the metric definitions', async () => {
    const known = await knownMetrics();
    expect(known.names).toContain('kubevigil_ingest_requests_total');
    expect(known.names).toContain('kubevigil_notifier_failed_total');
    expect(known.histograms).toContain('kubevigil_detect_batch_seconds');
  });

  it('PrometheusRule: every expression names existing metrics, and the health alerts are there', async () => {
    const rule = docsOfKind('PrometheusRule')[0]!.value;
    const alerts = arr(get(rule, 'spec.groups'))
      .flatMap((g) => arr(get(g, 'rules')))
      .filter(isObj);
    expect(alerts.length).toBeGreaterThan(0);
    for (const a of alerts) {
      expect(str(a.alert), 'alerts only (no recording rules)').toMatch(/^Kubevigil[A-Za-z]+$/);
      expect(str(a.expr)).not.toBe('');
      expect(['critical', 'warning', 'info']).toContain(get(a, 'labels.severity'));
      expect(str(get(a, 'annotations.summary'))).not.toBe('');
    }
    const used = checkNames(
      alerts.map((a) => str(a.expr)),
      await knownMetrics(),
    );
    for (const m of [
      'kubevigil_ingest_requests_total',
      'kubevigil_bus_publish_failed_total',
      'kubevigil_store_write_failed_total',
      'kubevigil_notifier_failed_total',
      'kubevigil_signals_emitted_total',
    ])
      expect(used, m).toContain(m);
    // Refused ingest: answered 503/429 by a receiver, or shed by the limits before it (issue #19).
    expect(alerts.some((a) => /code=~"429\|503"/.test(str(a.expr)) && str(a.expr).includes('kubevigil_ingest_rejected_total'))).toBe(true);
    expect(
      alerts.some((a) => /kube_pod_status_ready|\bup\b/.test(str(a.expr))),
      'a readiness alert',
    ).toBe(true);
  });

  it('dashboard: parses, has unique panel ids, and every query names existing metrics', async () => {
    const dash = JSON.parse(readFileSync(join(DEPLOY, 'integrations/kubevigil-dashboard.json'), 'utf8')) as Obj;
    expect(dash.title).toBe('kubevigil');
    expect(str(dash.uid)).toMatch(/^[a-z0-9-]{1,40}$/);
    const panels = arr(dash.panels).filter(isObj);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const targets = panels.flatMap((p) => arr(p.targets)).filter(isObj);
    expect(targets.length).toBeGreaterThan(10);
    for (const p of panels.filter((x) => x.type !== 'row')) {
      expect(get(p, 'datasource.uid')).toBe('${datasource}');
      expect(p.gridPos).toBeDefined();
    }
    const queries = [...targets.map((t) => str(t.expr)), ...arr(get(dash, 'templating.list')).map((v) => str(get(v, 'definition')))];
    const used = checkNames(queries, await knownMetrics());
    for (const m of [
      'kubevigil_ingest_events_total',
      'kubevigil_ingest_requests_total',
      'kubevigil_signals_emitted_total',
      'kubevigil_detect_batch_seconds_bucket',
      'kubevigil_incidents_open',
      'kubevigil_correlator_signals_total',
      'kubevigil_store_write_failed_total',
      'kubevigil_notifier_failed_total',
    ])
      expect(used, m).toContain(m);
    expect(queries.some((q) => /histogram_quantile\(0\.99, sum by \(le\) \(rate\(kubevigil_detect_batch_seconds_bucket/.test(q))).toBe(true);
    expect(queries.some((q) => /sum by \(kind\) \(rate\(kubevigil_signals_emitted_total/.test(q))).toBe(true);
    expect(queries.some((q) => /by \([^)]*outcome[^)]*\) \(rate\(kubevigil_ingest_events_total/.test(q))).toBe(true);
  });

  it("PodMonitor: scrapes every pod's /metrics with the metrics token of the Secret the pods read", () => {
    const [monitor, ...others] = docsOfKind('PodMonitor');
    expect(others).toEqual([]);
    const endpoints = arr(get(monitor!.value, 'spec.podMetricsEndpoints'));
    expect(endpoints).toHaveLength(1);
    expect(get(endpoints[0], 'path')).toBe('/metrics');
    // With API tokens set (always, beyond loopback) /metrics asks for a token: without one every target is down with 401.
    expect(get(endpoints[0], 'authorization')).toEqual({ type: 'Bearer', credentials: { name: 'kubevigil', key: 'KUBEVIGIL_METRICS_TOKEN' } });
    for (const d of deployments) expect(arr(containers(d)[0]!.envFrom), d.file).toContainEqual({ secretRef: { name: 'kubevigil' } });
    expect(get(docsOfKind('Secret')[0]!.value, 'stringData.KUBEVIGIL_METRICS_TOKEN')).toBeDefined();
    expect(get(monitor!.value, 'metadata.namespace')).toBe(NAMESPACE);
  });

  it('Alloy snippet tees the proxies to kubevigil and to Loki', () => {
    const alloy = readFileSync(join(DEPLOY, 'integrations/alloy-mesh-logs.alloy'), 'utf8');
    const code = alloy.replace(/^\s*\/\/.*$/gm, '');
    expect(code.split('{').length).toBe(code.split('}').length);
    expect(code).toContain(`url               = "http://${SERVICE_HOST}/loki/api/v1/push"`);
    expect(code).toMatch(/forward_to = \[loki\.write\.loki\.receiver, loki\.relabel\.mesh_only\.receiver\]/);
    expect(code).toMatch(/regex\s+= "istio-proxy\|envoy"/);
  });
});

/** A command-line tool on PATH, or undefined (the checks below are skipped without it). */
function tool(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}
const KUBECTL = tool('kubectl');
const PROMTOOL = tool('promtool');
const AMTOOL = tool('amtool');

describe('deploy/: the real tools read the files', () => {
  it.skipIf(!KUBECTL).each(['embedded', 'distributed'])('kubectl kustomize deploy/%s', (overlay) => {
    const r = spawnSync(KUBECTL!, ['kustomize', join(DEPLOY, overlay)], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const built = parseAllDocuments(r.stdout);
    const objs = (Array.isArray(built) ? built : [built]).map((d) => d.toJS() as Obj);
    const namespaced = objs.filter((o) => o.kind !== 'Namespace');
    for (const o of namespaced) expect(get(o, 'metadata.namespace'), `${str(o.kind)} ${str(get(o, 'metadata.name'))}`).toBe(NAMESPACE);
    expect(objs.filter((o) => o.kind === 'Secret')).toEqual([]);
    const cm = objs.find((o) => o.kind === 'ConfigMap');
    expect(cm?.data).toEqual(overlayConfigMap(overlay));
  });

  it.skipIf(!PROMTOOL)('promtool check rules on the PrometheusRule', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kubevigil-deploy-'));
    try {
      const rule = docsOfKind('PrometheusRule')[0]!.value;
      writeFileSync(join(dir, 'rules.yaml'), stringify({ groups: get(rule, 'spec.groups') }));
      const r = spawnSync(PROMTOOL!, ['check', 'rules', join(dir, 'rules.yaml')], { encoding: 'utf8', timeout: 60_000 });
      expect(r.stdout + r.stderr).toContain('SUCCESS');
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!AMTOOL)('amtool check-config on the Alertmanager route', () => {
    const r = spawnSync(AMTOOL!, ['check-config', join(DEPLOY, 'integrations/alertmanager-route.yaml')], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stdout + r.stderr).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Runbooks: every alert of both rule files links its own section of docs/runbooks.md.

const RUNBOOKS = 'docs/runbooks.md';
const RUNBOOK_BASE = `https://github.com/kubevigil/kubevigil/blob/main/${RUNBOOKS}#`;
const RULE_FILES = ['deploy/integrations/prometheusrule.yaml', 'deploy/compose/prometheus/rules/kubevigil.rules.yml'] as const;

/** The alerting rules of a rule file: a PrometheusRule's spec.groups or a plain Prometheus rules file's groups. */
function alertsIn(file: string): Obj[] {
  const doc = parse(readFileSync(join(ROOT, file), 'utf8')) as Obj;
  const groups = doc.kind === 'PrometheusRule' ? get(doc, 'spec.groups') : doc.groups;
  return arr(groups)
    .flatMap((g) => arr(get(g, 'rules')))
    .filter(isObj)
    .filter((r) => typeof r.alert === 'string');
}

/** Markdown with its fenced code blocks blanked (a `# comment` in a shell block is no heading). */
const withoutCodeBlocks = (md: string) => md.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[ \t]*$/gm, '');

/**
 * The headings of a Markdown file with the anchors GitHub gives them (github-slugger): the text
 * lower-cased, everything but letters, digits, spaces, hyphens and underscores dropped, spaces made
 * hyphens; a repeated anchor gets -1, -2… in order of appearance.
 */
function githubHeadings(md: string): { level: number; text: string; anchor: string }[] {
  const seen = new Map<string, number>();
  return [...withoutCodeBlocks(md).matchAll(/^(#{1,6})[ \t]+(.+?)[ \t#]*$/gm)].map((m) => {
    const text = m[2]!;
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    return { level: m[1]!.length, text, anchor: n === 0 ? base : `${base}-${n}` };
  });
}

describe(`${RUNBOOKS}: a runbook for every alert`, () => {
  const md = readFileSync(join(ROOT, RUNBOOKS), 'utf8');
  const headings = githubHeadings(md);
  const sections = new Map(headings.filter((h) => h.level === 2).map((h) => [h.anchor, h.text]));
  /** The text of the `## ` section with this heading (code blocks included), up to the next `## `. */
  const section = (heading: string) => {
    const start = md.search(new RegExp(`^## ${heading}[ \\t]*$`, 'm'));
    if (start < 0) return '';
    const next = md.slice(start + 3).search(/^## /m);
    return next < 0 ? md.slice(start) : md.slice(start, start + 3 + next);
  };

  it('the anchor function gives what GitHub gives', () => {
    expect(githubHeadings('## KubevigilDown\n```sh\n# not a heading\n```\n## Before you start\n### Check\n## Check').map((h) => h.anchor)).toEqual([
      'kubevigildown',
      'before-you-start',
      'check',
      'check-1',
    ]);
    expect(githubHeadings('## 8. Verify: an incident in Slack')[0]!.anchor).toBe('8-verify-an-incident-in-slack');
  });

  it('both rule files list the same alerts', () => {
    const [rule, compose] = RULE_FILES.map((f) => alertsIn(f).map((a) => str(a.alert)));
    expect(rule!.length).toBeGreaterThanOrEqual(13);
    expect(new Set(rule).size, 'alert names are unique').toBe(rule!.length);
    expect(compose).toEqual(rule);
  });

  it.each(RULE_FILES)('%s: every alert has a runbook_url into its own section', (file) => {
    for (const a of alertsIn(file)) {
      const name = str(a.alert);
      const url = str(get(a, 'annotations.runbook_url'));
      expect(url, `${name} has no runbook_url`).not.toBe('');
      expect(url.startsWith(RUNBOOK_BASE), `${name}: ${url} does not point into ${RUNBOOKS}`).toBe(true);
      const anchor = url.slice(RUNBOOK_BASE.length);
      expect(sections.get(anchor), `${name}: #${anchor} is no "## " heading of ${RUNBOOKS}`).toBe(name);
    }
  });

  it('every section says what the alert means, what is lost, how to diagnose and mitigate, with the metrics of its expression', () => {
    for (const a of alertsIn(RULE_FILES[0])) {
      const name = str(a.alert);
      const text = section(name);
      for (const part of ['**What it means.**', '**Impact.**', '**Diagnose.**', '**Mitigate.**']) expect(text, `${name}: ${part}`).toContain(part);
      for (const m of metricsIn(str(a.expr))) expect(text, `${name}: its expression reads ${m}`).toContain(m);
    }
  });

  it('names only metrics kubevigil defines and settings it reads', async () => {
    checkNames([md], await knownMetrics());
    const settings = new Set(SETTINGS.map((s) => s.env));
    const named = new Set([...md.matchAll(/\b(?:KUBEVIGIL|SLACK|KAFKA|REDIS|LOKI|TEMPO)_[A-Z0-9_]+\b/g)].map((m) => m[0]));
    expect(named.size).toBeGreaterThan(10);
    for (const n of named) expect(settings, `${RUNBOOKS} names ${n}, which is not a setting (services/config.ts SETTINGS)`).toContain(n);
  });

  it('links only to headings and files that exist', () => {
    for (const m of md.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1]!;
      if (/^[a-z]+:/.test(target)) continue;
      const [path, anchor] = target.split('#') as [string, string | undefined];
      const file = path ? resolve(ROOT, 'docs', path) : join(ROOT, RUNBOOKS);
      expect(existsSync(file), `${RUNBOOKS} links to ${target}`).toBe(true);
      if (anchor && file.endsWith('.md'))
        expect(
          githubHeadings(readFileSync(file, 'utf8')).map((h) => h.anchor),
          `${RUNBOOKS} links to ${target}`,
        ).toContain(anchor);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Alertmanager → kubevigil: the README's snippet, deploy/integrations and the compose stack agree.

/** The README's fenced yaml block with the kubevigil receiver. */
function readmeAlertmanagerSnippet(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/^```ya?ml\n([\s\S]*?)^```$/gm)]
    .map((m) => m[1]!)
    .filter((b) => /\/ingest\/alertmanager/.test(b) && /webhook_configs:/.test(b));
  expect(blocks, 'README.md has one yaml block with the Alertmanager receiver').toHaveLength(1);
  return blocks[0]!;
}

const ALERTMANAGER_CONFIGS: [string, () => string][] = [
  ['README.md', readmeAlertmanagerSnippet],
  ['deploy/integrations/alertmanager-route.yaml', () => readFileSync(join(DEPLOY, 'integrations/alertmanager-route.yaml'), 'utf8')],
  ['deploy/compose/alertmanager/alertmanager.yml', () => readFileSync(join(DEPLOY, 'compose/alertmanager/alertmanager.yml'), 'utf8')],
];

/** The kubevigil route (first child), the catch-all (last child) and the kubevigil webhook of a configuration. */
function kubevigilParts(am: Obj) {
  const routes = arr(get(am, 'route.routes'));
  const receiver = arr(am.receivers).find((r) => get(r, 'name') === 'kubevigil');
  const hooks = arr(get(receiver, 'webhook_configs'));
  expect(hooks).toHaveLength(1);
  return { route: routes[0], last: routes.at(-1), rootReceiver: get(am, 'route.receiver'), hook: hooks[0] as Obj };
}

describe('Alertmanager → kubevigil: README.md, deploy/integrations and the compose stack give the same settings', () => {
  const parsed = ALERTMANAGER_CONFIGS.map(([file, text]) => [file, parse(text()) as Obj] as const);

  it.each(parsed)('%s: first route for every alert but KubevigilIncident, continuing; last a catch-all to the top-level receiver', (_file, am) => {
    const { route, last, rootReceiver } = kubevigilParts(am);
    expect(get(route, 'receiver')).toBe('kubevigil');
    expect(get(route, 'matchers')).toEqual(['alertname!="KubevigilIncident"']);
    expect(get(route, 'match')).toBeUndefined();
    expect(get(route, 'continue')).toBe(true);
    expect(last).toEqual({ receiver: rootReceiver });
  });

  it.each(parsed)('%s: webhook to /ingest/alertmanager on port 8080 of the Service "kubevigil", bearer token from a file, resolved alerts too', (_file, am) => {
    const { hook } = kubevigilParts(am);
    const url = new URL(str(hook.url));
    expect(url.pathname).toBe('/ingest/alertmanager');
    expect(url.port).toBe('8080');
    expect(url.hostname.split('.')[0]).toBe('kubevigil');
    expect(get(hook, 'send_resolved')).toBe(true);
    expect(get(hook, 'http_config.authorization.type')).toBe('Bearer');
    expect(str(get(hook, 'http_config.authorization.credentials_file'))).toMatch(/^\//);
    expect(get(hook, 'http_config.authorization.credentials')).toBeUndefined();
  });

  it('the three agree: the same kubevigil route, and the same webhook but for the host and token path of the compose stack', () => {
    const [readme, integration, compose] = parsed.map(([, am]) => kubevigilParts(am));
    expect(readme!.route).toEqual(integration!.route);
    expect(compose!.route).toEqual(integration!.route);
    expect(readme!.hook).toEqual(integration!.hook);
    expect(str(integration!.hook.url)).toBe(`http://${SERVICE_HOST}/ingest/alertmanager`);
    const portable = (h: Obj) => ({
      ...h,
      url: new URL(str(h.url)).pathname,
      http_config: { authorization: { type: get(h, 'http_config.authorization.type') } },
    });
    expect(portable(compose!.hook)).toEqual(portable(integration!.hook));
  });
});

describe('deploy/: the real tools on the Alertmanager configurations and the alerts', () => {
  /** The receivers amtool routes an alert with these labels to. */
  const routesOf = (file: string, labels: string[]) => {
    const r = spawnSync(AMTOOL!, ['config', 'routes', 'test', `--config.file=${file}`, ...labels], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    return r.stdout.trim().split(',').sort();
  };

  it.skipIf(!AMTOOL).each(ALERTMANAGER_CONFIGS)(
    'amtool: %s sends kubevigil every alert but its own and leaves every other receiver as it was',
    (_file, text) => {
      const dir = mkdtempSync(join(tmpdir(), 'kubevigil-am-'));
      try {
        const am = parse(text()) as Obj;
        // The same configuration without the kubevigil route and the catch-all it brings.
        const before = structuredClone(am);
        const routes = arr(get(before, 'route.routes'));
        (before.route as Obj).routes = routes.slice(1, -1);
        const withFile = join(dir, 'with.yml');
        const withoutFile = join(dir, 'without.yml');
        writeFileSync(withFile, text());
        writeFileSync(withoutFile, stringify(before));
        const check = spawnSync(AMTOOL!, ['check-config', withFile], { encoding: 'utf8', timeout: 60_000 });
        expect(check.stdout + check.stderr).toContain('SUCCESS');
        for (const labels of [
          ['alertname=IstioMTLSFailures'],
          ['alertname=IstioMTLSFailures', 'severity=critical'],
          ['alertname=KubeAPIErrorsHigh', 'severity=warning', 'namespace=payments'],
        ]) {
          const expected = [...new Set([...routesOf(withoutFile, labels), 'kubevigil'])].sort();
          expect(routesOf(withFile, labels), labels.join(' ')).toEqual(expected);
        }
        for (const labels of [['alertname=KubevigilIncident'], ['alertname=KubevigilIncident', 'severity=critical', 'namespace=payments']]) {
          const got = routesOf(withFile, labels);
          expect(got, labels.join(' ')).not.toContain('kubevigil');
          expect(got, labels.join(' ')).toEqual(routesOf(withoutFile, labels));
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it.skipIf(!PROMTOOL)('promtool test rules: KubevigilDetectionSlow fires when batches take longer than the largest bucket, not when they are fast', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kubevigil-rules-'));
    try {
      const rule = alertsIn(RULE_FILES[0]).find((a) => a.alert === 'KubevigilDetectionSlow')!;
      // Annotations are templates: leave them out, the test is about the expression and its labels.
      writeFileSync(join(dir, 'rules.yaml'), stringify({ groups: [{ name: 'detection', rules: [{ ...rule, annotations: undefined }] }] }));
      const buckets = (perMinute: Record<string, number>) =>
        ['0.0005', '0.001', '0.005', '0.01', '0.05', '0.1', '0.5', '+Inf'].map((le) => ({
          series: `kubevigil_detect_batch_seconds_bucket{namespace="${NAMESPACE}", source="k8s-audit", le="${le}"}`,
          values: `0+${perMinute[le] ?? 0}x40`,
        }));
      const slow = buckets({ '+Inf': 60 }); // every batch beyond 0.5 s
      const fast = buckets({ '0.001': 60, '0.005': 60, '0.01': 60, '0.05': 60, '0.1': 60, '0.5': 60, '+Inf': 60 });
      const test = (input: object[], alerts: object[]) => ({
        interval: '1m',
        input_series: input,
        alert_rule_test: [{ eval_time: '30m', alertname: 'KubevigilDetectionSlow', exp_alerts: alerts }],
      });
      writeFileSync(
        join(dir, 'test.yaml'),
        stringify({
          rule_files: ['rules.yaml'],
          evaluation_interval: '1m',
          tests: [test(slow, [{ exp_labels: { severity: 'warning', namespace: NAMESPACE } }]), test(fast, [])],
        }),
      );
      const r = spawnSync(PROMTOOL!, ['test', 'rules', join(dir, 'test.yaml')], { encoding: 'utf8', timeout: 60_000 });
      expect(r.stdout + r.stderr).toContain('SUCCESS');
      expect(r.status, r.stdout + r.stderr).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
