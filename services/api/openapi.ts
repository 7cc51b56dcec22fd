/** The OpenAPI 3.1 description of kubevigil's HTTP API, served at `/api/v1/openapi.json`. */
import { INCIDENT_STATUSES } from '../../correlator/incident.js';
import { SEVERITIES } from '../../correlator/severity.js';
import { SIGNAL_KINDS } from '../../correlator/signal-kinds.js';

const problem = { $ref: '#/components/responses/Problem' };
const str = { type: 'string' };
const strList = { type: 'array', items: str };
const ms = { type: 'integer', description: 'milliseconds since the epoch' };

/** Builds the document (a plain object, so tests can walk it). */
export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: { title: 'kubevigil', version: '1', description: 'Security event correlation for Kubernetes: ingest, signals and incidents.' },
    components: {
      securitySchemes: {
        ingestToken: { type: 'http', scheme: 'bearer', description: 'KUBEVIGIL_INGEST_TOKEN' },
        apiToken: { type: 'http', scheme: 'bearer', description: 'KUBEVIGIL_API_TOKEN' },
      },
      responses: {
        Problem: { description: 'An RFC 9457 problem: what is wrong and how to fix it', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } },
      },
      schemas: {
        Problem: { type: 'object', required: ['title', 'status', 'detail'], properties: { type: str, title: str, status: { type: 'integer' }, detail: str } },
        Severity: { type: 'string', enum: [...SEVERITIES] },
        Status: { type: 'string', enum: [...INCIDENT_STATUSES] },
        Actor: { type: 'object', required: ['key', 'type', 'name'], properties: { key: { type: 'string', examples: ['sa:frontend/frontend'] }, type: { type: 'string', enum: ['serviceaccount', 'user', 'node', 'anonymous', 'pod', 'ip'] }, name: str, namespace: str } },
        Target: { type: 'object', properties: { namespace: str, resource: str, subresource: str, apiGroup: str, name: str, verb: str } },
        Signal: {
          type: 'object',
          required: ['id', 'source', 'kind', 'severity', 'title', 'eventTime', 'observedTime', 'actor', 'target', 'outcome', 'entities', 'mitre', 'rule', 'matched', 'attributes', 'excerpt'],
          properties: {
            id: str,
            source: { type: 'string', enum: ['k8s-audit', 'alertmanager', 'loki', 'otlp'] },
            kind: { type: 'string', enum: Object.keys(SIGNAL_KINDS) },
            severity: { $ref: '#/components/schemas/Severity' },
            title: str,
            eventTime: ms,
            observedTime: ms,
            actor: { $ref: '#/components/schemas/Actor' },
            target: { $ref: '#/components/schemas/Target' },
            outcome: { type: 'string', enum: ['allowed', 'denied', 'unknown'] },
            entities: strList,
            mitre: strList,
            rule: { type: 'object', properties: { id: str, title: str } },
            matched: { type: 'array', items: { type: 'object', properties: { field: str, op: str, expected: {}, actual: {} } } },
            attributes: { type: 'object', additionalProperties: str },
            excerpt: { type: 'object' },
          },
        },
        Remediation: {
          type: 'object',
          required: ['kind', 'title', 'rationale', 'risk', 'commands', 'manifests'],
          properties: { kind: str, title: str, rationale: str, risk: str, commands: strList, manifests: { type: 'array', items: { type: 'string', description: 'a complete YAML manifest' } } },
        },
        RootCause: {
          type: 'object',
          required: ['summary', 'evidence', 'confidence', 'actor'],
          properties: {
            summary: str,
            confidence: { type: 'number', minimum: 0, maximum: 1 },
            actor: str,
            evidence: { type: 'array', items: { type: 'object', properties: { type: str, entity: str, detail: str, signalIds: strList } } },
            enablingBinding: { type: 'object', properties: { kind: str, name: str, namespace: str, roleKind: str, roleName: str } },
          },
        },
        Incident: {
          type: 'object',
          required: ['id', 'title', 'status', 'severity', 'actor', 'entities', 'firstSeen', 'lastSeen', 'rootCause', 'remediations', 'timeline', 'mitre'],
          properties: {
            id: { type: 'string', pattern: '^inc_[0-9a-f]{20}$' },
            title: str,
            status: { $ref: '#/components/schemas/Status' },
            severity: { $ref: '#/components/schemas/Severity' },
            actor: { $ref: '#/components/schemas/Actor' },
            entities: strList,
            blastRadius: { type: 'object', properties: { namespaces: strList, workloads: strList, secrets: strList, bindings: strList, policies: strList } },
            firstSeen: ms,
            lastSeen: ms,
            createdAt: ms,
            updatedAt: ms,
            version: { type: 'integer' },
            timeline: { type: 'array', items: { type: 'object', properties: { signalId: str, time: ms, actor: str, source: str, kind: str, severity: str, title: str, outcome: str, ruleId: str, target: { $ref: '#/components/schemas/Target' } } } },
            signalCount: { type: 'integer' },
            countsByKind: { type: 'object', additionalProperties: { type: 'integer' } },
            sources: strList,
            correlations: { type: 'array', items: { type: 'object', properties: { ruleId: str, title: str, signalIds: strList, time: ms } } },
            rules: strList,
            mitre: strList,
            rootCause: { $ref: '#/components/schemas/RootCause' },
            remediations: { type: 'array', items: { $ref: '#/components/schemas/Remediation' } },
            notes: { type: 'array', items: { type: 'object', properties: { time: ms, status: str, note: str, by: str } } },
            resolvedAt: ms,
            resolution: { type: 'string', enum: ['manual', 'quiet', 'lifetime', 'merged'] },
            mergedInto: str,
          },
        },
      },
    },
    paths: {
      '/healthz': { get: { summary: 'Alive', responses: { '200': { description: 'alive' } } } },
      '/readyz': { get: { summary: 'Ready to take traffic', responses: { '200': { description: 'ready' }, '503': problem } } },
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { '200': { description: 'text exposition format' } } } },
      '/ingest/k8s-audit': {
        post: {
          summary: 'Audit webhook: an EventList, an Event, an array, or JSON lines (gzip allowed)',
          security: [{ ingestToken: [] }],
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object' } }, 'application/x-ndjson': { schema: str } } },
          responses: {
            '200': { description: 'accepted (invalid events are reported, not refused)', content: { 'application/json': { schema: { type: 'object', properties: { accepted: { type: 'integer' }, duplicates: { type: 'integer' }, invalid: { type: 'integer' }, signals: { type: 'integer' }, errors: { type: 'array', items: { type: 'object', properties: { index: { type: 'integer' }, auditID: str, reason: str } } } } } } } },
            '400': problem,
            '401': problem,
            '413': problem,
            '415': problem,
            '503': problem,
          },
        },
      },
      '/ingest/alertmanager': {
        post: {
          summary: 'Alertmanager webhook (payload version 4; Grafana version 1 tolerated); deduplicated per (fingerprint, startsAt, status)',
          security: [{ ingestToken: [] }],
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['alerts'], properties: { version: str, status: str, alerts: { type: 'array', items: { type: 'object' } } } } } } },
          responses: { '200': { description: '{accepted, duplicates, invalid, signals, errors?, warnings?}' }, '400': problem, '401': problem, '413': problem, '415': problem, '503': problem },
        },
      },
      '/loki/api/v1/push': {
        post: {
          summary: "Loki push API (JSON, gzip JSON, snappy-compressed protobuf PushRequest; X-Scope-OrgID) so Promtail, Alloy or Fluent Bit can send a copy of their streams",
          security: [{ ingestToken: [] }],
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', properties: { streams: { type: 'array', items: { type: 'object' } } } } }, 'application/x-protobuf': { schema: { type: 'string', format: 'binary' } } } },
          responses: { '204': { description: 'accepted' }, '400': { description: 'bad input (plain text, as Loki answers)' }, '401': problem, '413': { description: 'too large' }, '415': { description: 'unsupported content type' }, '429': { description: 'slow down (Retry-After)' } },
        },
      },
      '/v1/traces': {
        post: {
          summary: 'OTLP/HTTP traces (JSON or protobuf, gzip); errors are google.rpc.Status per the OTLP specification',
          security: [{ ingestToken: [] }],
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', properties: { resourceSpans: { type: 'array', items: { type: 'object' } } } } }, 'application/x-protobuf': { schema: { type: 'string', format: 'binary' } } } },
          responses: { '200': { description: 'ExportTraceServiceResponse, with partialSuccess when spans were rejected' }, '400': { description: 'google.rpc.Status' }, '401': problem, '413': { description: 'google.rpc.Status' }, '415': { description: 'google.rpc.Status' }, '429': { description: 'Retry-After' }, '503': { description: 'Retry-After' } },
        },
      },
      '/api/v1/signals': {
        get: {
          summary: 'Recent signals, newest first',
          security: [{ apiToken: [] }],
          parameters: [
            { name: 'kind', in: 'query', schema: str },
            { name: 'actor', in: 'query', schema: str },
            { name: 'severity', in: 'query', schema: { $ref: '#/components/schemas/Severity' }, description: 'minimum' },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
          ],
          responses: { '200': { description: 'signals', content: { 'application/json': { schema: { type: 'object', properties: { items: { type: 'array', items: { $ref: '#/components/schemas/Signal' } } } } } } }, '400': problem, '401': problem },
        },
      },
      '/api/v1/rules': { get: { summary: 'Loaded detection and correlation rules', security: [{ apiToken: [] }], responses: { '200': { description: 'rules' }, '401': problem } } },
      '/api/v1/incidents': {
        get: {
          summary: 'Incidents, most recently active first, with cursor pagination',
          security: [{ apiToken: [] }],
          parameters: [
            { name: 'status', in: 'query', schema: str, description: 'comma-separated: open, acknowledged, resolved' },
            { name: 'severity', in: 'query', schema: { $ref: '#/components/schemas/Severity' }, description: 'minimum severity' },
            { name: 'actor', in: 'query', schema: str, description: 'entity key, e.g. sa:frontend/frontend' },
            { name: 'namespace', in: 'query', schema: str, description: 'a namespace in the blast radius' },
            { name: 'since', in: 'query', schema: str, description: 'RFC 3339 time or ms since the epoch; lastSeen at or after it' },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
            { name: 'cursor', in: 'query', schema: str, description: 'nextCursor of the previous page' },
          ],
          responses: {
            '200': { description: 'a page (items leave out timeline, remediations and notes)', content: { 'application/json': { schema: { type: 'object', required: ['items', 'nextCursor'], properties: { items: { type: 'array', items: { type: 'object' } }, nextCursor: { type: ['string', 'null'] } } } } } },
            '400': problem,
            '401': problem,
          },
        },
      },
      '/api/v1/incidents/stream': { get: { summary: 'Server-sent events: one `incident` event per incident version', security: [{ apiToken: [] }], responses: { '200': { description: 'text/event-stream' }, '401': problem, '503': problem } } },
      '/api/v1/incidents/{id}': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: str }],
        get: { summary: 'One incident: timeline, root cause, remediations', security: [{ apiToken: [] }], responses: { '200': { description: 'the incident', content: { 'application/json': { schema: { $ref: '#/components/schemas/Incident' } } } }, '401': problem, '404': problem } },
        patch: {
          summary: 'Acknowledge or resolve, with a note',
          security: [{ apiToken: [] }],
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['acknowledged', 'resolved'] }, note: { type: 'string', maxLength: 2000 }, by: { type: 'string', maxLength: 200 } }, additionalProperties: false } } } },
          responses: { '200': { description: 'the updated incident', content: { 'application/json': { schema: { $ref: '#/components/schemas/Incident' } } } }, '400': problem, '401': problem, '404': problem, '409': problem },
        },
      },
      '/api/v1/incidents/{id}/signals': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: str }],
        get: { summary: "The incident's full signals, by event time", security: [{ apiToken: [] }], responses: { '200': { description: 'signals' }, '401': problem, '404': problem } },
      },
      '/api/v1/openapi.json': { get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1' } } } },
    },
  };
}
