/**
 * Every source kubevigil ingests, declared once. A source's entry says what detection needs (its
 * schema and decoder, from the connector), where its receiver listens and how it is protected (its
 * own ingest token, the overload status its senders retry), how its receiver's counters become
 * metrics, what the ingest stage learns from its events, and its part of the OpenAPI document. The
 * HTTP app, the configuration, the ingest stage and the API document loop over this list; adding a
 * source is adding an entry here and a folder under connectors/.
 */
import type { Router } from 'express';
import { alertmanagerReceiver } from '../connectors/alertmanager/receiver.js';
import { ALERTMANAGER_SOURCE } from '../connectors/alertmanager/source.js';
import { falcoReceiver } from '../connectors/falco/receiver.js';
import { FALCO_SOURCE } from '../connectors/falco/source.js';
import { identityFacts } from '../connectors/k8s-audit/identity.js';
import type { AuditEvent } from '../connectors/k8s-audit/parse.js';
import { auditReceiver, type AuditOffload } from '../connectors/k8s-audit/receiver.js';
import { AUDIT_SOURCE } from '../connectors/k8s-audit/source.js';
import type { SourceDescriptor } from '../connectors/kit/source.js';
import { lokiReceiver } from '../connectors/loki/receiver.js';
import { LOKI_SOURCE } from '../connectors/loki/source.js';
import { otlpReceiver } from '../connectors/otlp/receiver.js';
import { OTLP_SOURCE } from '../connectors/otlp/source.js';
import type { ActorConvention } from '../connectors/alertmanager/normalize.js';
import type { SourceEvent } from '../correlator/detection/source-event.js';
import type { IdentityResolver } from '../correlator/identity.js';
import type { IngestSink } from '../correlator/ports.js';
import type { SourceName } from '../correlator/signal.js';
import type { Config } from './config.js';
import type { Logger } from './logging.js';
import type { Metrics } from './metrics.js';
import type { UsageProfiler } from './usage.js';
import { LokiPoller } from '../connectors/loki/poller.js';
import { TempoPoller } from '../connectors/otlp/tempo-poller.js';

/** What a receiver is built from: the ingest stage, the process's limits and metrics. */
export interface ReceiverContext {
  sink: IngestSink;
  maxBodyBytes: number;
  dedupEntries: number;
  metrics: Metrics;
  /** Audit bodies decoded and detected on worker threads (KUBEVIGIL_WORKERS > 0). */
  auditOffload?: AuditOffload;
  alertmanagerActorConventions: ActorConvention[];
}

/** What a poller is built from: the configuration, the ingest stage, where cursors are kept, metrics and logs. */
export interface PollerContext {
  config: Config;
  sink: IngestSink;
  state: { get(key: string): Promise<string | undefined>; set(key: string, value: string): Promise<void> };
  metrics: Metrics;
  logger: Logger;
}

/** Something a source polls on a schedule. */
export interface Poller {
  start(): void;
  stop(): Promise<void>;
}

/** What the ingest stage keeps from a source's events besides detection. */
export interface LearnContext {
  identity?: IdentityResolver;
  usage?: UsageProfiler;
}

/** One source, everything about it in one place. */
export interface Source {
  name: SourceName;
  /** Schema and decoder for detection, rule tests and replay. */
  descriptor: SourceDescriptor;
  /** The route its senders post to. */
  path: string;
  /** The variable of a token that only this receiver accepts (KUBEVIGIL_INGEST_TOKEN works everywhere). */
  tokenEnv: string;
  /** How an overloaded kubevigil answers, as this source's senders expect to retry: 503 or 429. */
  overloadStatus: 429 | 503;
  /** True when the sender authenticated the actor itself (kube-apiserver): its actors are not re-resolved from IPs or pods. */
  authenticatesActors: boolean;
  receiver(ctx: ReceiverContext): Router;
  /** Its poller when the configuration asks for one (Loki LogQL, Tempo TraceQL), counted and logged like every poller. */
  poller?(ctx: PollerContext): Poller | undefined;
  /** Facts for later stages: identity (IP → pod → service account) and legitimate permission use. */
  learn?(event: SourceEvent, ctx: LearnContext): void;
  /** Its operation in the OpenAPI document (`post` of its path). */
  openapi: Record<string, unknown>;
}

const problem = { $ref: '#/components/responses/Problem' };
const str = { type: 'string' };
const json = (ref: string, description: string) => ({ description, content: { 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } } });
const INGEST_SECURITY = [{ ingestToken: [] }];

/** Counters of a receiver that reports accepted, duplicate and invalid items, as kubevigil_ingest_* series. */
function itemStats(source: SourceName, metrics: Metrics) {
  return {
    events: (outcome: string, n: number) => n && metrics.ingestEvents.inc({ source, outcome }, n),
    request: (code: number) => metrics.ingestRequests.inc({ source, code: String(code) }),
  };
}

/** The registered sources, in the order their routes are mounted. */
export const SOURCE_LIST: readonly Source[] = [
  {
    name: 'k8s-audit',
    descriptor: AUDIT_SOURCE,
    path: '/ingest/k8s-audit',
    tokenEnv: 'KUBEVIGIL_INGEST_TOKEN_AUDIT',
    overloadStatus: 503,
    authenticatesActors: true,
    receiver: (ctx) =>
      auditReceiver({
        sink: ctx.sink,
        maxBodyBytes: ctx.maxBodyBytes,
        dedupEntries: ctx.dedupEntries,
        stats: itemStats('k8s-audit', ctx.metrics),
        ...(ctx.auditOffload ? { offload: ctx.auditOffload } : {}),
      }),
    learn(ev, ctx) {
      const raw = ev.raw as AuditEvent;
      if (ctx.identity) for (const f of identityFacts(raw, ev.observedTime)) ctx.identity.learn(f);
      if (ctx.usage && ev.final) ctx.usage.observe(raw);
    },
    openapi: {
      operationId: 'ingestAudit',
      tags: ['ingest'],
      summary:
        'Audit webhook: an EventList, an Event, an array, or JSON lines (gzip, deflate, br or zstd allowed); repeated (auditID, stage, receive time) pairs are dropped',
      security: INGEST_SECURITY,
      requestBody: { required: true, content: { 'application/json': { schema: { type: 'object' } }, 'application/x-ndjson': { schema: str } } },
      responses: {
        '200': json('IngestResult', 'accepted (invalid events are reported, not refused)'),
        '400': problem,
        '401': problem,
        '413': problem,
        '415': problem,
        '503': problem,
      },
    },
  },
  {
    name: 'alertmanager',
    descriptor: ALERTMANAGER_SOURCE,
    path: '/ingest/alertmanager',
    tokenEnv: 'KUBEVIGIL_INGEST_TOKEN_ALERTMANAGER',
    overloadStatus: 503,
    authenticatesActors: false,
    receiver: (ctx) =>
      alertmanagerReceiver({
        sink: ctx.sink,
        maxBodyBytes: ctx.maxBodyBytes,
        dedupEntries: ctx.dedupEntries,
        normalize: { actorConventions: ctx.alertmanagerActorConventions },
        stats: itemStats('alertmanager', ctx.metrics),
      }),
    openapi: {
      operationId: 'ingestAlertmanager',
      tags: ['ingest'],
      summary: 'Alertmanager webhook (payload version 4; Grafana version 1 tolerated); deduplicated per (fingerprint, startsAt, status)',
      security: INGEST_SECURITY,
      requestBody: {
        required: true,
        content: {
          'application/json': {
            schema: { type: 'object', required: ['alerts'], properties: { version: str, status: str, alerts: { type: 'array', items: { type: 'object' } } } },
          },
        },
      },
      responses: {
        '200': json('IngestResult', 'accepted (invalid alerts are reported, not refused)'),
        '400': problem,
        '401': problem,
        '413': problem,
        '415': problem,
        '503': problem,
      },
    },
  },
  {
    name: 'loki',
    descriptor: LOKI_SOURCE,
    path: '/loki/api/v1/push',
    tokenEnv: 'KUBEVIGIL_INGEST_TOKEN_LOKI',
    overloadStatus: 429,
    authenticatesActors: false,
    receiver: (ctx) =>
      lokiReceiver({
        sink: ctx.sink,
        maxBodyBytes: ctx.maxBodyBytes,
        dedupEntries: ctx.dedupEntries,
        stats: {
          lines: (o, n) => n && ctx.metrics.ingestEvents.inc({ source: 'loki', outcome: o }, n),
          request: (c) => ctx.metrics.ingestRequests.inc({ source: 'loki', code: String(c) }),
        },
      }),
    poller({ config, sink, state, metrics, logger }) {
      const lp = config.lokiPoller;
      if (!lp) return undefined;
      return new LokiPoller({
        url: lp.url,
        queries: lp.queries,
        sink,
        state,
        ...(lp.tenant ? { tenant: lp.tenant } : {}),
        ...(lp.schedule ? { schedule: lp.schedule } : {}),
        ...(lp.token ? { headers: { authorization: `Bearer ${lp.token}` } } : {}),
        stats: {
          lines: (outcome, n) => n && metrics.pollerItems.inc({ source: 'loki', outcome }, n),
          error: (reason) => metrics.pollerErrors.inc({ source: 'loki', reason }),
          poll: (ok) => metrics.pollerPolls.inc({ source: 'loki', outcome: ok ? 'ok' : 'error' }),
        },
        // Loki's answer may quote the query or the attacker's log lines: under its own key.
        onError: (query, reason, message) => logger.warn({ source: 'loki', query, reason, upstream: { message: message.slice(0, 500) } }, 'loki poll failed'),
      });
    },
    openapi: {
      operationId: 'ingestLokiPush',
      tags: ['ingest'],
      summary:
        'Loki push API (JSON, gzip JSON, snappy-compressed protobuf PushRequest; X-Scope-OrgID) so Promtail, Alloy or Fluent Bit can send a copy of their streams',
      security: INGEST_SECURITY,
      requestBody: {
        required: true,
        content: {
          'application/json': { schema: { type: 'object', properties: { streams: { type: 'array', items: { type: 'object' } } } } },
          'application/x-protobuf': { schema: { type: 'string', format: 'binary' } },
        },
      },
      responses: { '204': { description: 'accepted' }, '400': problem, '401': problem, '413': problem, '415': problem, '429': problem },
    },
  },
  {
    name: 'otlp',
    descriptor: OTLP_SOURCE,
    path: '/v1/traces',
    tokenEnv: 'KUBEVIGIL_INGEST_TOKEN_OTLP',
    overloadStatus: 429,
    authenticatesActors: false,
    receiver: (ctx) =>
      otlpReceiver({
        sink: ctx.sink,
        maxBodyBytes: ctx.maxBodyBytes,
        stats: {
          spans: (o, n) => n && ctx.metrics.ingestEvents.inc({ source: 'otlp', outcome: o }, n),
          request: (c) => ctx.metrics.ingestRequests.inc({ source: 'otlp', code: String(c) }),
        },
      }),
    poller({ config, sink, state, metrics, logger }) {
      const tp = config.tempoPoller;
      if (!tp) return undefined;
      const headers: Record<string, string> = {};
      if (tp.tenant) headers['X-Scope-OrgID'] = tp.tenant;
      if (tp.token) headers.authorization = `Bearer ${tp.token}`;
      return new TempoPoller({
        url: tp.url,
        queries: tp.queries,
        sink,
        state,
        headers,
        ...(tp.schedule ? { schedule: tp.schedule } : {}),
        stats: {
          polls: (outcome) => metrics.pollerPolls.inc({ source: 'otlp', outcome }),
          spans: (outcome, n) => n && metrics.pollerItems.inc({ source: 'otlp', outcome }, n),
          errors: (reason, n = 1) => metrics.pollerErrors.inc({ source: 'otlp', reason }, n),
        },
        onError: (reason, detail) => logger.warn({ source: 'otlp', reason, upstream: { message: detail.slice(0, 500) } }, 'tempo poll failed'),
      });
    },
    openapi: {
      operationId: 'ingestOtlpTraces',
      tags: ['ingest'],
      summary: 'OTLP/HTTP traces (JSON or protobuf, gzip); errors are google.rpc.Status per the OTLP specification',
      security: INGEST_SECURITY,
      requestBody: {
        required: true,
        content: {
          'application/json': { schema: { type: 'object', properties: { resourceSpans: { type: 'array', items: { type: 'object' } } } } },
          'application/x-protobuf': { schema: { type: 'string', format: 'binary' } },
        },
      },
      responses: {
        '200': {
          description: 'ExportTraceServiceResponse, with partialSuccess when spans were rejected',
          content: {
            'application/json': { schema: { $ref: '#/components/schemas/ExportTraceServiceResponse' } },
            'application/x-protobuf': { schema: { type: 'string', format: 'binary' } },
          },
        },
        '400': json('RpcStatus', 'google.rpc.Status'),
        '401': problem,
        '413': json('RpcStatus', 'google.rpc.Status'),
        '415': json('RpcStatus', 'google.rpc.Status'),
        '429': json('RpcStatus', 'slow down (Retry-After)'),
        '503': json('RpcStatus', 'unavailable (Retry-After)'),
      },
    },
  },
  {
    name: 'falco',
    descriptor: FALCO_SOURCE,
    path: '/ingest/falco',
    tokenEnv: 'KUBEVIGIL_INGEST_TOKEN_FALCO',
    // Neither Falco's http_output nor Falcosidekick's webhook retries a refused post (both log it and
    // drop the alert); 503 + Retry-After is the generic "try later" a retrying relay understands,
    // where Falcosidekick would count a 429 as the receiver's own rate limit.
    overloadStatus: 503,
    authenticatesActors: false,
    receiver: (ctx) =>
      falcoReceiver({ sink: ctx.sink, maxBodyBytes: ctx.maxBodyBytes, dedupEntries: ctx.dedupEntries, stats: itemStats('falco', ctx.metrics) }),
    openapi: {
      operationId: 'ingestFalco',
      tags: ['ingest'],
      summary:
        "Falco alerts as Falco's http_output (json_output: true) and Falcosidekick's webhook post them: one alert object, an array, or JSON lines; deduplicated by uuid",
      security: INGEST_SECURITY,
      requestBody: {
        required: true,
        content: {
          'application/json': {
            schema: {
              type: 'object',
              required: ['rule', 'priority', 'time'],
              properties: {
                uuid: str,
                rule: str,
                priority: str,
                time: str,
                output: str,
                source: str,
                hostname: str,
                tags: { type: 'array', items: str },
                output_fields: { type: 'object' },
              },
            },
          },
          'application/x-ndjson': { schema: str },
        },
      },
      responses: {
        '200': json('IngestResult', 'accepted (invalid alerts of a batch are reported, not refused)'),
        '400': problem,
        '401': problem,
        '413': problem,
        '415': problem,
        '503': problem,
      },
    },
  },
];

/** Runs each event's source stage (identity facts, permission use) over a batch. */
export function learnFrom(events: readonly SourceEvent[], ctx: LearnContext): void {
  for (const ev of events) SOURCE_REGISTRY.get(ev.source)?.learn?.(ev, ctx);
}

/** The registered sources, by name. */
export const SOURCE_REGISTRY: ReadonlyMap<string, Source> = new Map(SOURCE_LIST.map((s) => [s.name, s]));

/** Every source's schema and decoder, by name (detection, rule tests, replay). */
export const SOURCES: ReadonlyMap<string, SourceDescriptor> = new Map(SOURCE_LIST.map((s) => [s.name, s.descriptor]));
