/**
 * The Helm chart in charts/kubevigil: `helm lint --strict` accepts it, `helm template` renders both
 * topologies into objects that decode strictly (known kinds, the release's namespace, Pod Security
 * "restricted", settings that pass kubevigil's own configuration check), the workloads match what
 * `kubectl kustomize deploy/<mode>` builds, values.schema.json refuses bad values, and the chart's
 * copy of the PrometheusRule is deploy/'s.
 *
 * helm comes from `bash scripts/helm.sh install` (~/.cache/kubevigil/bin/helm) or PATH; without it
 * the tests that run it are skipped, as are the comparisons without kubectl.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig } from '../services/config.js';
import { arr, get, isObj, str, walk, type Obj } from './helpers/config-files.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CHART = join(ROOT, 'charts/kubevigil');
const DEPLOY = join(ROOT, 'deploy');
const IMAGE = 'ghcr.io/kubevigil/kubevigil:0.1.0';
const NAMESPACE = 'kubevigil-system';
const MODES = ['embedded', 'distributed'] as const;
type Mode = (typeof MODES)[number];
/** Tokens long enough for kubevigil (it refuses fewer than 16 characters). */
const TOKENS = { secret: { ingestToken: 'i'.repeat(48), apiToken: 'a'.repeat(48) } };

/** A command on PATH, or undefined. */
function onPath(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** helm as scripts/helm.sh caches it, else helm on PATH, else undefined. */
function findHelm(): string | undefined {
  const cached = join(homedir(), '.cache/kubevigil/bin/helm');
  try {
    accessSync(cached, constants.X_OK);
    return cached;
  } catch {
    return onPath('helm');
  }
}
const HELM = findHelm();
const KUBECTL = onPath('kubectl');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs helm with values given as YAML on stdin (`-f -`). */
function helm(args: string[], values: Obj = {}): Run {
  const r = spawnSync(HELM!, [...args, '-f', '-'], { encoding: 'utf8', input: JSON.stringify(values), timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Deep merge of plain mappings (later wins; lists are replaced), as helm merges values files. */
function merge(...layers: Obj[]): Obj {
  const out: Obj = {};
  for (const layer of layers) for (const [k, v] of Object.entries(layer)) out[k] = isObj(v) && isObj(out[k]) ? merge(out[k] as Obj, v) : v;
  return out;
}

/** Every YAML document of a multi-document text, as mappings; any parse error throws. */
function decode(text: string, what: string): Obj[] {
  const docs = parseAllDocuments(text);
  const list = Array.isArray(docs) ? docs : [docs];
  return list.flatMap((d, i) => {
    if (d.errors.length) throw new Error(`${what} document ${i}: ${d.errors.map((e) => e.message).join('; ')}`);
    const value: unknown = d.toJS();
    if (value === null || value === undefined) return [];
    if (!isObj(value)) throw new Error(`${what} document ${i} is not a mapping`);
    return [value];
  });
}

/** `helm template`: the rendered objects, or an error with helm's message. */
function render(values: Obj, opts: { release?: string; namespace?: string } = {}): Obj[] {
  const r = helm(['template', opts.release ?? 'kubevigil', CHART, '--namespace', opts.namespace ?? NAMESPACE], values);
  if (r.status !== 0) throw new Error(`helm template failed (${String(r.status)}): ${r.stderr}`);
  return decode(r.stdout, 'helm template');
}

/** `kubectl kustomize deploy/<mode>`. */
function kustomize(mode: Mode): Obj[] {
  const r = spawnSync(KUBECTL!, ['kustomize', join(DEPLOY, mode)], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`kubectl kustomize deploy/${mode}: ${r.stderr}`);
  return decode(r.stdout, `kustomize deploy/${mode}`);
}

const nameOf = (o: unknown) => str(get(o, 'metadata.name'));
const ofKind = (objs: Obj[], kind: string) => objs.filter((o) => o.kind === kind);
const named = (objs: Obj[], kind: string, name: string): Obj => {
  const found = objs.find((o) => o.kind === kind && nameOf(o) === name);
  if (!found) throw new Error(`no ${kind} ${name} among ${objs.map((o) => `${str(o.kind)}/${nameOf(o)}`).join(', ')}`);
  return found;
};
const podSpec = (d: Obj): Obj => {
  const s = get(d, 'spec.template.spec');
  if (!isObj(s)) throw new Error(`Deployment ${nameOf(d)} without spec.template.spec`);
  return s;
};
const container = (d: Obj): Obj => {
  const c = arr(podSpec(d).containers).filter(isObj);
  expect(c, `Deployment ${nameOf(d)}: one container`).toHaveLength(1);
  return c[0]!;
};
const component = (o: unknown, path = 'metadata.labels') => get(o, [...path.split('.'), 'app.kubernetes.io/component']);
/** True when a label selector (matchLabels only) selects these labels. */
const selects = (selector: unknown, labels: unknown) => isObj(selector) && isObj(labels) && Object.entries(selector).every(([k, v]) => labels[k] === v);

/** apiVersion + kind pairs the chart may render. */
const KNOWN_KINDS = new Set([
  'v1 ServiceAccount',
  'v1 Secret',
  'v1 ConfigMap',
  'v1 Service',
  'v1 PersistentVolumeClaim',
  'apps/v1 Deployment',
  'networking.k8s.io/v1 NetworkPolicy',
  'policy/v1 PodDisruptionBudget',
  'monitoring.coreos.com/v1 PrometheusRule',
  'monitoring.coreos.com/v1 PodMonitor',
  'rbac.authorization.k8s.io/v1 ClusterRole',
  'rbac.authorization.k8s.io/v1 ClusterRoleBinding',
]);
const CLUSTER_SCOPED = new Set(['ClusterRole', 'ClusterRoleBinding']);

/** The environment a container gets: ConfigMap, then Secret (envFrom order), then env. */
function containerEnv(objs: Obj[], d: Obj): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of arr(container(d).envFrom)) {
    const cm = str(get(from, 'configMapRef.name'));
    const secret = str(get(from, 'secretRef.name'));
    if (cm) Object.assign(env, get(named(objs, 'ConfigMap', cm), 'data'));
    if (secret) {
      const data = get(named(objs, 'Secret', secret), 'data');
      for (const [k, v] of Object.entries(isObj(data) ? data : {})) env[k] = Buffer.from(str(v), 'base64').toString('utf8');
    }
  }
  for (const e of arr(container(d).env)) env[str(get(e, 'name'))] = str(get(e, 'value'));
  return env;
}

/** The --role of a Deployment's command, if any. */
const roleOf = (d: Obj) => {
  const cmd = arr(container(d).command).map(str);
  return cmd.includes('--role') ? cmd[cmd.indexOf('--role') + 1] : undefined;
};

/** The strict checks every rendering must pass. */
function checkRendered(objs: Obj[], namespace: string) {
  expect(objs.length).toBeGreaterThan(0);
  for (const o of objs) {
    const what = `${str(o.kind)} ${nameOf(o)}`;
    expect(KNOWN_KINDS, `${what}: ${str(o.apiVersion)} ${str(o.kind)} is not a known apiVersion/kind`).toContain(`${str(o.apiVersion)} ${str(o.kind)}`);
    expect(nameOf(o), `${what} has a name`).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
    expect(nameOf(o).length).toBeLessThanOrEqual(63);
    if (CLUSTER_SCOPED.has(str(o.kind))) expect(get(o, 'metadata.namespace'), what).toBeUndefined();
    else expect(get(o, 'metadata.namespace'), `${what} is in the release's namespace`).toBe(namespace);
    expect(get(o, ['metadata', 'labels', 'app.kubernetes.io/managed-by']), what).toBe('Helm');
  }
  const keys = objs.map((o) => `${str(o.kind)}/${nameOf(o)}`);
  expect(new Set(keys).size, 'no two objects share kind and name').toBe(keys.length);
  expect(ofKind(objs, 'Namespace')).toEqual([]);

  const deployments = ofKind(objs, 'Deployment');
  expect(deployments.length).toBeGreaterThan(0);
  const sa = ofKind(objs, 'ServiceAccount');
  expect(sa).toHaveLength(1);
  for (const d of deployments) {
    const pod = podSpec(d);
    const c = container(d);
    const sc = get(c, 'securityContext');
    const podLabels = get(d, 'spec.template.metadata.labels');
    expect(selects(get(d, 'spec.selector.matchLabels'), podLabels), `${nameOf(d)}: its selector selects its pods`).toBe(true);
    expect(pod.serviceAccountName).toBe(nameOf(sa[0]));
    expect(pod.automountServiceAccountToken).toBe(sa[0]!.automountServiceAccountToken);
    expect(pod.enableServiceLinks).toBe(false);
    // Pod Security "restricted", pod and container.
    expect(get(pod, 'securityContext.runAsNonRoot')).toBe(true);
    expect(get(pod, 'securityContext.runAsUser')).toBe(10001);
    expect(get(pod, 'securityContext.seccompProfile.type')).toBe('RuntimeDefault');
    expect(pod.hostNetwork ?? false).toBe(false);
    expect(pod.hostPID ?? false).toBe(false);
    expect(pod.hostIPC ?? false).toBe(false);
    expect(get(sc, 'runAsNonRoot')).toBe(true);
    expect(get(sc, 'runAsUser')).toBe(10001);
    expect(get(sc, 'readOnlyRootFilesystem')).toBe(true);
    expect(get(sc, 'allowPrivilegeEscalation')).toBe(false);
    expect(get(sc, 'privileged')).not.toBe(true);
    expect(arr(get(sc, 'capabilities.drop'))).toEqual(['ALL']);
    expect(get(sc, 'capabilities.add')).toBeUndefined();
    expect(get(sc, 'seccompProfile.type')).toBe('RuntimeDefault');
    // Volumes restricted allows, and the ones kubevigil writes to.
    const volumes = arr(pod.volumes).filter(isObj);
    for (const v of volumes)
      expect(
        Object.keys(v).filter((k) => k !== 'name'),
        `${nameOf(d)} volume ${str(v.name)}`,
      ).toEqual([expect.stringMatching(/^(emptyDir|persistentVolumeClaim|configMap|secret|projected)$/)]);
    const mounts = arr(c.volumeMounts).filter(isObj);
    const volumeAt = (path: string) => volumes.find((v) => v.name === mounts.find((m) => m.mountPath === path)?.name);
    expect(get(volumeAt('/tmp'), 'emptyDir'), '/tmp is an emptyDir').toBeDefined();
    expect(volumeAt('/data'), '/data is a volume').toBeDefined();
    const claim = str(get(volumeAt('/data'), 'persistentVolumeClaim.claimName'));
    if (claim) expect(keys, `${nameOf(d)} mounts claim ${claim}`).toContain(`PersistentVolumeClaim/${claim}`);
    // The program, as the image runs it.
    expect(c.workingDir).toBe('/app');
    expect(arr(c.command).slice(0, 3)).toEqual(['node', 'bin/kubevigil.js', 'serve']);
    expect(c.args).toBeUndefined();
    expect(arr(c.ports)).toEqual([{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
    expect(get(c, 'startupProbe.httpGet')).toEqual({ path: '/healthz', port: 'http' });
    expect(get(c, 'livenessProbe.httpGet')).toEqual({ path: '/healthz', port: 'http' });
    expect(get(c, 'readinessProbe.httpGet')).toEqual({ path: '/readyz', port: 'http' });
    for (const r of ['cpu', 'memory']) {
      expect(get(c, `resources.requests.${r}`), `${nameOf(d)} ${r} request`).toBeDefined();
      expect(get(c, `resources.limits.${r}`), `${nameOf(d)} ${r} limit`).toBeDefined();
    }
    // The settings: every envFrom source is rendered (or is the existing Secret named in values).
    for (const from of arr(c.envFrom)) {
      const cm = str(get(from, 'configMapRef.name'));
      if (cm) expect(keys).toContain(`ConfigMap/${cm}`);
    }
    expect(arr(c.env)).toContainEqual({ name: 'KUBEVIGIL_HOST', value: '0.0.0.0' });
  }

  // Services, budgets and policies select pods that exist.
  const podLabels = deployments.map((d) => get(d, 'spec.template.metadata.labels'));
  for (const s of ofKind(objs, 'Service')) {
    expect(
      podLabels.filter((l) => selects(get(s, 'spec.selector'), l)),
      `Service ${nameOf(s)} selects one Deployment's pods`,
    ).toHaveLength(1);
    expect(arr(get(s, 'spec.ports'))).toEqual([{ name: 'http', port: 8080, targetPort: 'http', protocol: 'TCP' }]);
  }
  for (const p of ofKind(objs, 'PodDisruptionBudget'))
    expect(
      podLabels.filter((l) => selects(get(p, 'spec.selector.matchLabels'), l)),
      `PodDisruptionBudget ${nameOf(p)}`,
    ).toHaveLength(1);
  const policies = ofKind(objs, 'NetworkPolicy');
  if (policies.length) {
    for (const l of podLabels) {
      // An empty podSelector selects every pod of the namespace.
      const covering = policies.filter((p) => {
        const selector = get(p, 'spec.podSelector');
        return isObj(selector) && (Object.keys(selector).length === 0 || selects(selector.matchLabels, l));
      });
      expect(
        covering.map(nameOf).filter((n) => n.endsWith('-default-deny')),
        'the default-deny policy covers every pod',
      ).toHaveLength(1);
      expect(
        covering.filter((p) => !nameOf(p).endsWith('-default-deny')),
        'one policy opens what each pod needs',
      ).toHaveLength(1);
    }
    for (const p of policies) {
      expect(get(p, 'spec.policyTypes')).toEqual(['Ingress', 'Egress']);
      for (const r of arr(get(p, 'spec.ingress')))
        expect(arr(get(r, 'ports')), `${nameOf(p)}: ingress opens 8080 only`).toEqual([{ protocol: 'TCP', port: 8080 }]);
      for (const r of arr(get(p, 'spec.egress'))) {
        expect(arr(get(r, 'ports')).length, `${nameOf(p)}: every egress rule names its ports`).toBeGreaterThan(0);
        expect(arr(get(r, 'to')).length, `${nameOf(p)}: every egress rule names its peers`).toBeGreaterThan(0);
      }
    }
  }
}

/** The egress ports of the NetworkPolicy of a component. */
function egressPorts(objs: Obj[], comp: string): number[] {
  const p = ofKind(objs, 'NetworkPolicy').find((x) => component(x, 'spec.podSelector.matchLabels') === comp);
  if (!p) throw new Error(`no NetworkPolicy for ${comp}`);
  return arr(get(p, 'spec.egress')).flatMap((r) => arr(get(r, 'ports')).map((x) => Number(get(x, 'port'))));
}
const policyOf = (objs: Obj[], comp: string) => ofKind(objs, 'NetworkPolicy').find((x) => component(x, 'spec.podSelector.matchLabels') === comp)!;

describe('charts/kubevigil: files', () => {
  it('Chart.yaml: apiVersion v2, version and appVersion 0.1.0', () => {
    const chart = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as Obj;
    expect(chart).toMatchObject({ apiVersion: 'v2', name: 'kubevigil', version: '0.1.0', appVersion: '0.1.0', type: 'application' });
  });

  it('files/prometheusrule.yaml is a copy of deploy/integrations/prometheusrule.yaml (spec.groups)', () => {
    const groups = (file: string) => get(parse(readFileSync(file, 'utf8')), 'spec.groups');
    const deployed = groups(join(DEPLOY, 'integrations/prometheusrule.yaml'));
    expect(arr(deployed).length).toBeGreaterThan(0);
    expect(
      groups(join(CHART, 'files/prometheusrule.yaml')),
      'copy it over: cp deploy/integrations/prometheusrule.yaml charts/kubevigil/files/prometheusrule.yaml',
    ).toEqual(deployed);
  });

  it('values.schema.json declares every key of values.yaml, and the mode enum', () => {
    const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as Obj;
    const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as Obj;
    expect(get(schema, 'properties.mode.enum')).toEqual(['embedded', 'distributed']);
    expect(values.mode).toBe('embedded');
    const resolveRef = (s: unknown): unknown => {
      const ref = str(get(s, '$ref'));
      return ref ? get(schema, ref.replace(/^#\//, '').split('/')) : s;
    };
    const undeclared: string[] = [];
    const check = (v: unknown, s: unknown, path: string) => {
      const node = resolveRef(s);
      if (!isObj(v) || !isObj(node)) return;
      const props = get(node, 'properties');
      for (const [k, child] of Object.entries(v)) {
        const declared = isObj(props) ? props[k] : undefined;
        if (declared) check(child, declared, `${path}.${k}`);
        else if (node.additionalProperties === false) undeclared.push(`${path}.${k}`);
      }
    };
    check(values, schema, '');
    expect(undeclared).toEqual([]);
  });

  it('chart-testing values exist for both modes', () => {
    const ci = walk(join(CHART, 'ci')).map((f) => [f, parse(readFileSync(f, 'utf8')) as Obj] as const);
    expect(ci.map(([, v]) => v.mode).sort()).toEqual(['distributed', 'embedded']);
    for (const [f, v] of ci) expect(f.endsWith(`${str(v.mode)}-values.yaml`), f).toBe(true);
  });
});

describe.skipIf(!HELM)('charts/kubevigil: helm lint and the schema', () => {
  it.each(MODES)('helm lint --strict with ci/%s-values.yaml', (mode) => {
    const r = spawnSync(HELM!, ['lint', '--strict', CHART, '-f', join(CHART, `ci/${mode}-values.yaml`)], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stdout + r.stderr).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(r.stdout + r.stderr).not.toMatch(/\[(WARNING|ERROR)\]/);
    expect(r.status).toBe(0);
  });

  it.each(MODES)('helm lint --strict in %s mode with the tokens set on the command line', (mode) => {
    const r = helm(['lint', '--strict', CHART, '--namespace', NAMESPACE], merge(TOKENS, { mode }));
    expect(r.stdout + r.stderr).toContain('0 chart(s) failed');
    expect(r.status).toBe(0);
  });

  const BAD: [string, Obj, RegExp][] = [
    ['mode "cluster"', { mode: 'cluster' }, /at '\/mode': value must be one of 'embedded', 'distributed'/],
    ['a misspelt key', { mdoe: 'embedded' }, /additional properties 'mdoe' not allowed/],
    ['a short token', { secret: { ingestToken: 'too-short' } }, /at '\/secret\/ingestToken'/],
    ['a broker without a port', { kafka: { brokers: ['kafka.kafka.svc'] } }, /at '\/kafka\/brokers\/0'/],
    ['an address without a prefix length', { networkPolicy: { apiServer: { cidrs: ['10.0.0.1'] } } }, /at '\/networkPolicy\/apiServer\/cidrs\/0'/],
    ['a severity kubevigil does not know', { config: { minSeverity: 'urgent' } }, /at '\/config\/minSeverity'/],
    ['a Redis URL of another scheme', { redis: { url: 'http://redis:6379' } }, /at '\/redis\/url'/],
    [
      'a Loki query without a stream selector',
      { loki: { url: 'http://loki:3100', queries: [{ name: 'x', query: 'rate(x)' }] } },
      /at '\/loki\/queries\/0\/query'/,
    ],
  ];

  it.each(BAD)('helm template refuses %s, naming it', (_what, bad, message) => {
    const r = helm(['template', 'kubevigil', CHART], merge(TOKENS, bad));
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain("values don't meet the specifications of the schema");
    expect(r.stderr).toMatch(message);
  });

  it('helm lint --strict refuses mode "cluster" too', () => {
    const r = helm(['lint', '--strict', CHART], merge(TOKENS, { mode: 'cluster' }));
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/at '\/mode': value must be one of 'embedded', 'distributed'/);
  });

  const INCOMPLETE: [string, Obj, RegExp][] = [
    ['no tokens and no existing Secret', {}, /set secret\.ingestToken and secret\.apiToken .* or secret\.existingSecret/],
    ['a Loki URL without queries', merge(TOKENS, { loki: { url: 'http://loki:3100' } }), /loki\.url is set but loki\.queries is empty/],
    ['a Tempo URL without queries', merge(TOKENS, { tempo: { url: 'http://tempo:3200' } }), /tempo\.url is set but tempo\.queries is empty/],
    ['distributed mode without brokers', merge(TOKENS, { mode: 'distributed', kafka: { brokers: [] } }), /mode distributed needs kafka\.brokers/],
    [
      'a Slack bot token without a channel',
      merge(TOKENS, { slack: { botToken: 'xoxb-1-2-abc' } }),
      /slack\.botToken is set but neither slack\.channel nor slack\.routes/,
    ],
    ['webhooks without a signing key', merge(TOKENS, { webhooks: { urls: ['https://siem.example.com/hook'] } }), /webhooks\.secret must be a signing key/],
    [
      'a PodMonitor without a metrics token',
      merge(TOKENS, { metrics: { podMonitor: { enabled: true } } }),
      /metrics\.podMonitor\.enabled: set secret\.metricsToken/,
    ],
    [
      'values the chart would ignore next to an existing Secret',
      { secret: { existingSecret: 'creds' }, slack: { botToken: 'xoxb-1-2-abc', channel: 'C0123ABCD' } },
      /secret\.existingSecret is set, so the chart creates no Secret and would ignore slack\.botToken, slack\.channel/,
    ],
    [
      'a Kafka egress rule without a peer',
      merge(TOKENS, { mode: 'distributed', kafka: { networkPolicy: { namespaceSelector: null } } }),
      /kafka\.networkPolicy names no peer/,
    ],
  ];

  it.each(INCOMPLETE)('helm template refuses %s with advice', (_what, values, message) => {
    const r = helm(['template', 'kubevigil', CHART], values);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(message);
  });
});

describe.skipIf(!HELM)('charts/kubevigil: the install notes', () => {
  const notes = (values: Obj) => {
    const r = helm(['install', 'kubevigil', CHART, '--namespace', NAMESPACE, '--dry-run=client'], values);
    expect(r.status, r.stderr).toBe(0);
    return r.stdout.slice(r.stdout.indexOf('NOTES:'));
  };

  it('name the Services senders and people use, and warn while the control-plane CIDR is the placeholder', () => {
    const embedded = notes(TOKENS);
    expect(embedded).toContain(`http://kubevigil.${NAMESPACE}.svc:8080   (/ingest/k8s-audit`);
    expect(embedded).toContain(`http://kubevigil.${NAMESPACE}.svc:8080/api/v1/incidents`);
    expect(embedded).toContain('WARNING: networkPolicy.apiServer.cidrs still holds the placeholder 192.0.2.0/24');
    const distributed = notes(merge(TOKENS, { mode: 'distributed', networkPolicy: { apiServer: { cidrs: ['10.0.0.10/32'] } } }));
    expect(distributed).toContain(`http://kubevigil-api.${NAMESPACE}.svc:8080/api/v1/incidents`);
    expect(distributed).toContain('logs deploy/kubevigil-ingest');
    expect(distributed).not.toContain('WARNING');
  });
});

describe.skipIf(!HELM)('charts/kubevigil: helm template', () => {
  const rendered = Object.fromEntries(MODES.map((mode) => [mode, () => render(merge(TOKENS, { mode }))])) as Record<Mode, () => Obj[]>;

  it.each(MODES)('%s: every object decodes strictly, in the release namespace, pods restricted', (mode) => {
    const objs = rendered[mode]();
    checkRendered(objs, NAMESPACE);
    for (const d of ofKind(objs, 'Deployment')) expect(container(d).image).toBe(IMAGE);
  });

  it('embedded: one Deployment (1 replica, Recreate) on a claim, the Service "kubevigil", no Kafka', () => {
    const objs = rendered.embedded();
    expect(ofKind(objs, 'Deployment').map(nameOf)).toEqual(['kubevigil']);
    const d = named(objs, 'Deployment', 'kubevigil');
    expect(get(d, 'spec.replicas')).toBe(1);
    expect(get(d, 'spec.strategy')).toEqual({ type: 'Recreate' });
    expect(arr(container(d).command)).toEqual(['node', 'bin/kubevigil.js', 'serve']);
    const claim = str(
      arr(podSpec(d).volumes)
        .map((v) => get(v, 'persistentVolumeClaim.claimName'))
        .find(Boolean),
    );
    expect(get(named(objs, 'PersistentVolumeClaim', claim), 'spec.resources.requests.storage')).toBe('5Gi');
    expect(component(named(objs, 'Service', 'kubevigil'), 'spec.selector')).toBe('embedded');
    expect(ofKind(objs, 'PodDisruptionBudget')).toEqual([]);
    expect(get(named(objs, 'ConfigMap', 'kubevigil'), 'data.KAFKA_BROKERS')).toBeUndefined();
    expect(egressPorts(objs, 'embedded')).not.toContain(9092);
  });

  it('distributed: a Deployment per role with its replicas and --role, budgets, Services, Kafka and Redis from values', () => {
    const objs = render(
      merge(TOKENS, {
        mode: 'distributed',
        kafka: { brokers: ['k0.streaming.svc:9093', 'k1.streaming.svc:9093'] },
        redis: { url: 'rediss://cache.redis.svc:6380' },
      }),
    );
    checkRendered(objs, NAMESPACE);
    const roles = Object.fromEntries(ofKind(objs, 'Deployment').map((d) => [roleOf(d), [nameOf(d), get(d, 'spec.replicas'), get(d, 'spec.strategy.type')]]));
    expect(roles).toEqual({
      ingest: ['kubevigil-ingest', 2, 'RollingUpdate'],
      correlator: ['kubevigil-correlator', 2, 'RollingUpdate'],
      api: ['kubevigil-api', 2, 'RollingUpdate'],
      notifier: ['kubevigil-notifier', 1, 'Recreate'],
    });
    for (const d of ofKind(objs, 'Deployment')) expect(component(d)).toBe(roleOf(d));
    expect(
      ofKind(objs, 'PodDisruptionBudget')
        .map((p) => [nameOf(p), get(p, 'spec.minAvailable') ?? `max ${String(get(p, 'spec.maxUnavailable'))}`])
        .sort(),
    ).toEqual([
      ['kubevigil-api', 1],
      ['kubevigil-correlator', 'max 1'],
      ['kubevigil-ingest', 1],
    ]);
    expect(ofKind(objs, 'Service').map((s) => [nameOf(s), component(s, 'spec.selector')])).toEqual([
      ['kubevigil', 'ingest'],
      ['kubevigil-api', 'api'],
    ]);
    const cm = get(named(objs, 'ConfigMap', 'kubevigil'), 'data');
    expect(get(cm, 'KAFKA_BROKERS')).toBe('k0.streaming.svc:9093,k1.streaming.svc:9093');
    expect(get(cm, 'REDIS_URL')).toBe('rediss://cache.redis.svc:6380');
    // Only the notifier keeps state on a claim; the other roles' /data is scratch.
    expect(ofKind(objs, 'PersistentVolumeClaim').map(nameOf)).toEqual(['kubevigil-notifier-data']);
    expect(egressPorts(objs, 'correlator')).toEqual(expect.arrayContaining([53, 9092, 6379]));
    // The API reads and writes silences in Redis.
    expect(egressPorts(objs, 'api')).toContain(6379);
    for (const role of ['ingest', 'notifier']) expect(egressPorts(objs, role), role).not.toContain(6379);
    for (const role of ['ingest', 'correlator', 'api', 'notifier']) expect(egressPorts(objs, role), role).toContain(9092);
  });

  it.each(MODES)("%s: the settings the chart gives every container pass kubevigil's configuration check", (mode) => {
    const objs = rendered[mode]();
    for (const d of ofKind(objs, 'Deployment')) {
      const env = containerEnv(objs, d);
      const role = roleOf(d);
      const config = loadConfig(env, role ? { role } : {});
      expect(config.host).toBe('0.0.0.0');
      expect(config.port).toBe(8080);
      expect(config.dataDir).toBe('/data');
      expect(config.ingestToken).toBe(TOKENS.secret.ingestToken);
      expect(config.apiToken).toBe(TOKENS.secret.apiToken);
      if (mode === 'distributed') {
        expect(config.kafkaBrokers).toEqual(['kafka-kafka-bootstrap.kafka.svc:9092']);
        expect(config.redisUrl).toBe('redis://redis.redis.svc:6379');
        expect([...config.roles]).toEqual([role]);
      } else {
        expect(config.kafkaBrokers).toEqual([]);
        expect(config.roles.size).toBe(4);
      }
      // Without the Secret kubevigil refuses to listen beyond loopback.
      const { KUBEVIGIL_INGEST_TOKEN: _i, KUBEVIGIL_API_TOKEN: _a, ...withoutTokens } = env;
      expect(() => loadConfig(withoutTokens, role ? { role } : {})).toThrow(/KUBEVIGIL_INGEST_TOKEN and KUBEVIGIL_API_TOKEN are not set/);
    }
  });

  it('sizes the V8 heap to 75% of each memory limit, or to heapMiB', () => {
    const heap = (d: Obj) => {
      const opts = str(
        get(
          arr(container(d).env).find((e) => get(e, 'name') === 'NODE_OPTIONS'),
          'value',
        ),
      );
      return Number(/^--max-old-space-size=(\d+)$/.exec(opts)?.[1]);
    };
    const dist = render(merge(TOKENS, { mode: 'distributed' }));
    expect(Object.fromEntries(ofKind(dist, 'Deployment').map((d) => [nameOf(d), heap(d)]))).toEqual({
      'kubevigil-ingest': 768,
      'kubevigil-correlator': 1536,
      'kubevigil-api': 768,
      'kubevigil-notifier': 384,
    });
    const sized = (embedded: Obj) => heap(named(render(merge(TOKENS, { embedded })), 'Deployment', 'kubevigil'));
    expect(sized({ resources: { limits: { memory: '3Gi' } } })).toBe(2304);
    expect(sized({ resources: { limits: { memory: '1536Mi' } } })).toBe(1152);
    expect(sized({ resources: { limits: { memory: '4G' } } })).toBe(Math.floor((4e9 / 2 ** 20) * 0.75));
    expect(sized({ heapMiB: 1000 })).toBe(1000);
  });

  it('creates no Namespace and puts everything in the release namespace, named after the release', () => {
    const objs = render(merge(TOKENS, { mode: 'distributed' }), { release: 'kv', namespace: 'security' });
    checkRendered(objs, 'security');
    expect(ofKind(objs, 'Deployment').map(nameOf).sort()).toEqual([
      'kv-kubevigil-api',
      'kv-kubevigil-correlator',
      'kv-kubevigil-ingest',
      'kv-kubevigil-notifier',
    ]);
    expect(ofKind(objs, 'Service').map(nameOf)).toEqual(['kv-kubevigil', 'kv-kubevigil-api']);
    for (const d of ofKind(objs, 'Deployment')) expect(get(d, ['spec', 'selector', 'matchLabels', 'app.kubernetes.io/instance'])).toBe('kv');
  });

  it("an existing Secret replaces the chart's: no Secret rendered, every pod reads the named one", () => {
    const objs = render({ mode: 'distributed', secret: { existingSecret: 'kubevigil-credentials' }, metrics: { podMonitor: { enabled: true } } });
    checkRendered(objs, NAMESPACE);
    expect(ofKind(objs, 'Secret')).toEqual([]);
    // Prometheus reads the metrics token from the same Secret (its key KUBEVIGIL_METRICS_TOKEN).
    expect(get(arr(get(named(objs, 'PodMonitor', 'kubevigil'), 'spec.podMetricsEndpoints'))[0], 'authorization.credentials')).toEqual({
      name: 'kubevigil-credentials',
      key: 'KUBEVIGIL_METRICS_TOKEN',
    });
    for (const d of ofKind(objs, 'Deployment')) {
      expect(arr(container(d).envFrom)).toContainEqual({ secretRef: { name: 'kubevigil-credentials' } });
      expect(get(d, ['spec', 'template', 'metadata', 'annotations', 'checksum/secret'])).toBeUndefined();
    }
  });

  it("a changed setting changes the pods' config checksum (so they roll)", () => {
    const checksum = (values: Obj) =>
      get(named(render(merge(TOKENS, values)), 'Deployment', 'kubevigil'), ['spec', 'template', 'metadata', 'annotations', 'checksum/config']);
    expect(checksum({})).toMatch(/^[0-9a-f]{64}$/);
    expect(checksum({ config: { logLevel: 'debug' } })).not.toBe(checksum({}));
    expect(checksum({ config: { logLevel: 'info' } })).toBe(checksum({}));
  });

  it("default-deny covers only the release's pods, or the whole namespace when asked", () => {
    const deny = (values: Obj) => get(named(render(merge(TOKENS, values)), 'NetworkPolicy', 'kubevigil-default-deny'), 'spec');
    expect(deny({})).toEqual({
      podSelector: { matchLabels: { 'app.kubernetes.io/name': 'kubevigil', 'app.kubernetes.io/instance': 'kubevigil' } },
      policyTypes: ['Ingress', 'Egress'],
    });
    expect(deny({ networkPolicy: { denyAllInNamespace: true } })).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    expect(ofKind(render(merge(TOKENS, { networkPolicy: { enabled: false } })), 'NetworkPolicy')).toEqual([]);
  });

  it('Slack and webhooks: the Secret carries them, and only the notifying pod gets HTTPS egress', () => {
    const noSlack = render(merge(TOKENS, { mode: 'distributed' }));
    for (const role of ['ingest', 'correlator', 'api', 'notifier']) expect(egressPorts(noSlack, role), role).not.toContain(443);
    expect(egressPorts(render(TOKENS), 'embedded')).not.toContain(443);

    const slack = {
      slack: { botToken: 'xoxb-1-2-abc', channel: 'C0123ABCD', routes: 'severity>=critical => C0PAGER01' },
      webhooks: { urls: ['https://siem.example.com/hook'], secret: 's'.repeat(32) },
    };
    const objs = render(merge(TOKENS, { mode: 'distributed' }, slack));
    expect(egressPorts(objs, 'notifier')).toContain(443);
    for (const role of ['ingest', 'correlator', 'api']) expect(egressPorts(objs, role), role).not.toContain(443);
    const https = arr(get(policyOf(objs, 'notifier'), 'spec.egress')).find((r) => arr(get(r, 'ports')).some((p) => get(p, 'port') === 443));
    expect(get(arr(get(https, 'to'))[0], 'ipBlock.cidr')).toBe('0.0.0.0/0');
    expect(arr(get(arr(get(https, 'to'))[0], 'ipBlock.except'))).toEqual(expect.arrayContaining(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16']));
    const notifier = ofKind(objs, 'Deployment').find((d) => roleOf(d) === 'notifier')!;
    const config = loadConfig(containerEnv(objs, notifier), { role: 'notifier' });
    expect(config.notifier.slackBot).toMatchObject({
      token: 'xoxb-1-2-abc',
      defaultChannel: 'C0123ABCD',
      routes: [expect.objectContaining({ channel: 'C0PAGER01' })],
    });
    expect(config.notifier.webhooks).toEqual({ urls: ['https://siem.example.com/hook'], secret: 's'.repeat(32) });
    // Slack settings in an existing Secret: slack.enabled opens the egress all the same.
    expect(egressPorts(render({ secret: { existingSecret: 'x' }, slack: { enabled: true } }), 'embedded')).toContain(443);
  });

  it('cluster name and the Slack signing secret: in the ConfigMap and the Secret, read by kubevigil; malformed ones refused', () => {
    const secret = 'ab'.repeat(16);
    const objs = render(merge(TOKENS, { mode: 'distributed' }, { config: { clusterName: 'prod-eu1' }, slack: { signingSecret: secret } }));
    const api = ofKind(objs, 'Deployment').find((d) => roleOf(d) === 'api')!;
    const config = loadConfig(containerEnv(objs, api), { role: 'api' });
    expect(config.clusterName).toBe('prod-eu1');
    expect(config.slackSigningSecret).toBe(secret);
    // Unset: neither variable is rendered (kubevigil stamps no cluster and shows no buttons).
    const plain = loadConfig(containerEnv(render(TOKENS), ofKind(render(TOKENS), 'Deployment')[0]!), {});
    expect([plain.clusterName, plain.slackSigningSecret]).toEqual([undefined, undefined]);
    for (const values of [{ config: { clusterName: 'Prod_EU' } }, { slack: { signingSecret: 'not-hex' } }])
      expect(helm(['lint', '--strict', CHART], merge(TOKENS, values)).status, JSON.stringify(values)).not.toBe(0);
  });

  it('Loki and Tempo pollers: settings in the ConfigMap and Secret, egress only to the given peers from the pods that poll', () => {
    const pollers = {
      loki: {
        url: 'http://loki-gateway.logging.svc',
        queries: [{ name: 'istio', query: '{container="istio-proxy"}' }],
        schedule: '*/15 * * * * *',
        tenant: 'team-a',
        token: 'loki-token',
        networkPolicy: {
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'logging' } },
          podSelector: { matchLabels: { app: 'loki' } },
          cidrs: ['10.20.0.0/16'],
          ports: [8080],
        },
      },
      tempo: {
        url: 'http://tempo.tracing.svc:3200',
        queries: ['{ span.http.response.status_code = 403 }', '{ span.http.response.status_code = 401 }'],
        token: 'tempo-token',
        networkPolicy: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'tracing' } }, ports: [3200] },
      },
    };
    // Not set: no poller settings, no egress for them.
    const plain = render(TOKENS);
    expect(Object.keys(get(named(plain, 'ConfigMap', 'kubevigil'), 'data') as Obj).filter((k) => /^(LOKI|TEMPO)_/.test(k))).toEqual([]);
    expect(egressPorts(plain, 'embedded')).not.toContain(3200);

    for (const mode of MODES) {
      const objs = render(merge(TOKENS, { mode }, pollers));
      checkRendered(objs, NAMESPACE);
      const poller = mode === 'embedded' ? 'embedded' : 'ingest';
      const d = ofKind(objs, 'Deployment').find((x) => component(x) === poller)!;
      const config = loadConfig(containerEnv(objs, d), mode === 'distributed' ? { role: 'ingest' } : {});
      expect(config.lokiPoller).toEqual({
        url: pollers.loki.url,
        queries: pollers.loki.queries,
        schedule: '*/15 * * * * *',
        tenant: 'team-a',
        token: 'loki-token',
      });
      expect(config.tempoPoller).toEqual({ url: pollers.tempo.url, queries: pollers.tempo.queries, token: 'tempo-token' });
      const egress = arr(get(policyOf(objs, poller), 'spec.egress'));
      expect(egress).toContainEqual({
        to: [
          { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'logging' } }, podSelector: { matchLabels: { app: 'loki' } } },
          { ipBlock: { cidr: '10.20.0.0/16' } },
        ],
        ports: [{ protocol: 'TCP', port: 8080 }],
      });
      expect(egress).toContainEqual({
        to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'tracing' } } }],
        ports: [{ protocol: 'TCP', port: 3200 }],
      });
      if (mode === 'distributed') for (const role of ['correlator', 'api', 'notifier']) expect(egressPorts(objs, role), role).not.toContain(3200);
    }
  });

  it('inventory RBAC: off by default (no token, no RBAC); on, a read-only ClusterRole bound to the ServiceAccount', () => {
    for (const mode of MODES) {
      const off = rendered[mode]();
      expect(off.filter((o) => /^rbac\.authorization\.k8s\.io\//.test(str(o.apiVersion)))).toEqual([]);
      expect(named(off, 'ServiceAccount', 'kubevigil').automountServiceAccountToken).toBe(false);
      for (const d of ofKind(off, 'Deployment')) expect(podSpec(d).automountServiceAccountToken).toBe(false);
    }
    const objs = render(
      merge(TOKENS, { mode: 'distributed', rbac: { inventory: { enabled: true } }, networkPolicy: { apiServer: { cidrs: ['10.0.0.10/32'] } } }),
    );
    checkRendered(objs, NAMESPACE);
    const [role] = ofKind(objs, 'ClusterRole');
    const [binding] = ofKind(objs, 'ClusterRoleBinding');
    expect(ofKind(objs, 'ClusterRole')).toHaveLength(1);
    const granted = arr(get(role, 'rules')).flatMap((r) => {
      expect(get(r, 'verbs')).toEqual(['get', 'list', 'watch']);
      expect(get(r, 'resourceNames')).toBeUndefined();
      return arr(get(r, 'apiGroups')).flatMap((g) => arr(get(r, 'resources')).map((res) => `${str(g) || 'core'}/${str(res)}`));
    });
    expect(granted.sort()).toEqual(
      [
        'core/pods',
        'core/serviceaccounts',
        'core/namespaces',
        'core/services',
        'rbac.authorization.k8s.io/rolebindings',
        'rbac.authorization.k8s.io/clusterrolebindings',
        'rbac.authorization.k8s.io/roles',
        'rbac.authorization.k8s.io/clusterroles',
        'apps/deployments',
        'apps/replicasets',
        'apps/daemonsets',
        'apps/statefulsets',
        'batch/jobs',
        'batch/cronjobs',
        'networking.k8s.io/networkpolicies',
        'security.istio.io/peerauthentications',
        'security.istio.io/authorizationpolicies',
        'templates.gatekeeper.sh/constrainttemplates',
        'kyverno.io/clusterpolicies',
      ].sort(),
    );
    expect(get(binding, 'roleRef')).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: nameOf(role) });
    expect(get(binding, 'subjects')).toEqual([{ kind: 'ServiceAccount', name: 'kubevigil', namespace: NAMESPACE }]);
    expect(named(objs, 'ServiceAccount', 'kubevigil').automountServiceAccountToken).toBe(true);
    for (const d of ofKind(objs, 'Deployment')) {
      expect(podSpec(d).automountServiceAccountToken).toBe(true);
      expect(arr(get(policyOf(objs, str(component(d))), 'spec.egress'))).toContainEqual({
        to: [{ ipBlock: { cidr: '10.0.0.10/32' } }],
        ports: [
          { protocol: 'TCP', port: 443 },
          { protocol: 'TCP', port: 6443 },
        ],
      });
    }
  });

  it("PodMonitor and PrometheusRule: off by default; on, deploy/'s, selecting the release's pods", () => {
    expect(rendered.embedded().filter((o) => str(o.apiVersion).startsWith('monitoring.coreos.com/'))).toEqual([]);
    const deployed = parse(readFileSync(join(DEPLOY, 'integrations/prometheusrule.yaml'), 'utf8')) as Obj;
    const deployedMonitor = parse(readFileSync(join(DEPLOY, 'integrations/podmonitor.yaml'), 'utf8')) as Obj;
    const metrics = { secret: { metricsToken: 'm'.repeat(48) }, metrics: { podMonitor: { enabled: true }, prometheusRule: { enabled: true } } };
    for (const mode of MODES) {
      const objs = render(merge(TOKENS, { mode }, metrics));
      checkRendered(objs, NAMESPACE);
      // The scrapes present the metrics token of the Secret every pod reads.
      expect(Buffer.from(str(get(named(objs, 'Secret', 'kubevigil'), 'data.KUBEVIGIL_METRICS_TOKEN')), 'base64').toString()).toBe('m'.repeat(48));
      const rule = named(objs, 'PrometheusRule', 'kubevigil');
      expect(get(rule, 'spec.groups')).toEqual(get(deployed, 'spec.groups'));
      expect(get(rule, 'metadata.labels.release')).toBe('kube-prometheus-stack');
      const monitor = named(objs, 'PodMonitor', 'kubevigil');
      expect(get(monitor, 'spec.podMetricsEndpoints')).toEqual(get(deployedMonitor, 'spec.podMetricsEndpoints'));
      expect(get(monitor, 'spec.podTargetLabels')).toEqual(get(deployedMonitor, 'spec.podTargetLabels'));
      const pods = ofKind(objs, 'Deployment').map((d) => get(d, 'spec.template.metadata.labels'));
      expect(
        pods.every((l) => selects(get(monitor, 'spec.selector.matchLabels'), l)),
        'the PodMonitor scrapes every pod',
      ).toBe(true);
    }
    // Another namespace and release: the alerts look there, Prometheus' own templates are kept.
    const objs = render(merge(TOKENS, metrics, { metrics: { prometheusRule: { labels: { release: 'prom' } } } }), { release: 'kv', namespace: 'security' });
    const rule = named(objs, 'PrometheusRule', 'kv-kubevigil');
    expect(get(rule, 'metadata.labels.release')).toBe('prom');
    expect(get(arr(get(named(objs, 'PodMonitor', 'kv-kubevigil'), 'spec.podMetricsEndpoints'))[0], 'authorization.credentials')).toEqual({
      name: 'kv-kubevigil',
      key: 'KUBEVIGIL_METRICS_TOKEN',
    });
    const text = JSON.stringify(get(rule, 'spec.groups'));
    expect(text).not.toContain('kubevigil-system');
    const alerts = arr(get(rule, 'spec.groups')).flatMap((g) => arr(get(g, 'rules')));
    expect(
      str(
        get(
          alerts.find((a) => get(a, 'alert') === 'KubevigilDown'),
          'expr',
        ),
      ),
    ).toBe('absent(up{namespace="security", pod=~"kv-kubevigil.*"} == 1)');
    expect(text).toContain('{{ $labels.pod }}');
    expect(alerts.map((a) => get(a, 'alert'))).toEqual(
      arr(get(deployed, 'spec.groups'))
        .flatMap((g) => arr(get(g, 'rules')))
        .map((a) => get(a, 'alert')),
    );
  });
});

describe.skipIf(!HELM || !KUBECTL)('charts/kubevigil renders what kubectl kustomize deploy/<mode> builds', () => {
  /** The chart with values equivalent to deploy/'s files (which always open HTTPS egress). */
  const chartFor = (mode: Mode) => render(merge(TOKENS, { mode, slack: { enabled: true } }));
  /** Labels the chart adds for Helm (instance, chart, managed-by), dropped before comparing. */
  const HELM_LABELS = ['app.kubernetes.io/instance', 'helm.sh/chart', 'app.kubernetes.io/managed-by', 'app.kubernetes.io/version'];
  const withoutHelmLabels = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(withoutHelmLabels);
    if (!isObj(v)) return v;
    return Object.fromEntries(
      Object.entries(v)
        .filter(([k]) => !HELM_LABELS.includes(k))
        .map(([k, x]) => [k, withoutHelmLabels(x)]),
    );
  };
  /** A Deployment's spec as far as both must agree (the chart adds checksum annotations). */
  const workload = (d: Obj) => {
    const pod = podSpec(d);
    const c = container(d);
    return withoutHelmLabels({
      replicas: get(d, 'spec.replicas'),
      strategy: get(d, 'spec.strategy'),
      selector: get(d, 'spec.selector'),
      podLabels: get(d, 'spec.template.metadata.labels'),
      prometheus: Object.fromEntries(
        Object.entries((get(d, 'spec.template.metadata.annotations') ?? {}) as Obj).filter(([k]) => k.startsWith('prometheus.io/')),
      ),
      pod: { ...pod, containers: undefined, volumes: pod.volumes },
      container: c,
    });
  };

  it.each(MODES)('%s: the same workloads, Services, budgets, claims and settings', (mode) => {
    const chart = chartFor(mode);
    const kustomized = kustomize(mode);
    expect(ofKind(kustomized, 'Deployment').length).toBeGreaterThan(0);
    for (const kind of ['Deployment', 'Service', 'PodDisruptionBudget', 'PersistentVolumeClaim']) {
      expect(ofKind(chart, kind).map(nameOf).sort(), kind).toEqual(ofKind(kustomized, kind).map(nameOf).sort());
    }
    for (const k of ofKind(kustomized, 'Deployment')) {
      const c = named(chart, 'Deployment', nameOf(k));
      expect(workload(c), nameOf(k)).toEqual(workload(k));
      // The parts the brief names, spelled out so a failure says which.
      for (const path of [
        'command',
        'args',
        'workingDir',
        'ports',
        'startupProbe',
        'livenessProbe',
        'readinessProbe',
        'resources',
        'env',
        'securityContext',
        'volumeMounts',
      ])
        expect(get(container(c), path), `${nameOf(k)} ${path}`).toEqual(get(container(k), path));
    }
    for (const kind of ['Service', 'PodDisruptionBudget', 'PersistentVolumeClaim'])
      for (const k of ofKind(kustomized, kind))
        expect(withoutHelmLabels(get(named(chart, kind, nameOf(k)), 'spec')), `${kind} ${nameOf(k)}`).toEqual(withoutHelmLabels(get(k, 'spec')));
    expect(get(named(chart, 'ConfigMap', 'kubevigil'), 'data')).toEqual(get(named(kustomized, 'ConfigMap', 'kubevigil'), 'data'));
    expect(named(chart, 'ServiceAccount', 'kubevigil').automountServiceAccountToken).toBe(
      named(kustomized, 'ServiceAccount', 'kubevigil').automountServiceAccountToken,
    );
  });

  it.each(MODES)('%s: the same NetworkPolicy rules for every component', (mode) => {
    const chart = chartFor(mode);
    const kustomized = kustomize(mode);
    const perComponent = (objs: Obj[]) => ofKind(objs, 'NetworkPolicy').filter((p) => component(p, 'spec.podSelector.matchLabels') !== undefined);
    expect(perComponent(chart).map(nameOf).sort()).toEqual(perComponent(kustomized).map(nameOf).sort());
    for (const k of perComponent(kustomized)) {
      const c = named(chart, 'NetworkPolicy', nameOf(k));
      expect(withoutHelmLabels(get(c, 'spec')), nameOf(k)).toEqual(get(k, 'spec'));
    }
    // deploy/ denies everything in its own namespace; the chart, everything for its pods.
    expect(get(named(kustomized, 'NetworkPolicy', 'default-deny'), 'spec.policyTypes')).toEqual(
      get(named(chart, 'NetworkPolicy', 'kubevigil-default-deny'), 'spec.policyTypes'),
    );
  });
});
