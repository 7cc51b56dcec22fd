/**
 * The OpenAPI 3.1 description of kubevigil's HTTP API, served at `/api/v1/openapi.json`. Component
 * schemas are generated from the zod schemas in schemas.ts, which the handlers and tests use too.
 */
import { z } from 'zod';
import { SEVERITIES } from '../../correlator/severity.js';
import { SOURCE_LIST } from '../sources.js';
import { registry } from './schemas.js';

type Json = Record<string, unknown>;

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });
const json = (schema: Json, description: string) => ({ description, content: { 'application/json': { schema } } });
const problem = { $ref: '#/components/responses/Problem' };
const str = { type: 'string' };

/** Who may call an operation: nobody needs a token, the ingest token (or the source's own), or an API token. */
const PUBLIC: Json[] = [];
const READ: Json[] = [{ apiToken: [] }, { apiReadToken: [] }];
const WRITE: Json[] = [{ apiToken: [] }];

/** Problem answers every authenticated operation may give. */
const authProblems = { '401': problem };
/** What a write with a JSON body may answer besides its success: bad body, auth, read token (403), conflict, too large. */
const writeProblems = { '400': problem, ...authProblems, '403': problem, '409': problem, '413': problem };

/** The component schemas, generated from the zod registry (each without its own `$schema`/`$id`). */
function componentSchemas(): Record<string, Json> {
  const { schemas } = z.toJSONSchema(registry, { target: 'draft-2020-12', metadata: registry, uri: (id) => `#/components/schemas/${id}` });
  return Object.fromEntries(
    Object.entries(schemas).map(([id, s]) => {
      const { $schema: _s, $id: _i, ...rest } = s as Json;
      return [id, rest];
    }),
  );
}

/** Builds the document (a plain object, so tests can walk it). */
export function openApiDocument(): Json {
  return {
    openapi: '3.1.0',
    info: {
      title: 'kubevigil',
      version: '1',
      description: 'Security event correlation for Kubernetes: ingest audit events, alerts, mesh logs and traces; read signals and incidents.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: '/', description: 'this kubevigil' }],
    tags: [
      { name: 'health', description: 'Liveness, readiness and metrics' },
      { name: 'ingest', description: 'What the cluster sends: audit webhook, Alertmanager webhook, Loki push, OTLP traces' },
      { name: 'incidents', description: 'Incidents: one per attack, with root cause and remediations' },
      { name: 'signals', description: 'Single suspicious events, and the rules that find them' },
      { name: 'silences', description: 'Silences (Alertmanager semantics): matched signals are kept and counted but open, escalate and notify nothing' },
      { name: 'slack', description: "The Slack app's interactivity endpoint: the incident message's buttons" },
    ],
    components: {
      securitySchemes: {
        ingestToken: { type: 'http', scheme: 'bearer', description: 'KUBEVIGIL_INGEST_TOKEN, or the source’s own KUBEVIGIL_<SOURCE>_INGEST_TOKEN' },
        apiToken: { type: 'http', scheme: 'bearer', description: 'KUBEVIGIL_API_TOKEN: read and write' },
        apiReadToken: { type: 'http', scheme: 'bearer', description: 'KUBEVIGIL_API_READ_TOKEN: GET only' },
        metricsToken: { type: 'http', scheme: 'bearer', description: 'KUBEVIGIL_METRICS_TOKEN: /metrics only' },
      },
      responses: {
        Problem: { description: 'An RFC 9457 problem: what is wrong and how to fix it', content: { 'application/problem+json': { schema: ref('Problem') } } },
      },
      schemas: componentSchemas(),
    },
    paths: {
      '/healthz': {
        get: { operationId: 'getHealth', tags: ['health'], summary: 'Alive', security: PUBLIC, responses: { '200': json(ref('Health'), 'alive') } },
      },
      '/readyz': {
        get: {
          operationId: 'getReadiness',
          tags: ['health'],
          summary: 'Ready to take traffic',
          security: PUBLIC,
          responses: { '200': json(ref('Health'), 'ready'), '503': problem },
        },
      },
      '/metrics': {
        get: {
          operationId: 'getMetrics',
          tags: ['health'],
          summary: 'Prometheus metrics (text exposition format)',
          description:
            'Open while no token is configured (loopback development); once the API or /metrics has a token, the metrics, API read or API token is required: the metrics tell which actions are detected.',
          security: [...PUBLIC, { metricsToken: [] }, ...READ],
          responses: { '200': { description: 'Prometheus text format 0.0.4', content: { 'text/plain': { schema: str } } }, ...authProblems },
        },
      },
      '/-/reload': {
        post: {
          operationId: 'reload',
          tags: ['health'],
          summary: 'Reload the rules (as SIGHUP does), validated first',
          description: 'With any problem nothing changes: 400 lists every problem, and the running rules stay. Reloads this process only.',
          security: WRITE,
          responses: {
            '200': json(ref('ReloadResult'), 'reloaded'),
            '400': { description: 'refused', content: { 'application/problem+json': { schema: ref('ReloadProblem') } } },
            ...authProblems,
            '403': problem,
          },
        },
      },
      ...Object.fromEntries(SOURCE_LIST.map((source) => [source.path, { post: source.openapi }])),
      '/api/v1/signals': {
        get: {
          operationId: 'listSignals',
          tags: ['signals'],
          summary: 'Recent signals, newest first',
          security: READ,
          parameters: [
            { name: 'kind', in: 'query', schema: str },
            { name: 'actor', in: 'query', schema: str, description: 'entity key, e.g. sa:frontend/frontend' },
            { name: 'severity', in: 'query', schema: ref('Severity'), description: 'minimum' },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
          ],
          responses: { '200': json(ref('SignalPage'), 'signals'), '400': problem, ...authProblems },
        },
      },
      '/api/v1/rules': {
        get: {
          operationId: 'listRules',
          tags: ['signals'],
          summary: 'Loaded detection and correlation rules',
          security: READ,
          responses: { '200': json(ref('RuleList'), 'rules'), ...authProblems },
        },
      },
      '/api/v1/system': {
        get: {
          operationId: 'getSystem',
          tags: ['health'],
          summary: 'The system view of the process that answers: readiness, version, roles, ingest and signal rates, bus lag, inventory, budgets',
          description:
            'Rates are per second over the last minute, from the counters /metrics exposes, sampled every 5 s. Every source is listed, at 0 where nothing arrived. Each process answers for itself.',
          security: READ,
          responses: { '200': json(ref('SystemStatus'), 'the system status'), ...authProblems },
        },
      },
      '/api/v1/incidents': {
        get: {
          operationId: 'listIncidents',
          tags: ['incidents'],
          summary: 'Incidents, most recently active first, with cursor pagination',
          security: READ,
          parameters: [
            { name: 'status', in: 'query', schema: str, description: 'comma-separated: open, acknowledged, resolved' },
            { name: 'severity', in: 'query', schema: { type: 'string', enum: [...SEVERITIES] }, description: 'minimum severity' },
            { name: 'actor', in: 'query', schema: str, description: 'entity key, e.g. sa:frontend/frontend' },
            { name: 'namespace', in: 'query', schema: str, description: 'a namespace in the blast radius' },
            { name: 'since', in: 'query', schema: str, description: 'RFC 3339 time or ms since the epoch; lastSeen at or after it' },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
            { name: 'cursor', in: 'query', schema: str, description: 'nextCursor of the previous page' },
          ],
          responses: { '200': json(ref('IncidentPage'), 'a page (items leave out timeline, remediations and notes)'), '400': problem, ...authProblems },
        },
      },
      '/api/v1/incidents/stream': {
        get: {
          operationId: 'streamIncidents',
          tags: ['incidents'],
          summary:
            'Server-sent events: one `incident` event per incident version (the incident without its timeline), with `id: <incident>:<version>`. A client that reconnects with `Last-Event-ID` first receives every incident that changed after that version, then live events.',
          security: READ,
          parameters: [{ name: 'Last-Event-ID', in: 'header', required: false, schema: str, description: 'the id of the last event received' }],
          responses: { '200': { description: 'an event stream', content: { 'text/event-stream': { schema: str } } }, ...authProblems, '503': problem },
        },
      },
      '/api/v1/incidents/{id}': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: str }],
        get: {
          operationId: 'getIncident',
          tags: ['incidents'],
          summary: 'One incident: timeline, root cause, remediations',
          security: READ,
          responses: { '200': json(ref('Incident'), 'the incident'), ...authProblems, '404': problem },
        },
        patch: {
          operationId: 'updateIncident',
          tags: ['incidents'],
          summary: 'Acknowledge or resolve, with a note',
          security: WRITE,
          requestBody: { required: true, content: { 'application/json': { schema: ref('IncidentPatch') } } },
          responses: {
            '200': json(ref('Incident'), 'the updated incident'),
            ...writeProblems,
            '404': problem,
          },
        },
      },
      '/api/v1/incidents/{id}/signals': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: str }],
        get: {
          operationId: 'listIncidentSignals',
          tags: ['incidents'],
          summary: "The incident's full signals, by event time",
          security: READ,
          parameters: [{ name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 5000, default: 500 } }],
          responses: { '200': json(ref('SignalPage'), 'signals'), '400': problem, ...authProblems, '404': problem },
        },
      },
      '/api/v1/incidents/{id}/benign': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: str }],
        post: {
          operationId: 'markIncidentBenign',
          tags: ['silences'],
          summary: 'Mark benign: silence the incident’s actor and rules (actor=, rule=~) for a duration (default 7d)',
          security: WRITE,
          requestBody: { required: false, content: { 'application/json': { schema: ref('BenignRequest') } } },
          responses: {
            '200': json(ref('SilenceCreated'), 'the silence created'),
            ...writeProblems,
            '404': problem,
          },
        },
      },
      '/api/v1/silences': {
        get: {
          operationId: 'listSilences',
          tags: ['silences'],
          summary: 'Every silence, active first, then pending, then expired (the last 1000 expired, for 30 days)',
          security: READ,
          responses: { '200': json(ref('SilenceList'), 'silences'), '400': problem, ...authProblems },
        },
        post: {
          operationId: 'createSilence',
          tags: ['silences'],
          summary: 'Create a silence',
          security: WRITE,
          requestBody: { required: true, content: { 'application/json': { schema: ref('PostableSilence') } } },
          responses: {
            '200': json(ref('SilenceCreated'), 'the id of the silence'),
            ...writeProblems,
          },
        },
      },
      '/api/v1/silences/{id}': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: str }],
        get: {
          operationId: 'getSilence',
          tags: ['silences'],
          summary: 'One silence',
          security: READ,
          responses: { '200': json(ref('GettableSilence'), 'the silence'), ...authProblems, '404': problem },
        },
        delete: {
          operationId: 'expireSilence',
          tags: ['silences'],
          summary: 'Expire a silence now (kept, expired, for history)',
          security: WRITE,
          responses: { '200': json(ref('GettableSilence'), 'the expired silence'), ...authProblems, '403': problem, '404': problem, '409': problem },
        },
      },
      '/slack/interactions': {
        post: {
          operationId: 'postSlackInteraction',
          tags: ['slack'],
          summary: 'A click on an incident message button (Slack block_actions)',
          description:
            "Called by Slack, not by people: the app's Interactivity Request URL. Authenticated by Slack's request signature (X-Slack-Signature, HMAC-SHA256 with KUBEVIGIL_SLACK_SIGNING_SECRET over the raw body), not by a token; a timestamp more than 5 minutes off is refused. Answered at once with an empty 200; the command then runs, and a refusal reaches the clicking user through the payload's response_url. 404 while KUBEVIGIL_SLACK_SIGNING_SECRET is unset.",
          security: PUBLIC,
          parameters: [
            {
              name: 'X-Slack-Request-Timestamp',
              in: 'header',
              required: true,
              schema: { type: 'string', pattern: '^[0-9]+$' },
              description: 'seconds since the epoch',
            },
            {
              name: 'X-Slack-Signature',
              in: 'header',
              required: true,
              schema: { type: 'string', pattern: '^v0=[0-9a-f]{64}$' },
              description: 'v0=<hex HMAC-SHA256 of "v0:<timestamp>:<body>">',
            },
          ],
          requestBody: {
            required: true,
            content: {
              'application/x-www-form-urlencoded': {
                schema: { type: 'object', required: ['payload'], properties: { payload: { type: 'string', description: 'the block_actions payload, JSON' } } },
              },
            },
          },
          responses: {
            '200': { description: 'received; the command runs after the answer' },
            '400': problem,
            '401': problem,
            '404': problem,
            '413': problem,
          },
        },
      },
      '/api/v1/openapi.json': {
        get: {
          operationId: 'getOpenApi',
          tags: ['health'],
          summary: 'This document',
          security: PUBLIC,
          responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } } },
        },
      },
    },
  };
}
