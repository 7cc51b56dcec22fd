/**
 * The Docker Compose stack — docker-compose.yml and the configuration files in deploy/compose/ —
 * validated by parsing, since no Docker engine runs here: every file parses; every image is pinned;
 * every host path mounted exists in the repository and every configuration file is mounted; every
 * depends_on names a service; every host:port a configuration names is a service listening there;
 * kubevigil is reached on the endpoints and the port its README documents and its HTTP app serves;
 * tokens come from the environment (.env, documented by .env.example), never from the files; the
 * rules file is the PrometheusRule's groups; the demo logs raise signals with the shipped rules.
 * promtool and amtool, when installed (Debian's prometheus and prometheus-alertmanager packages),
 * check the Prometheus and Alertmanager files the way the real programs read them.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { LOKI_SOURCE } from '../connectors/loki/source.js';
import { parseLogLine } from '../connectors/mesh/parse.js';
import { loadConfig } from '../services/config.js';
import { SOURCE_LIST } from '../services/sources.js';
import { loadDetector } from '../services/rules.js';
import { arr, get, isObj, str, walk, type Obj } from './helpers/config-files.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');
const COMPOSE_DIR = join(ROOT, 'deploy/compose');

/** One YAML document, parsed strictly (errors throw, naming the file). */
function readYamlFile(file: string): Obj {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  const list = Array.isArray(docs) ? docs : [docs];
  if (list.length !== 1) throw new Error(`${relative(ROOT, file)}: ${list.length} YAML documents, expected 1`);
  const doc = list[0]!;
  if (doc.errors.length) throw new Error(`${relative(ROOT, file)}: ${doc.errors.map((e) => e.message).join('; ')}`);
  if (doc.warnings.length) throw new Error(`${relative(ROOT, file)}: ${doc.warnings.map((e) => e.message).join('; ')}`);
  const value: unknown = doc.toJS();
  if (!isObj(value)) throw new Error(`${relative(ROOT, file)} is not a YAML mapping`);
  return value;
}

/** Every string anywhere in a parsed document. */
function strings(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(strings);
  if (isObj(v)) return Object.values(v).flatMap(strings);
  return [];
}

// ---------------------------------------------------------------------------------------------
// Alloy configuration syntax: blocks `name "label" { … }` and attributes `key = expression`.
// No Alloy binary here, so this reads the structure: strings and comments, balanced brackets, and
// only blocks and attributes at every level.

interface AlloyBlock {
  name: string;
  label: string | undefined;
  attrs: Record<string, string>;
  blocks: AlloyBlock[];
}

/** The text with // and /* *\/ comments blanked out (strings kept, "http://…" included). */
function stripAlloyComments(src: string): string {
  let out = '';
  for (let i = 0; i < src.length;) {
    const c = src[i]!;
    if (c === '"' || c === '`') {
      let j = i + 1;
      while (j < src.length && src[j] !== c) {
        if (c === '"' && src[j] === '\\') j++;
        if (c === '"' && src[j] === '\n') throw new Error(`unterminated string at offset ${i}`);
        j++;
      }
      if (j >= src.length) throw new Error(`unterminated string at offset ${i}`);
      out += src.slice(i, j + 1);
      i = j + 1;
    } else if (src.startsWith('//', i)) {
      const end = src.indexOf('\n', i);
      i = end === -1 ? src.length : end;
    } else if (src.startsWith('/*', i)) {
      const end = src.indexOf('*/', i + 2);
      if (end === -1) throw new Error(`unterminated comment at offset ${i}`);
      out += src.slice(i, end + 2).replace(/[^\n]/g, ' ');
      i = end + 2;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

function parseAlloy(src: string): AlloyBlock[] {
  const s = stripAlloyComments(src);
  let i = 0;
  const fail = (what: string): never => {
    const line = s.slice(0, i).split('\n').length;
    throw new Error(`line ${line}: ${what}`);
  };
  const skipWs = () => {
    while (i < s.length && /\s/.test(s[i]!)) i++;
  };
  /** An expression up to the end of its line, with brackets balanced across lines. */
  const expression = (): string => {
    const start = i;
    const stack: string[] = [];
    const close: Record<string, string> = { '(': ')', '[': ']', '{': '}' };
    while (i < s.length) {
      const c = s[i]!;
      if (c === '"' || c === '`') {
        const end = s.indexOf(c, i + 1);
        let j = i + 1;
        while (c === '"' && j < s.length && s[j] !== '"') j += s[j] === '\\' ? 2 : 1;
        i = (c === '"' ? j : end) + 1;
        continue;
      }
      if (c === '\n' && stack.length === 0) break;
      if (c === '}' && stack.length === 0) break;
      if (close[c]) stack.push(close[c]!);
      else if (c === ')' || c === ']' || c === '}') {
        if (stack.pop() !== c) fail(`unbalanced ${c}`);
      }
      i++;
    }
    if (stack.length) fail(`unclosed ${stack.join('')}`);
    const expr = s.slice(start, i).trim();
    if (!expr) fail('empty expression');
    return expr;
  };
  const body = (closing: boolean): AlloyBlock[] & { attrs?: Record<string, string> } => {
    const blocks: AlloyBlock[] = [];
    const attrs: Record<string, string> = {};
    for (;;) {
      skipWs();
      if (i >= s.length) {
        if (closing) fail('missing }');
        break;
      }
      if (s[i] === '}') {
        if (!closing) fail('unexpected }');
        i++;
        break;
      }
      const id = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*/.exec(s.slice(i))?.[0];
      if (!id) fail(`expected a block or attribute name, found ${JSON.stringify(s.slice(i, i + 20))}`);
      i += id!.length;
      skipWs();
      if (s[i] === '=') {
        i++;
        skipWs();
        if (Object.hasOwn(attrs, id!)) fail(`attribute ${id} set twice`);
        attrs[id!] = expression();
        continue;
      }
      let label: string | undefined;
      if (s[i] === '"') {
        const end = s.indexOf('"', i + 1);
        label = s.slice(i + 1, end);
        i = end + 1;
        skipWs();
      }
      if (s[i] !== '{') fail(`expected { after ${id}`);
      i++;
      const inner = body(true);
      blocks.push({ name: id!, label, attrs: inner.attrs ?? {}, blocks: [...inner] });
    }
    return Object.assign(blocks, { attrs });
  };
  const top = body(false);
  if (Object.keys(top.attrs ?? {}).length) throw new Error(`attributes outside any block: ${Object.keys(top.attrs ?? {}).join(', ')}`);
  return [...top];
}

/** The value of an Alloy string literal (Alloy escapes are a subset of JSON's). */
const alloyString = (expr: string | undefined): string => {
  if (!expr || !/^"(?:[^"\\]|\\.)*"$/.test(expr)) throw new Error(`not a string literal: ${expr}`);
  return JSON.parse(expr) as string;
};

// ---------------------------------------------------------------------------------------------
// The files.

const compose = readYamlFile(COMPOSE_FILE);
const services = (isObj(compose.services) ? compose.services : {}) as Record<string, Obj>;
const serviceNames = Object.keys(services);
const service = (name: string): Obj => {
  const s = services[name];
  if (!s) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
};
const env = (name: string): Record<string, string> => {
  const e = service(name).environment;
  if (Array.isArray(e)) return Object.fromEntries(e.map((x) => str(x).split(/=(.*)/s).slice(0, 2) as [string, string]));
  return Object.fromEntries(Object.entries(isObj(e) ? e : {}).map(([k, v]) => [k, String(v)]));
};

const COMPOSE_FILES = walk(COMPOSE_DIR).map((p) => relative(COMPOSE_DIR, p));
const yamlIn = (rel: string): Obj => readYamlFile(join(COMPOSE_DIR, rel));

const prometheus = yamlIn('prometheus/prometheus.yml');
const RULES_FILE = 'prometheus/rules/kubevigil.rules.yml';
const alertmanager = yamlIn('alertmanager/alertmanager.yml');
const loki = yamlIn('loki/loki.yaml');
const tempo = yamlIn('tempo/tempo.yaml');
const otel = yamlIn('otel-collector/otel-collector.yaml');
const datasources = yamlIn('grafana/provisioning/datasources/datasources.yaml');
const dashboardProviders = yamlIn('grafana/provisioning/dashboards/dashboards.yaml');
const alloy = parseAlloy(readFileSync(join(COMPOSE_DIR, 'alloy/config.alloy'), 'utf8'));
const alloyBlock = (name: string, label: string): AlloyBlock => {
  const b = alloy.find((x) => x.name === name && x.label === label);
  if (!b) throw new Error(`alloy/config.alloy has no ${name} "${label}"`);
  return b;
};

/** A bind mount or named volume of a service, from the short (`src:dst[:mode]`) or long syntax. */
interface Mount {
  service: string;
  type: 'bind' | 'volume';
  source: string;
  target: string;
  readOnly: boolean;
}
function mountsOf(name: string): Mount[] {
  return arr(service(name).volumes).map((v) => {
    if (typeof v === 'string') {
      const [source = '', target = '', mode = ''] = v.split(':');
      const bind = source.startsWith('.') || source.startsWith('/') || source.startsWith('~');
      return { service: name, type: bind ? 'bind' : 'volume', source, target, readOnly: mode.split(',').includes('ro') };
    }
    return {
      service: name,
      type: get(v, 'type') === 'bind' ? 'bind' : 'volume',
      source: str(get(v, 'source')),
      target: str(get(v, 'target')),
      readOnly: get(v, 'read_only') === true,
    };
  });
}
const MOUNTS = serviceNames.flatMap(mountsOf);
/** The host file (absolute) a container path of a service comes from, through its bind mounts. */
function hostPathOf(name: string, containerPath: string): string | undefined {
  const m = mountsOf(name)
    .filter((x) => x.type === 'bind' && (containerPath === x.target || containerPath.startsWith(`${x.target}/`)))
    .sort((a, b) => b.target.length - a.target.length)[0];
  return m ? join(resolve(ROOT, m.source), posix.relative(m.target, containerPath)) : undefined;
}

const dependsOn = (name: string): Record<string, string> => {
  const d = service(name).depends_on;
  if (Array.isArray(d)) return Object.fromEntries(d.map((x) => [str(x), 'service_started']));
  return Object.fromEntries(Object.entries(isObj(d) ? d : {}).map(([k, v]) => [k, str(get(v, 'condition')) || 'service_started']));
};

/** Published ports: `[host address, host port, container port]`. */
function portsOf(name: string): [string, number, number][] {
  return arr(service(name).ports).map((p) => {
    const m = /^(\$\{[^}]*\}|[0-9.]+):(\d+):(\d+)(?:\/(?:tcp|udp))?$/.exec(str(p));
    if (!m) throw new Error(`${name}: port ${JSON.stringify(p)} does not name the host address it is published on`);
    return [m[1]!, Number(m[2]), Number(m[3])];
  });
}

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const DEPLOY_README = readFileSync(join(ROOT, 'deploy/README.md'), 'utf8');
const APP = readFileSync(join(ROOT, 'services/http/app.ts'), 'utf8');
/** kubevigil's default port, from the README's settings table. */
const KUBEVIGIL_PORT = Number(/\| `KUBEVIGIL_PORT` \| `(\d+)` \|/.exec(README)?.[1]);
/** The endpoints the compose stack's senders and Prometheus use. */
const ENDPOINTS = { metrics: '/metrics', alertmanager: '/ingest/alertmanager', loki: '/loki/api/v1/push', otlp: '/v1/traces' } as const;
const KUBEVIGIL = `kubevigil:${KUBEVIGIL_PORT}`;

/** The ingest token as the file Compose writes for the services that list the secret. */
const TOKEN_SECRET = 'kubevigil_ingest_token';
const TOKEN_FILE = `/run/secrets/${TOKEN_SECRET}`;
/** The metrics token, which only Prometheus gets, the same way. */
const METRICS_SECRET = 'kubevigil_metrics_token';
const METRICS_TOKEN_FILE = `/run/secrets/${METRICS_SECRET}`;
const servicesWithSecret = (secret: string) => serviceNames.filter((n) => arr(service(n).secrets).some((s) => s === secret || get(s, 'source') === secret));

// ---------------------------------------------------------------------------------------------

describe('docker-compose.yml and deploy/compose/: every file parses', () => {
  it('has the services of the full stack', () => {
    expect([...serviceNames].sort()).toEqual([
      'alertmanager',
      'alloy',
      'grafana',
      'kafka',
      'kubevigil',
      'loki',
      'otel-collector',
      'prometheus',
      'redis',
      'tempo',
      'tempo-init',
    ]);
  });

  it('finds the configuration files', () => {
    for (const f of [
      'prometheus/prometheus.yml',
      RULES_FILE,
      'alertmanager/alertmanager.yml',
      'loki/loki.yaml',
      'alloy/config.alloy',
      'tempo/tempo.yaml',
      'otel-collector/otel-collector.yaml',
      'grafana/provisioning/datasources/datasources.yaml',
      'grafana/provisioning/dashboards/dashboards.yaml',
    ])
      expect(COMPOSE_FILES, f).toContain(f);
  });

  it.each(COMPOSE_FILES)('deploy/compose/%s', (rel) => {
    const file = join(COMPOSE_DIR, rel);
    const text = readFileSync(file, 'utf8');
    if (/\.ya?ml$/.test(rel)) expect(Object.keys(readYamlFile(file)).length).toBeGreaterThan(0);
    else if (rel.endsWith('.json')) expect(isObj(JSON.parse(text))).toBe(true);
    else if (rel.endsWith('.alloy')) expect(parseAlloy(text).length).toBeGreaterThan(0);
    else if (rel.startsWith('demo-logs/') && rel.endsWith('.log')) {
      expect(text.endsWith('\n'), 'ends with a newline (the last line is read only once it is complete)').toBe(true);
      for (const line of text.slice(0, -1).split('\n')) {
        expect(line.trim()).not.toBe('');
        if (line.startsWith('{')) expect(isObj(JSON.parse(line))).toBe(true);
      }
    } else throw new Error(`deploy/compose/${rel}: no check for this kind of file; add one to test/compose.test.ts`);
  });

  it('the mounted dashboard JSON parses', () => {
    const dash = JSON.parse(readFileSync(join(ROOT, 'deploy/integrations/kubevigil-dashboard.json'), 'utf8')) as Obj;
    expect(str(dash.uid)).not.toBe('');
  });
});

describe('docker-compose.yml: services', () => {
  it.each(serviceNames)('%s has a pinned image (or a build)', (name) => {
    const s = service(name);
    if (s.build !== undefined && s.image === undefined) return;
    const image = str(s.image);
    const digest = image.includes('@sha256:');
    const lastSegment = image.split('@')[0]!.split('/').pop()!;
    const tag = lastSegment.includes(':') ? lastSegment.split(':').pop()! : '';
    if (!digest) {
      expect(tag, `${name}: ${image} has no tag (that is :latest)`).not.toBe('');
      expect(['latest', 'main', 'master', 'edge', 'nightly', 'dev']).not.toContain(tag.toLowerCase());
      expect(tag, `${name}: ${image}: the tag must name a version`).toMatch(/^v?\d+(\.\d+)*(-[A-Za-z0-9.]+)?$/);
    }
  });

  it("runs tempo-init with the very image of tempo (it prepares the volume for that image's user)", () => {
    expect(service('tempo-init').image).toBe(service('tempo').image);
    expect(mountsOf('tempo-init').map((m) => [m.source, m.target])).toEqual(
      mountsOf('tempo')
        .filter((m) => m.type === 'volume')
        .map((m) => [m.source, m.target]),
    );
  });

  it('mounts only host paths that exist in the repository, all read-only', () => {
    const binds = MOUNTS.filter((m) => m.type === 'bind');
    expect(binds.length).toBeGreaterThan(5);
    for (const m of binds) {
      expect(m.source, `${m.service}: ${m.source} must be relative to the repository`).toMatch(/^\.(\/|$)/);
      const host = resolve(ROOT, m.source);
      expect(relative(ROOT, host).startsWith('..'), `${m.service}: ${m.source} leaves the repository`).toBe(false);
      expect(existsSync(host), `${m.service}: ${m.source} does not exist`).toBe(true);
      expect(m.readOnly, `${m.service}: ${m.source} should be mounted :ro`).toBe(true);
    }
  });

  it("runs kubevigil from the repository's Dockerfile on a read-only root filesystem, not from the mounted sources", () => {
    const kv = service('kubevigil');
    expect(kv.build).toBe('.');
    expect(existsSync(join(ROOT, 'Dockerfile'))).toBe(true);
    expect(kv.read_only).toBe(true);
    expect(kv.command).toBeUndefined();
    expect(mountsOf('kubevigil').map((m) => [m.type, m.target])).toEqual([['volume', '/data']]);
  });

  it('declares every named volume it uses, and uses every one it declares', () => {
    const declared = Object.keys(isObj(compose.volumes) ? compose.volumes : {});
    const used = [...new Set(MOUNTS.filter((m) => m.type === 'volume').map((m) => m.source))];
    expect(used.sort()).toEqual(declared.sort());
  });

  it('mounts every configuration file in deploy/compose/ into some service', () => {
    const sources = MOUNTS.filter((m) => m.type === 'bind').map((m) => resolve(ROOT, m.source));
    for (const rel of COMPOSE_FILES) {
      const file = join(COMPOSE_DIR, rel);
      expect(
        sources.some((src) => src !== ROOT && (file === src || file.startsWith(`${src}/`))),
        `deploy/compose/${rel} is not mounted by any service`,
      ).toBe(true);
    }
  });

  it('names only services in depends_on, with known conditions, healthchecks where it waits for health, and no cycle', () => {
    for (const name of serviceNames)
      for (const [dep, condition] of Object.entries(dependsOn(name))) {
        expect(serviceNames, `${name} depends on ${dep}`).toContain(dep);
        expect(dep).not.toBe(name);
        expect(['service_started', 'service_healthy', 'service_completed_successfully']).toContain(condition);
        if (condition === 'service_healthy') expect(service(dep).healthcheck, `${name} waits for ${dep} to be healthy, which has no healthcheck`).toBeDefined();
      }
    const visiting = new Set<string>();
    const done = new Set<string>();
    const visit = (n: string, path: string[]) => {
      if (done.has(n)) return;
      if (visiting.has(n)) throw new Error(`depends_on cycle: ${[...path, n].join(' → ')}`);
      visiting.add(n);
      for (const d of Object.keys(dependsOn(n))) visit(d, [...path, n]);
      visiting.delete(n);
      done.add(n);
    };
    for (const n of serviceNames) visit(n, []);
  });

  it('publishes every port on loopback only, each host port once', () => {
    const all = serviceNames.flatMap((n) => portsOf(n).map(([address, host]) => ({ n, address, host })));
    for (const p of all)
      expect(['127.0.0.1', '${KUBEVIGIL_PUBLISH_ADDRESS:-127.0.0.1}'], `${p.n} publishes port ${p.host} on ${p.address}`).toContain(p.address);
    const hostPorts = all.map((p) => p.host);
    expect(new Set(hostPorts).size).toBe(hostPorts.length);
  });

  it('declares every secret a service lists', () => {
    const declared = (isObj(compose.secrets) ? compose.secrets : {}) as Record<string, Obj>;
    for (const n of serviceNames)
      for (const s of arr(service(n).secrets))
        expect(Object.keys(declared), `${n}: secret ${JSON.stringify(s)}`).toContain(typeof s === 'string' ? s : str(get(s, 'source')));
    expect(get(declared, `${TOKEN_SECRET}.environment`)).toBe('KUBEVIGIL_INGEST_TOKEN');
    expect(get(declared, `${METRICS_SECRET}.environment`)).toBe('KUBEVIGIL_METRICS_TOKEN');
  });
});

describe('the ingest token, the API token and the Grafana password come from the environment', () => {
  const SECRET_NAME = /TOKEN|PASSWORD|SECRET|WEBHOOK_URL/;

  it('docker-compose.yml only interpolates them, and requires the three that have no safe empty value', () => {
    for (const n of serviceNames)
      for (const [k, v] of Object.entries(env(n)))
        if (SECRET_NAME.test(k))
          expect(v, `${n}: ${k} must be \${VAR:?…} or \${VAR:-} (empty), never a value`).toMatch(/^\$\{[A-Z_][A-Z0-9_]*(:\?[^}]*|:-)\}$/);
    expect(env('kubevigil').KUBEVIGIL_INGEST_TOKEN).toMatch(/^\$\{KUBEVIGIL_INGEST_TOKEN:\?/);
    expect(env('kubevigil').KUBEVIGIL_API_TOKEN).toMatch(/^\$\{KUBEVIGIL_API_TOKEN:\?/);
    expect(env('kubevigil').KUBEVIGIL_METRICS_TOKEN).toMatch(/^\$\{KUBEVIGIL_METRICS_TOKEN:\?/);
    expect(env('otel-collector').KUBEVIGIL_INGEST_TOKEN).toMatch(/^\$\{KUBEVIGIL_INGEST_TOKEN:\?/);
    expect(env('grafana').GF_SECURITY_ADMIN_PASSWORD).toMatch(/^\$\{GRAFANA_ADMIN_PASSWORD:\?/);
  });

  it('.env.example names every variable docker-compose.yml reads, with the secrets left empty', () => {
    const example = readFileSync(join(ROOT, '.env.example'), 'utf8');
    expect(example).toContain('cp .env.example .env');
    const vars = new Map<string, string>();
    for (const line of example.split('\n')) {
      if (line.trim() === '' || line.startsWith('#')) continue;
      const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
      expect(m, `.env.example: ${line}`).not.toBeNull();
      vars.set(m![1]!, m![2]!);
    }
    const text = readFileSync(COMPOSE_FILE, 'utf8').replace(/^\s*#.*$/gm, '');
    const used = new Set([...text.matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]!));
    for (const s of Object.values(isObj(compose.secrets) ? compose.secrets : {})) used.add(str(get(s, 'environment')));
    for (const v of used) expect([...vars.keys()], `${v} is read by docker-compose.yml`).toContain(v);
    for (const [k, v] of vars) if (SECRET_NAME.test(k)) expect(v, `.env.example: ${k} must be empty`).toBe('');
  });

  it('no configuration file in deploy/compose/ holds a credential', () => {
    for (const rel of COMPOSE_FILES.filter((f) => !f.startsWith('demo-logs/'))) {
      const text = readFileSync(join(COMPOSE_DIR, rel), 'utf8');
      // A bearer token in a header, or a credential key with a literal value.
      for (const m of text.matchAll(/Bearer[ \t]+([^\s"']+)/g)) expect(m[1], `${rel}: ${m[0]}`).toMatch(/^\$\{env:[A-Z_]+\}$/);
      expect(text, rel).not.toMatch(/^\s*(credentials|bearer_token|password|basic_auth|api_key|token)\s*[:=]/im);
    }
  });
});

describe('kubevigil is reached on its documented port and endpoints', () => {
  it('README.md documents the port; the kubevigil service listens on it and publishes it', () => {
    expect(KUBEVIGIL_PORT).toBe(8080);
    expect(env('kubevigil').KUBEVIGIL_PORT).toBe(String(KUBEVIGIL_PORT));
    expect(env('kubevigil').KUBEVIGIL_HOST).toBe('0.0.0.0');
    expect(portsOf('kubevigil').map(([, , container]) => container)).toEqual([KUBEVIGIL_PORT]);
  });

  it('the settings docker-compose.yml gives kubevigil pass its configuration check (distributed, every role)', () => {
    // Interpolated as Compose does, with .env holding tokens and the optional values unset.
    const dotenv: Record<string, string> = {
      KUBEVIGIL_INGEST_TOKEN: 'i'.repeat(48),
      KUBEVIGIL_API_TOKEN: 'a'.repeat(48),
      KUBEVIGIL_METRICS_TOKEN: 'm'.repeat(48),
    };
    const interpolate = (v: string) =>
      v.replace(/\$\{([A-Z_][A-Z0-9_]*)(?::([?-])([^}]*))?\}/g, (_m, name: string, op: string | undefined, rest: string) => {
        const value = dotenv[name];
        if (value) return value;
        if (op === '?') throw new Error(`${name} is required: ${rest}`);
        return op === '-' ? rest : '';
      });
    const vars = Object.fromEntries(Object.entries(env('kubevigil')).map(([k, v]) => [k, interpolate(v)]));
    const config = loadConfig(vars);
    expect(config.host).toBe('0.0.0.0');
    expect(config.port).toBe(KUBEVIGIL_PORT);
    expect(config.kafkaBrokers).toEqual(['kafka:9092']);
    expect(config.redisUrl).toBe('redis://redis:6379');
    expect(config.roles.size).toBe(4);
    expect(config.notifier.alertmanagerUrl).toMatch(/^http:\/\/alertmanager:9093\/?$/);
    // The API has a token, so /metrics asks for one: the one Prometheus is given.
    expect(config.metricsToken).toBe(dotenv.KUBEVIGIL_METRICS_TOKEN);
    // Without .env, Compose refuses to start rather than run kubevigil without tokens.
    delete dotenv.KUBEVIGIL_INGEST_TOKEN;
    expect(() => Object.values(env('kubevigil')).map(interpolate)).toThrow(/KUBEVIGIL_INGEST_TOKEN is required/);
  });

  it.each(Object.values(ENDPOINTS))('%s is documented and served by the HTTP app', (path) => {
    expect(README.includes(path) || DEPLOY_README.includes(path), `${path} in README.md or deploy/README.md`).toBe(true);
    // Routes of the app itself, or of a source's receiver, which the app mounts from the registry.
    const served = new RegExp(`app\\.(use|get|post)\\('${path.replace(/[/.]/g, '\\$&')}'`).test(APP) || SOURCE_LIST.some((s) => s.path === path);
    expect(served, `${path} served by services/http/app.ts or a source in services/sources.ts`).toBe(true);
  });

  it('every URL of kubevigil in the stack is one of those endpoints on that port', () => {
    const urls = [
      ...COMPOSE_FILES.filter((f) => /\.ya?ml$/.test(f)).flatMap((f) => strings(yamlIn(f))),
      ...alloy.flatMap(function all(b: AlloyBlock): string[] {
        return [...Object.values(b.attrs), ...b.blocks.flatMap(all)];
      }),
      ...serviceNames.flatMap((n) => Object.values(env(n))),
    ].filter((s) => /(^|\/\/|")kubevigil:/.test(s));
    expect(urls.length).toBeGreaterThanOrEqual(4);
    // A URL of one endpoint, or the bare host:port of a Prometheus target (its metrics_path is checked below).
    const paths = Object.values(ENDPOINTS).join('|').replace(/[/.]/g, '\\$&');
    for (const u of urls) expect(u.replace(/^"|"$/g, ''), u).toMatch(new RegExp(`^(${KUBEVIGIL}|http://${KUBEVIGIL}(${paths}))$`));
  });

  it('Prometheus scrapes /metrics with the metrics token and the labels the PrometheusRule and the dashboard select on', () => {
    const job = arr(prometheus.scrape_configs).find((j) => get(j, 'job_name') === 'kubevigil');
    expect(get(job, 'metrics_path')).toBe(ENDPOINTS.metrics);
    // The token from a file Compose writes, never in the file; only Prometheus holds it.
    expect(get(job, 'authorization.type')).toBe('Bearer');
    expect(get(job, 'authorization.credentials')).toBeUndefined();
    expect(get(job, 'authorization.credentials_file')).toBe(METRICS_TOKEN_FILE);
    expect(servicesWithSecret(METRICS_SECRET)).toEqual(['prometheus']);
    expect(get(job, 'scheme') ?? 'http').toBe('http');
    const sc = arr(get(job, 'static_configs'))[0];
    expect(get(sc, 'targets')).toEqual([KUBEVIGIL]);
    expect(get(sc, 'labels')).toEqual({ namespace: 'kubevigil-system', pod: 'kubevigil' });
    expect(get(arr(get(arr(get(prometheus, 'alerting.alertmanagers'))[0], 'static_configs'))[0], 'targets')).toEqual(['alertmanager:9093']);
  });

  it("Alertmanager: the first route sends every alert but kubevigil's own incidents to /ingest/alertmanager and continues", () => {
    const first = arr(get(alertmanager, 'route.routes'))[0];
    expect(get(first, 'receiver')).toBe('kubevigil');
    expect(get(first, 'continue')).toBe(true);
    expect(get(first, 'match')).toBeUndefined();
    // kubevigil posts incidents to this Alertmanager; the route must not send them back.
    expect(env('kubevigil').KUBEVIGIL_ALERTMANAGER_URL).toBe('http://alertmanager:9093');
    expect(arr(get(first, 'matchers'))).toEqual(['alertname!="KubevigilIncident"']);
    // A child route matched every other alert: a last catch-all keeps the top-level receiver's share.
    expect(arr(get(alertmanager, 'route.routes')).at(-1)).toEqual({ receiver: get(alertmanager, 'route.receiver') });
    const receiver = arr(alertmanager.receivers).find((r) => get(r, 'name') === 'kubevigil');
    const hooks = arr(get(receiver, 'webhook_configs'));
    expect(hooks).toHaveLength(1);
    expect(get(hooks[0], 'url')).toBe(`http://${KUBEVIGIL}${ENDPOINTS.alertmanager}`);
    expect(get(hooks[0], 'send_resolved')).toBe(true);
    expect(get(hooks[0], 'http_config.authorization.type')).toBe('Bearer');
    expect(get(hooks[0], 'http_config.authorization.credentials')).toBeUndefined();
    expect(get(hooks[0], 'http_config.authorization.credentials_file')).toBe(TOKEN_FILE);
    expect(servicesWithSecret(TOKEN_SECRET)).toContain('alertmanager');
  });

  it('Alloy tails the demo logs and tees them to Loki and to /loki/api/v1/push', () => {
    const match = alloyBlock('local.file_match', 'demo');
    const glob = /"__path__"\s*=\s*"([^"]+)"/.exec(match.attrs.path_targets ?? '')?.[1] ?? '';
    expect(glob).toMatch(/\/\*\/\*\/\*\.log$/);
    const hostDir = hostPathOf('alloy', glob.replace(/\/\*\/\*\/\*\.log$/, ''));
    expect(hostDir, `${glob} is inside a bind mount of the alloy service`).toBe(COMPOSE_DIR + '/demo-logs');
    expect(alloyBlock('discovery.relabel', 'demo').attrs.targets).toBe('local.file_match.demo.targets');
    const source = alloyBlock('loki.source.file', 'demo');
    expect(source.attrs.targets).toBe('discovery.relabel.demo.output');
    expect(source.attrs.forward_to).toBe('[loki.write.loki.receiver, loki.write.kubevigil.receiver]');
    const endpoint = (label: string) => alloyBlock('loki.write', label).blocks.find((b) => b.name === 'endpoint')!;
    expect(alloyString(endpoint('loki').attrs.url)).toBe('http://loki:3100/loki/api/v1/push');
    expect(alloyString(endpoint('kubevigil').attrs.url)).toBe(`http://${KUBEVIGIL}${ENDPOINTS.loki}`);
    expect(alloyString(endpoint('kubevigil').attrs.bearer_token_file)).toBe(TOKEN_FILE);
    expect(endpoint('kubevigil').attrs.bearer_token).toBeUndefined();
    expect(servicesWithSecret(TOKEN_SECRET)).toContain('alloy');
    // Every component an expression refers to exists.
    const defined = new Set(alloy.map((b) => `${b.name}.${b.label}`));
    for (const b of alloy)
      for (const expr of Object.values(b.attrs))
        for (const m of expr.matchAll(/\b((?:discovery|local|loki)\.[a-z_.]+?)\.([a-z0-9_]+)\.(receiver|targets|output)\b/g))
          expect(defined, `${b.name} "${b.label}" refers to ${m[0]}`).toContain(`${m[1]}.${m[2]}`);
  });

  it('the OpenTelemetry Collector fans traces out to Tempo and to /v1/traces with the token from its environment', () => {
    expect(get(otel, 'service.pipelines.traces.exporters')).toEqual(['otlp/tempo', 'otlphttp/kubevigil']);
    expect(get(otel, 'service.pipelines.traces.receivers')).toEqual(['otlp']);
    expect(get(otel, ['exporters', 'otlp/tempo', 'endpoint'])).toBe('tempo:4317');
    expect(get(otel, ['exporters', 'otlphttp/kubevigil', 'traces_endpoint'])).toBe(`http://${KUBEVIGIL}${ENDPOINTS.otlp}`);
    expect(get(otel, ['exporters', 'otlphttp/kubevigil', 'headers', 'Authorization'])).toBe('Bearer ${env:KUBEVIGIL_INGEST_TOKEN}');
    expect(Object.keys(env('otel-collector'))).toContain('KUBEVIGIL_INGEST_TOKEN');
    // Its OTLP receivers are what the host reaches on 127.0.0.1:4317/4318.
    expect(get(otel, 'receivers.otlp.protocols.grpc.endpoint')).toBe('0.0.0.0:4317');
    expect(get(otel, 'receivers.otlp.protocols.http.endpoint')).toBe('0.0.0.0:4318');
    expect(portsOf('otel-collector').map(([, h, c]) => [h, c])).toEqual([
      [4317, 4317],
      [4318, 4318],
    ]);
    const mount = mountsOf('otel-collector').find((m) => m.source.endsWith('otel-collector.yaml'));
    expect(arr(service('otel-collector').command)).toContain(`--config=${mount?.target}`);
  });
});

describe('every host:port a configuration names is a service of the stack listening there', () => {
  /** Ports each service listens on, from its published ports and its own configuration. */
  const listening = new Map<string, Set<number>>(serviceNames.map((n) => [n, new Set(portsOf(n).map(([, , c]) => c))]));
  const listen = (n: string, ...ports: unknown[]) => ports.forEach((p) => listening.get(n)!.add(Number(/(\d+)$/.exec(String(p))?.[1])));
  listen('kubevigil', env('kubevigil').KUBEVIGIL_PORT);
  listen('kafka', ...(env('kafka').KAFKA_LISTENERS ?? '').split(','));
  listen('redis', 6379); // redis-server's default port (the command sets none)
  listen('loki', get(loki, 'server.http_listen_port'), get(loki, 'server.grpc_listen_port'));
  listen(
    'tempo',
    get(tempo, 'server.http_listen_port'),
    ...Object.values((get(tempo, 'distributor.receivers.otlp.protocols') ?? {}) as Obj).map((p) => get(p, 'endpoint')),
  );
  listen(
    'otel-collector',
    get(otel, 'receivers.otlp.protocols.grpc.endpoint'),
    get(otel, 'receivers.otlp.protocols.http.endpoint'),
    get(arr(get(otel, 'service.telemetry.metrics.readers'))[0], 'pull.exporter.prometheus.port'),
  );
  listen(
    'alloy',
    arr(service('alloy').command)
      .map(str)
      .find((a) => a.startsWith('--server.http.listen-addr=')),
  );

  const references: [string, string][] = [
    ...COMPOSE_FILES.filter((f) => /\.ya?ml$/.test(f)).flatMap((f) => strings(yamlIn(f)).map((s): [string, string] => [`deploy/compose/${f}`, s])),
    ...alloy.flatMap(function all(b: AlloyBlock): [string, string][] {
      return [...Object.values(b.attrs).map((s): [string, string] => ['deploy/compose/alloy/config.alloy', s.replace(/^"|"$/g, '')]), ...b.blocks.flatMap(all)];
    }),
    ...serviceNames.flatMap((n) =>
      Object.values(env(n))
        .flatMap((v) => v.split(','))
        .map((s): [string, string] => [`docker-compose.yml ${n}`, s]),
    ),
  ];

  it('finds the references', () => {
    expect(references.length).toBeGreaterThan(50);
  });

  it('names only services, on ports they listen on', () => {
    const found: string[] = [];
    for (const [where, s] of references) {
      const m = /^(?:[A-Za-z][A-Za-z0-9+.-]*:\/\/)?([a-z][a-z0-9-]*):(\d{2,5})(?:\/.*)?$/.exec(s.trim());
      if (!m || m[1] === 'localhost') continue;
      const [, host, port] = m;
      found.push(`${host}:${port}`);
      expect(serviceNames, `${where}: ${s} names no service`).toContain(host);
      expect([...listening.get(host!)!], `${where}: ${s}: ${host} listens on ${[...listening.get(host!)!].join(', ')}`).toContain(Number(port));
    }
    for (const hp of [KUBEVIGIL, 'alertmanager:9093', 'loki:3100', 'tempo:4317', 'tempo:3200', 'prometheus:9090', 'kafka:9092', 'redis:6379'])
      expect(found).toContain(hp);
  });
});

describe('deploy/compose/: each component', () => {
  it('Prometheus loads the rules file through its configuration (a path relative to prometheus.yml)', () => {
    const mount = mountsOf('prometheus').find((m) => m.type === 'bind')!;
    expect(resolve(ROOT, mount.source)).toBe(join(COMPOSE_DIR, 'prometheus'));
    expect(arr(service('prometheus').command)).toContain(`--config.file=${mount.target}/prometheus.yml`);
    const globs = arr(prometheus.rule_files).map(str);
    expect(globs).toEqual(['rules/*.yml']);
    const ruleFiles = readdirSync(join(COMPOSE_DIR, 'prometheus/rules')).filter((f) => f.endsWith('.yml'));
    expect(ruleFiles).toEqual([posix.basename(RULES_FILE)]);
  });

  it(`${RULES_FILE} holds exactly the PrometheusRule's groups`, () => {
    const rule = parse(readFileSync(join(ROOT, 'deploy/integrations/prometheusrule.yaml'), 'utf8')) as Obj;
    const groups = get(rule, 'spec.groups');
    const file = join(COMPOSE_DIR, RULES_FILE);
    const current = readFileSync(file, 'utf8');
    if (process.env.KUBEVIGIL_UPDATE_COMPOSE_RULES === '1') {
      const header = current.split('\n').filter((l, i, all) => l.startsWith('#') && all.slice(0, i).every((x) => x.startsWith('#')));
      writeFileSync(file, `${header.join('\n')}\n${stringify({ groups }, { lineWidth: 0 })}`);
    }
    const generated = readYamlFile(file);
    expect(
      generated,
      `${RULES_FILE} differs from deploy/integrations/prometheusrule.yaml: run KUBEVIGIL_UPDATE_COMPOSE_RULES=1 npx vitest run test/compose.test.ts`,
    ).toEqual({ groups });
    expect(readFileSync(file, 'utf8')).toMatch(/^# GENERATED from deploy\/integrations\/prometheusrule\.yaml/);
  });

  it('Loki and Tempo keep their data on their volumes', () => {
    const volumeTarget = (n: string) => mountsOf(n).find((m) => m.type === 'volume')!.target;
    expect(get(loki, 'common.path_prefix')).toBe(volumeTarget('loki'));
    for (const p of strings(get(loki, 'common.storage'))) expect(p.startsWith(`${volumeTarget('loki')}/`)).toBe(true);
    for (const p of [get(tempo, 'storage.trace.wal.path'), get(tempo, 'storage.trace.local.path')])
      expect(str(p).startsWith(`${volumeTarget('tempo')}/`), str(p)).toBe(true);
    expect(get(tempo, 'storage.trace.backend')).toBe('local');
    expect(arr(service('loki').command)).toContain(`-config.file=${mountsOf('loki').find((m) => m.type === 'bind')!.target}`);
    expect(arr(service('tempo').command)).toContain(`-config.file=${mountsOf('tempo').find((m) => m.type === 'bind')!.target}`);
  });

  it('Grafana: the data sources of the stack, and the kubevigil dashboard from deploy/integrations/', () => {
    expect(datasources.apiVersion).toBe(1);
    const ds = arr(datasources.datasources).filter(isObj);
    const byType = Object.fromEntries(ds.map((d) => [str(d.type), d]));
    expect(get(byType.prometheus, 'url')).toBe('http://prometheus:9090');
    expect(get(byType.prometheus, 'isDefault')).toBe(true);
    expect(get(byType.loki, 'url')).toBe('http://loki:3100');
    expect(get(byType.tempo, 'url')).toBe(`http://tempo:${get(tempo, 'server.http_listen_port')}`);
    expect(ds.filter((d) => d.isDefault === true)).toHaveLength(1);
    const uids = ds.map((d) => str(d.uid));
    expect(new Set(uids).size).toBe(ds.length);
    // Links between data sources name uids that exist.
    for (const d of ds)
      for (const [k, v] of Object.entries(isObj(d.jsonData) ? d.jsonData : {})) if (/Uid$/.test(k)) expect(uids, `${str(d.name)}: ${k}`).toContain(v);
    for (const d of ds)
      for (const v of [get(d.jsonData, 'tracesToLogsV2.datasourceUid'), get(d.jsonData, 'tracesToMetrics.datasourceUid')].filter(Boolean))
        expect(uids).toContain(v);

    expect(dashboardProviders.apiVersion).toBe(1);
    const provider = arr(dashboardProviders.providers)[0];
    expect(get(provider, 'type')).toBe('file');
    const dir = str(get(provider, 'options.path'));
    const host = hostPathOf('grafana', `${dir}/kubevigil-dashboard.json`);
    expect(host).toBe(join(ROOT, 'deploy/integrations/kubevigil-dashboard.json'));
    // The provisioning folders are mounted where Grafana reads them.
    expect(hostPathOf('grafana', '/etc/grafana/provisioning/datasources/datasources.yaml')).toBe(
      join(COMPOSE_DIR, 'grafana/provisioning/datasources/datasources.yaml'),
    );
    expect(hostPathOf('grafana', '/etc/grafana/provisioning/dashboards/dashboards.yaml')).toBe(
      join(COMPOSE_DIR, 'grafana/provisioning/dashboards/dashboards.yaml'),
    );
    // The dashboard picks its Prometheus through a data source variable: the default one here.
    const dash = JSON.parse(readFileSync(host!, 'utf8')) as Obj;
    expect(arr(get(dash, 'templating.list')).find((v) => get(v, 'type') === 'datasource')).toMatchObject({ name: 'datasource', query: 'prometheus' });
  });

  it('the demo logs are laid out <namespace>/<pod>/<container>.log and raise signals with the shipped rules', () => {
    const files = COMPOSE_FILES.filter((f) => f.startsWith('demo-logs/'));
    expect(files.length).toBeGreaterThan(0);
    const now = Date.now();
    const streams = files.map((f) => {
      const m = /^demo-logs\/([a-z0-9-]+)\/([a-z0-9-]+)\/([a-z0-9-]+)\.log$/.exec(f);
      expect(m, `${f} is not <namespace>/<pod>/<container>.log`).not.toBeNull();
      const labels = { namespace: m![1]!, pod: m![2]!, container: m![3]!, job: 'kubevigil-demo' };
      const lines = readFileSync(join(COMPOSE_DIR, f), 'utf8').split('\n').filter(Boolean);
      for (const line of lines) expect(parseLogLine(line, labels), `${f}: kubevigil does not recognise ${line.slice(0, 80)}`).toBeDefined();
      return { stream: labels, values: lines.map((line, i) => [`${now}00000${i}`, line]) };
    });
    const { events, invalid } = LOKI_SOURCE.decode({ streams }, now);
    expect(invalid).toEqual([]);
    const detector = loadDetector();
    const signals = events.flatMap((e) => detector.detect(e));
    expect(new Set(signals.map((s) => s.rule.id))).toEqual(
      new Set([
        'loki-mesh-authz-denied',
        'loki-mesh-mtls-plaintext-refused',
        'loki-mesh-service-auth-failed',
        'loki-mesh-upstream-tls-failed',
        'loki-gatekeeper-denied',
      ]),
    );
    expect(signals.some((s) => s.actor.key === 'sa:frontend/frontend')).toBe(true);
  });
});

/** A command-line tool on PATH (Debian installs promtool and amtool in /usr/bin), or undefined. */
function tool(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  return existsSync(`/usr/bin/${name}`) ? `/usr/bin/${name}` : undefined;
}
const PROMTOOL = tool('promtool');
const AMTOOL = tool('amtool');

describe('deploy/compose/: the real tools read the files', () => {
  it.skipIf(!PROMTOOL)('promtool check config prometheus.yml (and, through rule_files, the rules)', () => {
    // promtool reads the token file as Prometheus would: a copy of the folder, with the Compose
    // secret's file where the container has it.
    const dir = mkdtempSync(join(tmpdir(), 'kv-compose-prom-'));
    try {
      cpSync(join(COMPOSE_DIR, 'prometheus'), dir, { recursive: true });
      writeFileSync(join(dir, 'metrics-token'), 'm'.repeat(48));
      const config = readFileSync(join(dir, 'prometheus.yml'), 'utf8');
      expect(config).toContain(METRICS_TOKEN_FILE);
      writeFileSync(join(dir, 'prometheus.yml'), config.replaceAll(METRICS_TOKEN_FILE, join(dir, 'metrics-token')));
      const r = spawnSync(PROMTOOL!, ['check', 'config', join(dir, 'prometheus.yml')], { encoding: 'utf8', timeout: 60_000 });
      expect(r.stdout + r.stderr).toContain('SUCCESS: 1 rule files found');
      expect(r.status, r.stdout + r.stderr).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!PROMTOOL)(`promtool check rules ${RULES_FILE}`, () => {
    const r = spawnSync(PROMTOOL!, ['check', 'rules', join(COMPOSE_DIR, RULES_FILE)], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stdout + r.stderr).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });

  it.skipIf(!AMTOOL)('amtool check-config alertmanager.yml', () => {
    const r = spawnSync(AMTOOL!, ['check-config', join(COMPOSE_DIR, 'alertmanager/alertmanager.yml')], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stdout + r.stderr).toContain('SUCCESS');
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });
});
