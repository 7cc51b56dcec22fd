/**
 * Configuration from environment variables and command-line flags, validated all at once: every
 * problem is reported with the variable, the value and advice, not just the first one.
 */
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { ConfigError } from '../correlator/errors.js';
import { isSeverity, SEVERITIES, type Severity } from '../correlator/severity.js';
import { parseActorConventions, type ActorConvention } from '../connectors/alertmanager/normalize.js';
import { checkPollerOptions, type LokiQuery } from '../connectors/loki/poller.js';
import { validate as validateCron } from 'node-cron';
import { splitTraceQLQueries } from '../connectors/otlp/tempo-poller.js';
import type { SettingDoc } from './settings-doc.js';
import { defaultV8Flags, THROUGHPUT_FLAG } from './v8-flags.js';
import { SOURCE_LIST } from './sources.js';
import { loadNotifierConfig, NOTIFIER_SETTINGS, type NotifierConfig } from './notifier/config.js';

/** The settings of one kubevigil process. */
export interface Config {
  host: string;
  port: number;
  dataDir: string;
  ingestToken?: string;
  /** Per-source ingest tokens (audit, alertmanager, loki, otlp, falco); each also accepts `ingestToken`. */
  sourceTokens: Record<string, string | undefined>;
  apiToken?: string;
  /** A token that may only read the API. */
  apiReadToken?: string;
  /** A token that may only read /metrics. */
  metricsToken?: string;
  /** The Slack app's signing secret: POST /slack/interactions is served only with it. */
  slackSigningSecret?: string;
  /** On SIGTERM/SIGINT, how long in-flight requests may take before their connections are cut. */
  shutdownGraceMs: number;
  /** TLS listener; with a client CA, ingest requires a verified client certificate (mutual TLS). */
  tls?: { certFile: string; keyFile: string; clientCaFile?: string };
  /** Allow listening beyond loopback without tokens. */
  insecure: boolean;
  /** Extra rule files or directories, loaded after the shipped pack. */
  rulesPaths: string[];
  /** KUBEVIGIL_SILENCES_FILE: silences read from a YAML or JSON file, reloaded with the rules. */
  silencesFile?: string;
  maxBodyBytes: number;
  dedupEntries: number;
  /** KUBEVIGIL_WORKERS: detection worker threads for audit bodies (0: detect on the event loop). */
  workers: number;
  /** KUBEVIGIL_CORRELATOR_WORKERS: correlation worker threads of a distributed correlator (0: on the event loop). */
  correlatorWorkers: number;
  /** KUBEVIGIL_SWEEP_SCHEDULE: node-cron schedule of the correlator's sweep (quiet incidents resolved, idle windows forgotten). */
  sweepSchedule: string;
  /** KUBEVIGIL_V8_FLAGS: V8 flags the process sets when it starts serving (see services/v8-flags.ts). */
  v8Flags: string[];
  /** Count budget of the correlator's state (issue #19): open incidents, window entries, flood threshold. */
  budget: { maxOpenIncidents: number; maxWindowEntries: number; floodActors: number };
  busCapacity: number;
  /** Embedded bus: shortest time between two deliveries to one consumer (ms). */
  busLingerMs: number;
  recentSignals: number;
  minSeverity: Severity;
  logLevel: string;
  /** Roles this process runs (all by default). */
  roles: Set<Role>;
  /** Distributed mode: Kafka bootstrap brokers and Redis; both unset means embedded. */
  kafkaBrokers: string[];
  redisUrl?: string;
  topicPrefix: string;
  partitions: number;
  kafkaSessionTimeoutMs: number;
  notifier: NotifierConfig;
  /** Requests each receiver processes at once, and its sustained request rate (0: unlimited). */
  ingestMaxInFlight: number;
  ingestRate: number;
  /** Queue delay (ms) that, sustained, makes the receivers refuse new requests (0: off). */
  ingestMaxQueueDelayMs: number;
  /** Label conventions naming an alert's actor, in order. */
  alertmanagerActorConventions: ActorConvention[];
  /** LogQL queries polled from a Loki server (the push endpoint needs no setting). */
  lokiPoller?: { url: string; queries: LokiQuery[]; schedule?: string; tenant?: string; token?: string };
  /** TraceQL queries polled from Tempo's search API (the OTLP endpoint needs no setting). */
  tempoPoller?: { url: string; queries: string[]; schedule?: string; tenant?: string; token?: string };
  /** The live cluster inventory: read with the pod's service account, a kubeconfig, or not at all. */
  inventory: { mode: 'off' } | { mode: 'in-cluster' } | { mode: 'kubeconfig'; path?: string };
  /** KUBEVIGIL_CLUSTER_NAME: named on signals, incidents and notifications; absent when unset. */
  clusterName?: string;
  /** How long the store keeps signals and resolved incidents (ms; 0 keeps them forever). */
  retention: { signalsMs: number; incidentsMs: number };
}

/** The roles a kubevigil process can run. */
export const ROLES = ['ingest', 'correlator', 'notifier', 'api'] as const;
/** One role. */
export type Role = (typeof ROLES)[number];

/** Every setting of the core, for `kubevigil config` and the README (the notifier's are appended below). */
const CORE_SETTINGS: SettingDoc[] = [
  {
    env: 'KUBEVIGIL_HOST',
    default: '127.0.0.1',
    help: 'Address to listen on. Beyond loopback, KUBEVIGIL_INGEST_TOKEN and KUBEVIGIL_API_TOKEN are required unless --insecure.',
  },
  { env: 'KUBEVIGIL_PORT', default: '8080', help: 'HTTP port for ingest, API, health and metrics.' },
  { env: 'KUBEVIGIL_DATA_DIR', default: './data', help: 'Where embedded state is kept.' },
  { env: 'KUBEVIGIL_INGEST_TOKEN', default: '(none)', help: 'Bearer token senders must present on /ingest/*.' },
  { env: 'KUBEVIGIL_API_TOKEN', default: '(none)', help: 'Bearer token for /api/* (read and write).' },
  { env: 'KUBEVIGIL_API_READ_TOKEN', default: '(none)', help: 'Bearer token that may only read /api/* (GET); PATCH answers 403.' },
  {
    env: 'KUBEVIGIL_SLACK_SIGNING_SECRET',
    default: '(none)',
    help: "Signing secret of the Slack app (Basic Information → App Credentials). Set: POST /slack/interactions is served, checking each request's signature, and bot messages get Acknowledge, Resolve, Assign to me and Mute actor buttons.",
  },
  {
    env: 'KUBEVIGIL_METRICS_TOKEN',
    default: '(none)',
    help: 'Bearer token that may only read /metrics (for Prometheus). /metrics needs a token once this or an API token is set; the API tokens work there too.',
  },
  {
    env: 'KUBEVIGIL_INGEST_TOKEN_AUDIT',
    default: '(none)',
    help: 'Token for /ingest/k8s-audit only (also _ALERTMANAGER, _LOKI, _OTLP, _FALCO for the other receivers); KUBEVIGIL_INGEST_TOKEN works everywhere.',
  },
  { env: 'KUBEVIGIL_TLS_CERT_FILE', default: '(none)', help: 'PEM certificate: serve HTTPS (with KUBEVIGIL_TLS_KEY_FILE).' },
  { env: 'KUBEVIGIL_TLS_KEY_FILE', default: '(none)', help: 'PEM private key of the certificate.' },
  {
    env: 'KUBEVIGIL_TLS_CLIENT_CA_FILE',
    default: '(none)',
    help: 'PEM CA: /ingest/* then requires a client certificate it signed (mutual TLS, as the apiserver webhook kubeconfig presents).',
  },
  { env: 'KUBEVIGIL_INSECURE', default: 'false', help: 'true: allow listening beyond loopback without tokens (same as --insecure).' },
  {
    env: 'KUBEVIGIL_SHUTDOWN_GRACE',
    default: '20s',
    help: "On SIGTERM: how long in-flight requests may take (e.g. 20s, 1m) before their connections are cut; the whole stop gets 5 s more. Keep both below the pod's terminationGracePeriodSeconds.",
  },
  {
    env: 'KUBEVIGIL_RULES_DIR',
    default: '(none)',
    help: 'Extra rule files or directories (separated by ":"), loaded after the shipped pack: your own rules, list additions, exceptions, overrides.',
  },
  {
    env: 'KUBEVIGIL_SILENCES_FILE',
    default: '(none)',
    help: 'YAML or JSON list of silences (the POST /api/v1/silences body, plus an optional id; endsAt absent: until removed from the file), loaded at start and on SIGHUP or POST /-/reload; each process reads its own.',
  },
  { env: 'KUBEVIGIL_MAX_BODY_BYTES', default: '12582912', help: 'Largest ingest body after decompression (12 MiB); larger bodies get 413.' },
  {
    env: 'KUBEVIGIL_DEDUP_ENTRIES',
    default: '100000',
    help: 'How many keys the audit, Alertmanager, Loki and Falco receivers each remember to drop re-sent events (audit: (auditID, stage, receive time), this many in the form kube-apiserver writes, 24 bytes each, and this many in any other form).',
  },
  {
    env: 'KUBEVIGIL_WORKERS',
    default: 'auto',
    help: 'Worker threads that decode audit webhook bodies and run detection on them, so the event loop keeps its core for HTTP, publication and correlation. auto (the default): one when the process may use two CPUs or more (a container CPU limit counts), else 0, which detects on the event loop.',
  },
  {
    env: 'KUBEVIGIL_CORRELATOR_WORKERS',
    default: '0',
    help: 'Distributed mode: worker threads that parse and correlate the signals partitions this process owns (each partition on one of them), so that a correlator uses more than one core; the event loop keeps the Kafka consumer, commits and publishing. 0 (the default) correlates on the event loop. Meant for machines with cores to spare, which is not measured: on 2 cores shared with Kafka and Redis the bench drained no faster with workers (README, performance).',
  },
  {
    env: 'KUBEVIGIL_SWEEP_SCHEDULE',
    default: '* * * * *',
    help: 'node-cron schedule of the correlator sweep, which resolves incidents that went quiet or reached their lifetime cap and forgets correlation windows nobody fed for longer than their timespan (by event time: a replayed old log keeps its windows while it is fed). Six fields for seconds.',
  },
  {
    env: 'KUBEVIGIL_MAX_OPEN_INCIDENTS',
    default: '2000',
    help: 'Open incidents a correlator holds (each partition, distributed); past it the least severe, least recently updated is resolved early (resolution evicted).',
  },
  {
    env: 'KUBEVIGIL_MAX_WINDOW_ENTRIES',
    default: '100000',
    help: "Correlation window entries a correlator holds (about 1.6 KB each); past it the least recently fed actors' windows are forgotten.",
  },
  {
    env: 'KUBEVIGIL_FLOOD_ACTORS',
    default: '200',
    help: 'More distinct actors than this opening incidents of one rule or correlation within 10 minutes: the rest join one flood incident.',
  },
  {
    env: 'KUBEVIGIL_INGEST_MAX_INFLIGHT',
    default: '32',
    help: 'Requests each receiver processes at once; more get 503 (audit, Alertmanager, Falco) or 429 (Loki, OTLP) with Retry-After.',
  },
  { env: 'KUBEVIGIL_INGEST_RATE', default: '0', help: 'Requests per second each receiver accepts (bursts of twice that); 0 means no rate limit.' },
  {
    env: 'KUBEVIGIL_INGEST_MAX_QUEUE_DELAY',
    default: '250ms',
    help: 'Longest an ingest request may wait for the CPU (e.g. 250ms, 1s): once the event-loop delay stays above it for 100 ms, or the requests already admitted would take longer than it to process, the receivers refuse new requests with 503 or 429 and Retry-After; 0 turns this off.',
  },
  {
    env: 'KUBEVIGIL_ALERTMANAGER_ACTOR_LABELS',
    default: 'istio-source,pod,service-account,instance',
    help: 'Which alert labels name the actor, in order: istio-source (source_principal / source_workload), pod (namespace+pod, else namespace+deployment, statefulset, daemonset or workload), service-account, instance (IP).',
  },
  { env: 'LOKI_URL', default: '(none)', help: 'Loki (or gateway) base URL to poll with LogQL, in addition to the push endpoint /loki/api/v1/push.' },
  {
    env: 'LOKI_QUERIES',
    default: '(none)',
    help: 'JSON list of {name, query} LogQL log queries to poll, e.g. [{"name":"istio","query":"{container=\\"istio-proxy\\"}"}].',
  },
  { env: 'LOKI_POLL_SCHEDULE', default: '*/30 * * * * *', help: 'node-cron schedule of the Loki poller.' },
  { env: 'LOKI_TENANT', default: '(none)', help: 'X-Scope-OrgID for the poller.' },
  { env: 'LOKI_TOKEN', default: '(none)', help: 'Bearer token the poller sends to Loki.' },
  { env: 'TEMPO_URL', default: '(none)', help: 'Tempo base URL to poll with TraceQL (/api/search), in addition to the OTLP endpoint /v1/traces.' },
  { env: 'TEMPO_QUERIES', default: '(none)', help: 'TraceQL queries, one per line or ";"-separated, e.g. { span.http.response.status_code = 403 }.' },
  { env: 'TEMPO_POLL_SCHEDULE', default: '* * * * *', help: 'node-cron schedule of the Tempo poller.' },
  { env: 'TEMPO_TENANT', default: '(none)', help: 'X-Scope-OrgID for the Tempo poller.' },
  { env: 'TEMPO_TOKEN', default: '(none)', help: 'Bearer token the poller sends to Tempo.' },
  {
    env: 'KUBEVIGIL_INVENTORY',
    default: 'auto',
    help: "Watch the cluster for its inventory (pods, workloads, RBAC…): auto (the pod's service account in a pod, else $KUBECONFIG when set, else off), in-cluster, kubeconfig[:PATH], or off.",
  },
  { env: 'KUBEVIGIL_BUS_CAPACITY', default: '100000', help: 'Signals queued in the embedded bus before ingest answers 503.' },
  {
    env: 'KUBEVIGIL_V8_FLAGS',
    default: `(none; ${THROUGHPUT_FLAG} for a correlator without the ingest role)`,
    help: `V8 flags set when the process starts serving, separated by spaces; none sets none. ${THROUGHPUT_FLAG} counts buffers outside the JavaScript heap (request bodies, Kafka fetches) in the garbage collector's global limit. A correlator without the ingest role sets it by default: draining a signals topic, V8 then no longer marks its whole state about every 0.5 s (14.0 instead of 16.2 ms of CPU per 1,000 signals, for a resident size a few tens of MB higher). With the ingest role it stays off, as bodies are the senders' to size: 10–35% more audit events/s in the e2e bench before the detection pool's scavenges took away most of the full collections it avoids, for a peak resident size a few hundred MB higher (services/v8-flags.ts).`,
  },
  {
    env: 'KUBEVIGIL_BUS_LINGER_MS',
    default: '100',
    help: 'Embedded bus: shortest time between two deliveries to a consumer under load; what arrives meanwhile goes in one batch (0 delivers every batch at once). Each delivery rewrites every incident it changes, so under load a longer linger buys throughput for latency: 20 ms gave 0.51 of bare express in the e2e bench, 100 ms 0.54–0.56 (receipt → stored update p50 ≈ 40 → ≈ 100 ms).',
  },
  { env: 'KUBEVIGIL_RECENT_SIGNALS', default: '10000', help: 'Signals kept in memory for GET /api/v1/signals.' },
  { env: 'KUBEVIGIL_MIN_SEVERITY', default: 'info', help: `Signals below this severity are not emitted (${SEVERITIES.join(', ')}).` },
  { env: 'KUBEVIGIL_LOG_LEVEL', default: 'info', help: 'pino log level: trace, debug, info, warn, error, fatal.' },
  { env: 'KUBEVIGIL_ROLES', default: 'all', help: 'Comma-separated roles of this process: ingest, correlator, notifier, api (same as --role).' },
  { env: 'KAFKA_BROKERS', default: '(none)', help: 'Comma-separated host:port of Kafka brokers: distributed mode (needs REDIS_URL for the correlator role).' },
  { env: 'REDIS_URL', default: '(none)', help: 'redis://host:port of the Redis that holds correlator state in distributed mode.' },
  { env: 'KUBEVIGIL_TOPIC_PREFIX', default: 'kubevigil', help: 'Prefix of Kafka topics, consumer groups and Redis keys.' },
  { env: 'KUBEVIGIL_PARTITIONS', default: '12', help: 'Partitions of the topics kubevigil creates: the most correlators that can share the work.' },
  {
    env: 'KUBEVIGIL_KAFKA_SESSION_TIMEOUT_MS',
    default: '30000',
    help: 'How long a correlator that died keeps its partitions before another takes them over (6000 at least).',
  },
  {
    env: 'KUBEVIGIL_CLUSTER_NAME',
    default: '(none)',
    help: 'Name of the watched cluster (a DNS label such as prod-eu-1): set on every signal and incident, in Slack messages and webhooks, and as the label cluster of Alertmanager alerts. Unset: no cluster is named.',
  },
  {
    env: 'KUBEVIGIL_RETENTION_SIGNALS',
    default: '14d',
    help: 'How long the store keeps the signals of resolved incidents (e.g. 36h, 14d); older ones are pruned hourly. 0 keeps them.',
  },
  {
    env: 'KUBEVIGIL_RETENTION_INCIDENTS',
    default: '90d',
    help: 'How long the store keeps an incident after it was resolved (e.g. 30d), with its signals; open and acknowledged incidents are never pruned. 0 keeps them.',
  },
];

/** Every setting, for `kubevigil config` and the README. */
export const SETTINGS: SettingDoc[] = [...CORE_SETTINGS, ...NOTIFIER_SETTINGS];

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || host.startsWith('127.');
}

/** KUBEVIGIL_SWEEP_SCHEDULE: a node-cron expression (every minute by default). */
function sweepScheduleSetting(env: NodeJS.ProcessEnv, problems: string[]): string {
  const schedule = env.KUBEVIGIL_SWEEP_SCHEDULE?.trim() || '* * * * *';
  if (!validateCron(schedule))
    problems.push(`KUBEVIGIL_SWEEP_SCHEDULE (${schedule}) is not a cron expression; every minute is "* * * * *", every 10 seconds "*/10 * * * * *"`);
  return schedule;
}

/**
 * KUBEVIGIL_WORKERS: a count, or `auto` (the default): one detection worker when this process may use two CPUs or
 * more (`os.availableParallelism()`, which counts a container's CPU limit), none otherwise.
 */
function workersSetting(env: NodeJS.ProcessEnv, problems: string[]): number {
  const raw = env.KUBEVIGIL_WORKERS?.trim();
  if (raw === undefined || raw === '' || raw === 'auto') return availableParallelism() >= 2 ? 1 : 0;
  return int(env, 'KUBEVIGIL_WORKERS', 0, 0, 64, 'auto uses one worker when the process may use two CPUs or more; 0 detects on the event loop', problems);
}

/** KUBEVIGIL_V8_FLAGS: `--name` or `--name=value` words, `none`, or unset for the roles' default ({@link defaultV8Flags}). */
function v8FlagsSetting(env: NodeJS.ProcessEnv, roles: ReadonlySet<Role>, problems: string[]): string[] {
  const raw = env.KUBEVIGIL_V8_FLAGS?.trim();
  if (raw === undefined || raw === '') return defaultV8Flags(roles);
  if (raw === 'none') return [];
  const flags = raw.split(/\s+/);
  const bad = flags.filter((f) => !/^--[a-z0-9][a-z0-9_-]*(=[\w.,:-]+)?$/.test(f));
  if (bad.length) {
    problems.push(
      `KUBEVIGIL_V8_FLAGS (${JSON.stringify(raw)}): ${bad.map((f) => JSON.stringify(f)).join(', ')} is not a V8 flag; write flags as --name or --name=value, separated by spaces`,
    );
    return [];
  }
  return flags;
}

function int(env: NodeJS.ProcessEnv, name: string, def: number, min: number, max: number, advice: string, problems: string[]): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    problems.push(`${name} (${JSON.stringify(raw)}) must be an integer from ${min} to ${max}; ${advice}`);
    return def;
  }
  return n;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000 };

/** A duration such as `20s`, `1m` or `500ms` (or `0`), in milliseconds, from 0 to `max`. */
function duration(env: NodeJS.ProcessEnv, name: string, def: number, max: number, advice: string, problems: string[]): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const m = /^(\d+)(ms|s|m)$/.exec(raw.trim());
  const ms = raw.trim() === '0' ? 0 : m ? Number(m[1]) * DURATION_UNITS[m[2]!]! : NaN;
  if (!(ms <= max)) {
    problems.push(`${name} (${JSON.stringify(raw)}) must be a duration such as ${def / 1000}s or 1m, at most ${max / 60_000}m; ${advice}`);
    return def;
  }
  return ms;
}

/** Reads and validates the configuration; throws {@link ConfigError} listing every problem. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, flags: { insecure?: boolean; host?: string; port?: string; role?: string } = {}): Config {
  const problems: string[] = [];
  const host = flags.host ?? env.KUBEVIGIL_HOST ?? '127.0.0.1';
  if (host !== 'localhost' && host !== '0.0.0.0' && host !== '::' && isIP(host) === 0)
    problems.push(`KUBEVIGIL_HOST (${JSON.stringify(host)}) must be an IP address such as 127.0.0.1 or 0.0.0.0`);
  const port = int({ ...env, ...(flags.port ? { KUBEVIGIL_PORT: flags.port } : {}) }, 'KUBEVIGIL_PORT', 8080, 0, 65535, '8080 is the default', problems);
  const insecureRaw = env.KUBEVIGIL_INSECURE ?? 'false';
  if (!['true', 'false', '1', '0', ''].includes(insecureRaw)) problems.push(`KUBEVIGIL_INSECURE (${JSON.stringify(insecureRaw)}) must be true or false`);
  const insecure = flags.insecure === true || insecureRaw === 'true' || insecureRaw === '1';
  const ingestToken = env.KUBEVIGIL_INGEST_TOKEN || undefined;
  const apiToken = env.KUBEVIGIL_API_TOKEN || undefined;
  const apiReadToken = env.KUBEVIGIL_API_READ_TOKEN || undefined;
  const metricsToken = env.KUBEVIGIL_METRICS_TOKEN || undefined;
  const slackSigningSecret = env.KUBEVIGIL_SLACK_SIGNING_SECRET?.trim() || undefined;
  // Slack's signing secrets are 32 hex digits; anything else is a pasted token or a typo.
  if (slackSigningSecret !== undefined && !/^[0-9a-f]{32,64}$/i.test(slackSigningSecret))
    problems.push(
      `KUBEVIGIL_SLACK_SIGNING_SECRET (value hidden, ${slackSigningSecret.length} characters) must be the app's signing secret: 32 hex digits, under Basic Information → App Credentials (not the bot token or the verification token)`,
    );
  const sourceTokens: Record<string, string | undefined> = Object.fromEntries(SOURCE_LIST.map((s) => [s.name, env[s.tokenEnv] || undefined]));
  const tokenVars: [string, string | undefined][] = [
    ['KUBEVIGIL_INGEST_TOKEN', ingestToken],
    ['KUBEVIGIL_API_TOKEN', apiToken],
    ['KUBEVIGIL_API_READ_TOKEN', apiReadToken],
    ['KUBEVIGIL_METRICS_TOKEN', metricsToken],
    ...SOURCE_LIST.map((s): [string, string | undefined] => [s.tokenEnv, sourceTokens[s.name]]),
  ];
  for (const [name, tok] of tokenVars)
    if (tok !== undefined && tok.length < 16)
      problems.push(`${name} is ${tok.length} characters; use at least 16 random characters (e.g. openssl rand -hex 24)`);
  const certFile = env.KUBEVIGIL_TLS_CERT_FILE || undefined;
  const keyFile = env.KUBEVIGIL_TLS_KEY_FILE || undefined;
  const clientCaFile = env.KUBEVIGIL_TLS_CLIENT_CA_FILE || undefined;
  if (!!certFile !== !!keyFile) problems.push('KUBEVIGIL_TLS_CERT_FILE and KUBEVIGIL_TLS_KEY_FILE go together: set both to serve HTTPS, or neither');
  if (clientCaFile && !certFile)
    problems.push('KUBEVIGIL_TLS_CLIENT_CA_FILE needs KUBEVIGIL_TLS_CERT_FILE and KUBEVIGIL_TLS_KEY_FILE: mutual TLS needs a TLS listener');
  for (const [name, f] of [
    ['KUBEVIGIL_TLS_CERT_FILE', certFile],
    ['KUBEVIGIL_TLS_KEY_FILE', keyFile],
    ['KUBEVIGIL_TLS_CLIENT_CA_FILE', clientCaFile],
  ] as const)
    if (f && !existsSync(f)) problems.push(`${name} (${JSON.stringify(f)}) does not exist; give the path of a PEM file`);
  const ingestAuthenticated = !!ingestToken || !!clientCaFile || Object.values(sourceTokens).every(Boolean);
  if (!isLoopback(host) && !insecure && (!ingestAuthenticated || !apiToken))
    problems.push(
      `KUBEVIGIL_HOST is ${host}, beyond loopback, but ${[!ingestAuthenticated && 'KUBEVIGIL_INGEST_TOKEN', !apiToken && 'KUBEVIGIL_API_TOKEN'].filter(Boolean).join(' and ')} ${!ingestAuthenticated && !apiToken ? 'are' : 'is'} not set; set them, or pass --insecure if something else (a mesh, a proxy) authenticates callers`,
    );
  const minSeverity = env.KUBEVIGIL_MIN_SEVERITY ?? 'info';
  if (!isSeverity(minSeverity)) problems.push(`KUBEVIGIL_MIN_SEVERITY (${JSON.stringify(minSeverity)}) must be one of ${SEVERITIES.join(', ')}`);
  const logLevel = env.KUBEVIGIL_LOG_LEVEL ?? 'info';
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(logLevel))
    problems.push(`KUBEVIGIL_LOG_LEVEL (${JSON.stringify(logLevel)}) must be one of trace, debug, info, warn, error, fatal, silent`);
  const roleText = flags.role ?? env.KUBEVIGIL_ROLES ?? 'all';
  const roleList = roleText === 'all' || roleText === '' ? [...ROLES] : roleText.split(',').map((r) => r.trim());
  const badRoles = roleList.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (badRoles.length || roleList.length === 0)
    problems.push(`roles (${JSON.stringify(roleText)}) must be "all" or a comma-separated list of ${ROLES.join(', ')}`);
  const roles = new Set(roleList.filter((r): r is Role => (ROLES as readonly string[]).includes(r)));
  const kafkaBrokers = (env.KAFKA_BROKERS ?? '')
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);
  for (const b of kafkaBrokers)
    if (!/^[^:\s]+:\d{1,5}$/.test(b)) problems.push(`KAFKA_BROKERS entry ${JSON.stringify(b)} must be host:port, e.g. 127.0.0.1:9092`);
  const redisUrl = env.REDIS_URL || undefined;
  if (redisUrl && !/^rediss?:\/\//.test(redisUrl)) problems.push(`REDIS_URL (${JSON.stringify(redisUrl)}) must start with redis:// or rediss://`);
  if (kafkaBrokers.length && roles.has('correlator') && !redisUrl)
    problems.push('KAFKA_BROKERS is set and this process runs the correlator role, but REDIS_URL is not: distributed correlators keep their state in Redis');
  if (!kafkaBrokers.length && roleText !== 'all' && roles.size < ROLES.length)
    problems.push(`running only some roles (${roleText}) needs KAFKA_BROKERS: in embedded mode every role runs in one process`);
  const topicPrefix = env.KUBEVIGIL_TOPIC_PREFIX || 'kubevigil';
  if (!/^[a-zA-Z0-9._-]{1,100}$/.test(topicPrefix))
    problems.push(`KUBEVIGIL_TOPIC_PREFIX (${JSON.stringify(topicPrefix)}) may use letters, digits, ".", "_" and "-" only`);
  const conventions = parseActorConventions(env.KUBEVIGIL_ALERTMANAGER_ACTOR_LABELS ?? 'istio-source,pod,service-account,instance');
  for (const p of conventions.problems) problems.push(`KUBEVIGIL_ALERTMANAGER_ACTOR_LABELS: ${p}`);
  let lokiPoller: Config['lokiPoller'];
  if (env.LOKI_URL) {
    let queries: LokiQuery[] = [];
    try {
      const parsed = JSON.parse(env.LOKI_QUERIES ?? '[]') as unknown;
      if (!Array.isArray(parsed) || !parsed.every((q) => q && typeof q.name === 'string' && typeof q.query === 'string'))
        throw new Error('not a list of {name, query}');
      queries = parsed as LokiQuery[];
    } catch (e) {
      problems.push(`LOKI_QUERIES must be a JSON list of {"name": …, "query": …} (${(e as Error).message})`);
    }
    const schedule = env.LOKI_POLL_SCHEDULE || undefined;
    problems.push(...checkPollerOptions({ url: env.LOKI_URL, queries, ...(schedule ? { schedule } : {}) }));
    lokiPoller = {
      url: env.LOKI_URL,
      queries,
      ...(schedule ? { schedule } : {}),
      ...(env.LOKI_TENANT ? { tenant: env.LOKI_TENANT } : {}),
      ...(env.LOKI_TOKEN ? { token: env.LOKI_TOKEN } : {}),
    };
  } else if (env.LOKI_QUERIES) problems.push('LOKI_QUERIES is set but LOKI_URL is not: the poller needs the Loki base URL');
  let tempoPoller: Config['tempoPoller'];
  if (env.TEMPO_URL) {
    const queries = splitTraceQLQueries(env.TEMPO_QUERIES ?? '');
    if (!/^https?:\/\//.test(env.TEMPO_URL)) problems.push(`TEMPO_URL (${env.TEMPO_URL}) must be an http(s) URL such as http://tempo.monitoring:3200`);
    if (queries.length === 0) problems.push('TEMPO_QUERIES is empty; give at least one TraceQL query, e.g. { span.http.response.status_code = 403 }');
    const schedule = env.TEMPO_POLL_SCHEDULE || undefined;
    if (schedule && !validateCron(schedule)) problems.push(`TEMPO_POLL_SCHEDULE (${schedule}) is not a cron expression; every minute is "* * * * *"`);
    tempoPoller = {
      url: env.TEMPO_URL,
      queries,
      ...(schedule ? { schedule } : {}),
      ...(env.TEMPO_TENANT ? { tenant: env.TEMPO_TENANT } : {}),
      ...(env.TEMPO_TOKEN ? { token: env.TEMPO_TOKEN } : {}),
    };
  } else if (env.TEMPO_QUERIES) problems.push('TEMPO_QUERIES is set but TEMPO_URL is not: the poller needs the Tempo base URL');
  let notifier: NotifierConfig | undefined;
  try {
    notifier = loadNotifierConfig(env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    problems.push(...e.problems);
  }
  const config: Config = {
    host,
    port,
    dataDir: env.KUBEVIGIL_DATA_DIR || './data',
    ingestToken,
    sourceTokens,
    apiToken,
    apiReadToken,
    ...(metricsToken ? { metricsToken } : {}),
    ...(slackSigningSecret ? { slackSigningSecret } : {}),
    shutdownGraceMs: duration(
      env,
      'KUBEVIGIL_SHUTDOWN_GRACE',
      20_000,
      10 * 60_000,
      "keep it, plus 5 s, below the pod's terminationGracePeriodSeconds (30 s by default)",
      problems,
    ),
    ...(certFile && keyFile ? { tls: { certFile, keyFile, ...(clientCaFile ? { clientCaFile } : {}) } } : {}),
    insecure,
    rulesPaths: (env.KUBEVIGIL_RULES_DIR ?? '').split(':').filter((p) => p !== ''),
    ...(env.KUBEVIGIL_SILENCES_FILE ? { silencesFile: env.KUBEVIGIL_SILENCES_FILE } : {}),
    maxBodyBytes: int(
      env,
      'KUBEVIGIL_MAX_BODY_BYTES',
      12 * 1024 * 1024,
      1024,
      1024 * 1024 * 1024,
      'the apiserver sends batches of up to --audit-webhook-batch-max-size events (400 by default); 12 MiB suits most clusters',
      problems,
    ),
    dedupEntries: int(env, 'KUBEVIGIL_DEDUP_ENTRIES', 100_000, 1, 10_000_000, '100000 covers several minutes of a busy cluster', problems),
    workers: workersSetting(env, problems),
    correlatorWorkers: int(env, 'KUBEVIGIL_CORRELATOR_WORKERS', 0, 0, 64, '0 correlates on the event loop; 1 or 2 use more cores (distributed mode)', problems),
    sweepSchedule: sweepScheduleSetting(env, problems),
    v8Flags: v8FlagsSetting(env, roles, problems),
    budget: {
      maxOpenIncidents: int(
        env,
        'KUBEVIGIL_MAX_OPEN_INCIDENTS',
        2000,
        10,
        1_000_000,
        'each open incident holds up to about 60 KB; 2000 suits most clusters',
        problems,
      ),
      maxWindowEntries: int(
        env,
        'KUBEVIGIL_MAX_WINDOW_ENTRIES',
        100_000,
        1000,
        10_000_000,
        'each entry holds about 1.6 KB; 100000 suits most clusters',
        problems,
      ),
      floodActors: int(env, 'KUBEVIGIL_FLOOD_ACTORS', 200, 2, 1_000_000, '200 distinct actors of one pattern in 10 minutes is a flood', problems),
    },
    busCapacity: int(env, 'KUBEVIGIL_BUS_CAPACITY', 100_000, 100, 10_000_000, '100000 suits most clusters', problems),
    busLingerMs: int(env, 'KUBEVIGIL_BUS_LINGER_MS', 100, 0, 1000, '100 keeps incident updates within about a tenth of a second', problems),
    recentSignals: int(env, 'KUBEVIGIL_RECENT_SIGNALS', 10_000, 0, 1_000_000, '10000 is plenty for a look at what fired', problems),
    minSeverity: isSeverity(minSeverity) ? minSeverity : 'info',
    logLevel,
    roles,
    kafkaBrokers,
    redisUrl,
    topicPrefix,
    partitions: int(env, 'KUBEVIGIL_PARTITIONS', 12, 1, 1000, '12 lets up to 12 correlators share the work', problems),
    kafkaSessionTimeoutMs: int(env, 'KUBEVIGIL_KAFKA_SESSION_TIMEOUT_MS', 30_000, 6000, 300_000, 'the broker refuses less than 6000 by default', problems),
    notifier: notifier!,
    ingestMaxInFlight: int(env, 'KUBEVIGIL_INGEST_MAX_INFLIGHT', 32, 1, 10_000, '32 suits most clusters', problems),
    alertmanagerActorConventions: conventions.conventions,
    ...(lokiPoller ? { lokiPoller } : {}),
    ...(tempoPoller ? { tempoPoller } : {}),
    ingestRate: int(env, 'KUBEVIGIL_INGEST_RATE', 0, 0, 1_000_000, '0 (no limit) unless a sender misbehaves', problems),
    ingestMaxQueueDelayMs: queueDelaySetting(env, problems),
    inventory: inventorySetting(env, problems),
    ...clusterNameSetting(env, problems),
    retention: {
      signalsMs: retentionSetting(env, 'KUBEVIGIL_RETENTION_SIGNALS', '14d', problems),
      incidentsMs: retentionSetting(env, 'KUBEVIGIL_RETENTION_INCIDENTS', '90d', problems),
    },
  };
  if (problems.length) throw new ConfigError(problems);
  return config;
}

/** KUBEVIGIL_INGEST_MAX_QUEUE_DELAY: a duration (250ms, 1s), or 0 to turn queue-delay admission off. */
function queueDelaySetting(env: NodeJS.ProcessEnv, problems: string[]): number {
  const raw = (env.KUBEVIGIL_INGEST_MAX_QUEUE_DELAY ?? '').trim();
  if (raw === '') return 250;
  if (raw === '0') return 0;
  // The syntax of the other durations (KUBEVIGIL_SHUTDOWN_GRACE): whole numbers of ms, s or m.
  const m = /^(\d+)(ms|s|m)$/.exec(raw);
  const ms = m ? Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] as 'ms' | 's' | 'm'] : NaN;
  // Below 10 ms is the event loop's own jitter (and its sampling resolution): it would refuse at random.
  if (!(ms >= 10 && ms <= 60_000)) {
    problems.push(
      `KUBEVIGIL_INGEST_MAX_QUEUE_DELAY (${JSON.stringify(raw)}) must be a duration from 10ms to 60s, such as 250ms or 1s, or 0 to turn queue-delay admission off`,
    );
    return 250;
  }
  return ms;
}

const SA_TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** KUBEVIGIL_INVENTORY: where the inventory reads the cluster from. */
function inventorySetting(env: NodeJS.ProcessEnv, problems: string[]): Config['inventory'] {
  const v = (env.KUBEVIGIL_INVENTORY ?? 'auto').trim();
  if (v === 'off' || v === 'false') return { mode: 'off' };
  if (v === 'in-cluster') return { mode: 'in-cluster' };
  if (v === 'kubeconfig') return { mode: 'kubeconfig' };
  if (v.startsWith('kubeconfig:')) return { mode: 'kubeconfig', path: v.slice('kubeconfig:'.length) };
  if (v === 'auto' || v === '') {
    // In a pod only when its token is mounted (deploy/inventory, the chart's rbac.inventory).
    if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT && existsSync(SA_TOKEN_PATH)) return { mode: 'in-cluster' };
    if (env.KUBECONFIG) return { mode: 'kubeconfig' };
    return { mode: 'off' };
  }
  problems.push(`KUBEVIGIL_INVENTORY (${JSON.stringify(v)}) must be auto, in-cluster, kubeconfig, kubeconfig:/path/to/kubeconfig or off`);
  return { mode: 'off' };
}

/** KUBEVIGIL_CLUSTER_NAME: a DNS label (RFC 1123), so it is safe as an Alertmanager label value and in a Slack message. */
function clusterNameSetting(env: NodeJS.ProcessEnv, problems: string[]): { clusterName?: string } {
  const raw = env.KUBEVIGIL_CLUSTER_NAME;
  if (raw === undefined || raw === '') return {};
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(raw)) {
    problems.push(
      `KUBEVIGIL_CLUSTER_NAME (${JSON.stringify(raw.slice(0, 80))}) must be a DNS label: 1 to 63 lowercase letters, digits and "-", starting and ending with a letter or digit, e.g. prod-eu-1`,
    );
    return {};
  }
  return { clusterName: raw };
}

const RETENTION_UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A retention such as 36h, 14d or 0 (keep), in ms; at least an hour, at most ten years. */
function retentionSetting(env: NodeJS.ProcessEnv, name: string, def: string, problems: string[]): number {
  const raw = (env[name] ?? '').trim() || def;
  if (raw === '0') return 0;
  const m = /^(\d+)(m|h|d)$/.exec(raw);
  const ms = m ? Number(m[1]) * RETENTION_UNITS[m[2]!]! : NaN;
  if (!(ms >= 3_600_000 && ms <= 3650 * 86_400_000)) {
    problems.push(
      `${name} (${JSON.stringify(raw.slice(0, 40))}) must be a duration from 1h to 3650d such as 36h or ${def}, or 0 to keep everything; ${def} is the default`,
    );
    return parseRetentionDefault(def);
  }
  return ms;
}

const parseRetentionDefault = (def: string): number => Number(def.slice(0, -1)) * RETENTION_UNITS[def.slice(-1)]!;
