/**
 * The incident REST API: list with filters and cursor pagination, one incident with its timeline,
 * root cause and remediations, lifecycle changes (acknowledge, resolve), a server-sent-event stream
 * of changes, and the OpenAPI document. Errors are `application/problem+json`.
 */
import express, { type Request, type Response, type Router } from 'express';
import { sendProblem } from '../../platform/http.js';
import { INCIDENT_STATUSES, type IncidentStatus } from '../../correlator/incident.js';
import { InvalidTransitionError } from '../../correlator/incidents.js';
import { isSeverity, SEVERITIES } from '../../correlator/severity.js';
import type { IncidentCommands } from '../correlate.js';
import { MAX_LIST_LIMIT, StoreQueryError, type IncidentQuery, type IncidentStore } from '../store/store.js';
import { apiIncident, apiIncidentSummary, apiSignal, describeIssues, IncidentPatch } from './schemas.js';
import type { IncidentStream } from './stream.js';

/** What the incident routes need. */
export interface IncidentApiDeps {
  store: IncidentStore;
  commands: IncidentCommands;
  stream: IncidentStream;
}

const ID_RE = /^inc_[0-9a-f]{20}$/;

function parseQuery(req: Request): IncidentQuery | string {
  const q = req.query;
  const str = (k: string): string | undefined => (typeof q[k] === 'string' ? (q[k] as string) : undefined);
  for (const k of Object.keys(q))
    if (!['status', 'severity', 'actor', 'namespace', 'since', 'limit', 'cursor'].includes(k))
      return `unknown query parameter "${k}"; use status, severity, actor, namespace, since, limit or cursor`;
  const out: IncidentQuery = { limit: 50 };
  const status = str('status');
  if (status !== undefined) {
    const list = status.split(',').filter(Boolean);
    const bad = list.find((s) => !INCIDENT_STATUSES.includes(s as IncidentStatus));
    if (bad !== undefined || list.length === 0) return `status (${JSON.stringify(status)}) must be a comma-separated list of ${INCIDENT_STATUSES.join(', ')}`;
    out.status = list as IncidentStatus[];
  }
  const severity = str('severity');
  if (severity !== undefined) {
    if (!isSeverity(severity)) return `severity (${JSON.stringify(severity)}) is the minimum severity, one of ${SEVERITIES.join(', ')}`;
    out.minSeverity = severity;
  }
  const actor = str('actor');
  if (actor !== undefined) out.actor = actor;
  const ns = str('namespace');
  if (ns !== undefined) out.namespace = ns;
  const since = str('since');
  if (since !== undefined) {
    const t = /^\d+$/.test(since) ? Number(since) : Date.parse(since);
    if (!Number.isFinite(t)) return `since (${JSON.stringify(since)}) must be an RFC 3339 time (2026-11-29T12:00:00Z) or milliseconds since the epoch`;
    out.since = t;
  }
  const limit = str('limit');
  if (limit !== undefined) {
    const n = Number(limit);
    if (!Number.isInteger(n) || n < 1 || n > MAX_LIST_LIMIT) return `limit (${JSON.stringify(limit)}) must be an integer from 1 to ${MAX_LIST_LIMIT}`;
    out.limit = n;
  }
  const cursor = str('cursor');
  if (cursor !== undefined) out.cursor = cursor;
  return out;
}

/** The router for `/api/v1/incidents…` and `/api/v1/openapi.json`. */
export function incidentApi(deps: IncidentApiDeps): Router {
  const r = express.Router();

  r.get('/api/v1/incidents/stream', (req, res) => deps.stream.attach(req, res));

  r.get('/api/v1/incidents', async (req: Request, res: Response) => {
    const q = parseQuery(req);
    if (typeof q === 'string') return sendProblem(res, 400, 'Bad Request', q);
    try {
      const page = await deps.store.list(q);
      res.json({ items: page.items.map(apiIncidentSummary), nextCursor: page.nextCursor ?? null });
    } catch (e) {
      if (e instanceof StoreQueryError) return sendProblem(res, 400, 'Bad Request', e.message);
      throw e;
    }
  });

  r.get('/api/v1/incidents/:id', async (req: Request, res: Response) => {
    const id = String(req.params.id);
    if (!ID_RE.test(id))
      return sendProblem(res, 404, 'Not Found', `no incident ${JSON.stringify(id.slice(0, 80))}; ids look like inc_ followed by 20 hex digits`);
    const inc = await deps.store.get(id);
    if (!inc) return sendProblem(res, 404, 'Not Found', `no incident ${id}`);
    res.json(apiIncident(inc));
  });

  r.get('/api/v1/incidents/:id/signals', async (req: Request, res: Response) => {
    const id = String(req.params.id);
    const inc = ID_RE.test(id) ? await deps.store.get(id) : undefined;
    if (!inc) return sendProblem(res, 404, 'Not Found', `no incident ${JSON.stringify(id.slice(0, 80))}`);
    const limit = typeof req.query.limit === 'string' ? Number(req.query.limit) : 500;
    if (!Number.isInteger(limit) || limit < 1 || limit > 5000) return sendProblem(res, 400, 'Bad Request', 'limit must be an integer from 1 to 5000');
    res.json({ items: (await deps.store.signals(id, limit)).map(apiSignal) });
  });

  r.patch('/api/v1/incidents/:id', express.json({ limit: '64kb', type: () => true }), async (req: Request, res: Response) => {
    const id = String(req.params.id);
    const parsed = IncidentPatch.safeParse(req.body);
    if (!parsed.success) return sendProblem(res, 400, 'Bad Request', describeIssues(parsed.error, req.body));
    const { status, note, by } = parsed.data;
    if (!ID_RE.test(id)) return sendProblem(res, 404, 'Not Found', `no incident ${JSON.stringify(id.slice(0, 80))}`);
    try {
      const next = await deps.commands.transition(id, status, note ?? '', by);
      if (!next) return sendProblem(res, 404, 'Not Found', `no incident ${id}`);
      res.json(apiIncident(next));
    } catch (e) {
      if (e instanceof InvalidTransitionError) return sendProblem(res, 409, 'Conflict', e.message);
      throw e;
    }
  });

  // Malformed PATCH bodies (express.json errors) become problems, not stack traces.
  r.use('/api/v1/incidents', (err: unknown, _req: Request, res: Response, next: (e?: unknown) => void) => {
    const e = err as { type?: string; message?: string };
    if (e?.type === 'entity.parse.failed') return sendProblem(res, 400, 'Bad Request', `the body is not valid JSON: ${e.message ?? ''}`.trim());
    if (e?.type === 'entity.too.large') return sendProblem(res, 413, 'Content Too Large', 'PATCH bodies are limited to 64 KiB');
    next(err);
  });
  return r;
}
