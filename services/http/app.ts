/**
 * The HTTP surface of one process: health, readiness, metrics, the ingest receivers and the API.
 * Routes are mounted here and nowhere else.
 */
import { STATUS_CODES } from 'node:http';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { sendProblem } from '../../platform/http.js';
import type { CompiledCorrelation } from '../../correlator/correlation/rules.js';
import type { CompiledRule } from '../../correlator/detection/compile.js';
import { KubevigilError } from '../../correlator/errors.js';
import type { IngestSink } from '../../correlator/ports.js';
import { isSeverity, severityRank } from '../../correlator/severity.js';
import { incidentApi } from '../api/incidents.js';
import { openApiDocument } from '../api/openapi.js';
import { silenceApi } from '../api/silences.js';
import type { Silences } from '../silences.js';
import { apiSignal } from '../api/schemas.js';
import type { IncidentStream } from '../api/stream.js';
import type { Config } from '../config.js';
import type { IncidentCommands } from '../correlate.js';
import type { IncidentStore } from '../store/store.js';
import type { Logger } from '../logging.js';
import type { InventoryStatus } from '../../correlator/inventory.js';
import type { BudgetUse } from '../../correlator/incidents.js';
import type { Metrics } from '../metrics.js';
import type { RecentSignals } from '../recent-signals.js';
import { SOURCE_LIST } from '../sources.js';
import { reloadHandler, type ReloadRegistry } from '../reload.js';
import { slackClient } from '../notifier/slack/bot.js';
import { slackInteractions } from '../notifier/slack/interactions.js';
import { SystemRates, systemHandler } from '../api/system.js';
import { requireAuth } from './auth.js';
import { consoleRoutes, type ConsoleFiles } from './console.js';
import { ingestLimits } from './limits.js';
import type { AuditOffload } from '../../connectors/k8s-audit/receiver.js';

/** What the app needs from the rest of the process. */
export interface AppDeps {
  config: Config;
  metrics: Metrics;
  logger: Logger;
  /** The ingest stage; absent when this process does not run the ingest role. */
  sink?: IngestSink;
  /** Audit bodies decoded and detected on worker threads (KUBEVIGIL_WORKERS > 0). */
  auditOffload?: AuditOffload;
  /** Recent signals; absent in a process without the api role. */
  recent?: RecentSignals;
  rules: readonly CompiledRule[];
  correlations: readonly CompiledCorrelation[];
  store: IncidentStore;
  /** Lifecycle commands; absent when this process does not run the API role. */
  commands?: IncidentCommands;
  stream: IncidentStream;
  /** Readiness: false while starting or draining, or when the broker or Redis cannot be reached. */
  ready: () => Promise<boolean>;
  /** The cluster inventory's sync state, reported by /readyz (it never makes kubevigil unready). */
  inventory?: () => InventoryStatus;
  /** The correlator's count budgets in use, reported by /readyz; absent without the correlator role. */
  budget?: () => BudgetUse | undefined;
  /** Silences; absent without the api role (or, distributed, without REDIS_URL). */
  silences?: Silences;
  /** What POST /-/reload reloads. */
  reload?: ReloadRegistry;
  /** The sampled rates GET /api/v1/system reports; absent, each request adds a sample: the rate is since the oldest of the last 12 requests, this one included (0 on the first). */
  systemRates?: SystemRates;
  /** Messages queued behind this process's consumers (the in-memory bus); absent, the bus lag gauge is read. */
  busLag?: () => number;
  /** The built console (tests); absent, dist/console is read once. Served only with the api role. */
  console?: ConsoleFiles;
}

/** Builds the express application. */
export function createApp(deps: AppDeps): Express {
  const { config, metrics } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use((_req, res, next) => {
    // The API serves JSON only: no sniffing, no framing, no caching, no cross-origin reads (CORS stays off).
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'");
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    if (await deps.ready()) {
      // A full budget never makes kubevigil unready: it keeps working, evicting the least important state.
      const budget = deps.budget?.();
      res.json({ status: 'ready', ...(deps.inventory ? { inventory: deps.inventory() } : {}), ...(budget ? { budget } : {}) });
    } else sendProblem(res, 503, 'Service Unavailable', 'kubevigil is starting or shutting down, or cannot reach Kafka or Redis');
  });
  // The metrics tell which attacks are detected: once the API or /metrics itself has a token, so does
  // /metrics. Any of these tokens reads it; the metrics token opens nothing else.
  const metricsAuth = requireAuth({ realm: 'metrics', write: [], read: [config.metricsToken, config.apiReadToken, config.apiToken] });
  app.get('/metrics', metricsAuth, async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.scrape());
  });

  // Reloading changes what is detected: the API write token only (the read and metrics tokens get 403).
  if (deps.reload)
    app.post(
      '/-/reload',
      requireAuth({ realm: 'api', write: [config.apiToken], read: [config.apiReadToken, config.metricsToken] }),
      reloadHandler(deps.reload),
    );

  // Every source's receiver, in the registry's order: its token (or the general one; with a client
  // CA a verified certificate too), the overload limits with the status its senders retry, then it.
  for (const source of SOURCE_LIST) {
    app.use(
      source.path,
      requireAuth({ realm: `${source.name} ingest`, write: [config.ingestToken, config.sourceTokens[source.name]], clientCert: !!config.tls?.clientCaFile }),
    );
    app.use(
      source.path,
      ingestLimits(
        {
          maxInFlight: config.ingestMaxInFlight,
          ratePerSecond: config.ingestRate,
          burst: Math.max(1, config.ingestRate * 2),
          status: source.overloadStatus,
          retryAfterSeconds: 1,
          maxQueueDelayMs: config.ingestMaxQueueDelayMs,
        },
        (reason) => metrics.ingestRejected.inc({ source: source.name, reason }),
      ),
    );
    if (deps.sink)
      app.use(
        source.receiver({
          sink: deps.sink,
          maxBodyBytes: config.maxBodyBytes,
          dedupEntries: config.dedupEntries,
          metrics,
          alertmanagerActorConventions: config.alertmanagerActorConventions,
          ...(deps.auditOffload ? { auditOffload: deps.auditOffload } : {}),
        }),
      );
  }

  // Slack's button clicks: authenticated by Slack's request signature, not by a bearer token.
  const slackBot = config.notifier.slackBot;
  app.use(
    slackInteractions({
      ...(config.slackSigningSecret ? { signingSecret: config.slackSigningSecret } : {}),
      store: deps.store,
      ...(deps.commands ? { commands: deps.commands } : {}),
      ...(deps.silences ? { silences: deps.silences } : {}),
      ...(slackBot ? { slack: slackClient(slackBot, deps.logger, config.notifier.delivery.requestTimeoutMs), slackApiUrl: slackBot.apiUrl } : {}),
      ...(config.notifier.apiBaseUrl ? { apiBaseUrl: config.notifier.apiBaseUrl } : {}),
      logger: deps.logger,
    }),
  );

  // The document is the same for the life of the process: generated from the schemas once.
  const openapi = JSON.stringify(openApiDocument());
  app.get('/api/v1/openapi.json', (_req, res) => {
    res.type('application/json').send(openapi);
  });
  app.use('/api', requireAuth({ realm: 'api', write: [config.apiToken], read: [config.apiReadToken] }));
  // Every API query parameter is given once, as text: a repeated one (?severity=high&severity=low)
  // or a bracketed one (?limit[x]=1) was silently ignored before; now it is refused and named.
  app.use('/api', (req, res, next) => {
    for (const [k, v] of Object.entries(req.query)) {
      const name = k.slice(0, 64);
      const problemText = Array.isArray(v)
        ? `query parameter "${name}" is given ${v.length} times; give it once (status takes a comma-separated list)`
        : typeof v !== 'string' || /[[\]]/.test(k)
          ? `query parameter "${name}" must be a plain name=value; brackets and nested values are not read`
          : undefined;
      if (problemText) {
        sendProblem(res, 400, 'Bad Request', problemText);
        return;
      }
    }
    next();
  });
  if (deps.commands) app.use(incidentApi({ store: deps.store, commands: deps.commands, stream: deps.stream }));
  if (deps.silences) app.use(silenceApi({ silences: deps.silences, store: deps.store }));
  const recent = deps.recent;
  if (recent)
    app.get('/api/v1/signals', (req: Request, res: Response) => {
      const q = req.query;
      const limitRaw = typeof q.limit === 'string' ? Number(q.limit) : 100;
      if (!Number.isInteger(limitRaw) || limitRaw < 1 || limitRaw > 1000) {
        sendProblem(res, 400, 'Bad Request', `limit (${String(q.limit)}) must be an integer from 1 to 1000`);
        return;
      }
      const minSev = q.severity;
      if (minSev !== undefined && !isSeverity(minSev)) {
        sendProblem(res, 400, 'Bad Request', `severity (${String(minSev)}) must be one of info, low, medium, high, critical (the minimum to list)`);
        return;
      }
      const kind = typeof q.kind === 'string' ? q.kind : undefined;
      const actor = typeof q.actor === 'string' ? q.actor : undefined;
      const min = minSev ? severityRank(minSev) : 0;
      const items = recent.list(limitRaw, (s) => (!kind || s.kind === kind) && (!actor || s.actor === actor) && severityRank(s.severity) >= min);
      res.json({ items: items.map(apiSignal) });
    });
  app.get(
    '/api/v1/system',
    systemHandler({
      config,
      metrics,
      rates: deps.systemRates ?? new SystemRates(metrics),
      stream: deps.stream,
      ready: deps.ready,
      ...(deps.inventory ? { inventory: deps.inventory } : {}),
      ...(deps.budget ? { budget: deps.budget } : {}),
      ...(deps.busLag ? { busLag: deps.busLag } : {}),
    }),
  );
  app.get('/api/v1/rules', (_req, res) => {
    const file = (f: string) => f.replace(/^.*\/rules\//, 'rules/');
    res.json({
      items: deps.rules.map((r) => ({
        type: 'detection',
        id: r.id,
        title: r.title,
        description: r.description,
        source: r.source,
        severity: r.severity,
        kind: r.kind,
        mitre: r.mitre,
        file: file(r.file),
      })),
      correlations: deps.correlations.map((c) => ({
        type: c.type,
        id: c.id,
        title: c.title,
        description: c.description,
        rules: c.refs,
        timespanMs: c.timespanMs,
        severity: c.severity,
        mitre: c.mitre,
        file: file(c.file),
      })),
    });
  });

  // The browser console (its pages and assets; the data comes from the API above, with its tokens).
  if (deps.commands) app.use(consoleRoutes(deps.console));

  app.use((req, res) => {
    sendProblem(res, 404, 'Not Found', `no route for ${req.method} ${req.path.slice(0, 200)}; see the README for the endpoints`);
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    // Errors express or its body parser raise for bad requests carry a 4xx status: they are the
    // client's (a bad percent-encoding in a path, an unsupported charset or encoding), not ours.
    const e = err as { status?: number; statusCode?: number; type?: string; message?: string };
    const status = e?.status ?? e?.statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      if (!res.headersSent)
        sendProblem(
          res,
          status,
          status === 415 ? 'Unsupported Media Type' : status === 413 ? 'Content Too Large' : 'Bad Request',
          `the request could not be read: ${(e.message ?? 'invalid request').slice(0, 200)}`,
        );
      return;
    }
    // kubevigil's own errors carry their catalogued status: a store closing during shutdown or a
    // Redis outage is a 503 to retry, not a 500.
    if (err instanceof KubevigilError && err.status !== 500) {
      deps.logger.warn({ err, path: req.path.slice(0, 200) }, 'request failed');
      if (res.headersSent) return;
      if (err.retryable) res.setHeader('Retry-After', String(err.retryAfterSeconds ?? 1));
      sendProblem(res, err.status, STATUS_CODES[err.status] ?? 'Error', `${err.message} (${err.code})`);
      return;
    }
    deps.logger.error({ err, path: req.path.slice(0, 200) }, 'request failed');
    if (!res.headersSent) sendProblem(res, 500, 'Internal Server Error', 'the request failed inside kubevigil; the error is logged');
  });
  return app;
}
