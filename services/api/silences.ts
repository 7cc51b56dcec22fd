/**
 * The silence routes (Alertmanager API v2 semantics): create, list, get and expire silences, and
 * mark an incident benign (a silence of its actor and rules). Writes need the write token (the
 * `/api` auth in http/app.ts lets the read token GET only).
 */
import { randomUUID } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import { sendProblem } from '../../platform/http.js';
import { SILENCE_LIMITS, type Silence, type SilenceMatcher } from '../../correlator/silences.js';
import type { Silences } from '../silences.js';
import type { IncidentStore } from '../store/store.js';
import { apiSilence, BenignRequest, describeIssues, PostableSilence } from './schemas.js';

export interface SilenceApiDeps {
  silences: Silences;
  store: IncidentStore;
}

const SILENCE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const INCIDENT_ID = /^inc_[0-9a-f]{20}$/;
const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const MAX_DURATION_MS = 365 * 86_400_000;
const DEFAULT_BENIGN_MS = 7 * 86_400_000;
const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function tooMany(res: Response): void {
  sendProblem(
    res,
    409,
    'Conflict',
    `there are already ${SILENCE_LIMITS.unexpired} silences that have not expired; expire some (DELETE /api/v1/silences/{id}) before creating more`,
  );
}

export function silenceApi(deps: SilenceApiDeps): Router {
  const r = express.Router();
  const { silences } = deps;
  const body = express.json({ limit: '64kb', type: () => true });

  r.post('/api/v1/silences', body, async (req: Request, res: Response) => {
    const parsed = PostableSilence.safeParse(req.body);
    if (!parsed.success) return sendProblem(res, 400, 'Bad Request', describeIssues(parsed.error, req.body));
    const now = silences.now();
    const p = parsed.data;
    const silence: Silence = {
      id: randomUUID(),
      matchers: p.matchers.map((m) => ({ name: m.name, value: m.value, isRegex: m.isRegex, isEqual: m.isEqual ?? true })),
      startsAt: p.startsAt === undefined ? now : Date.parse(p.startsAt),
      endsAt: Date.parse(p.endsAt),
      createdBy: p.createdBy,
      comment: p.comment,
      updatedAt: now,
    };
    if (!(await silences.create(silence))) return tooMany(res);
    res.json({ silenceID: silence.id });
  });

  r.get('/api/v1/silences', async (req: Request, res: Response) => {
    const unknown = Object.keys(req.query)[0];
    if (unknown !== undefined)
      return sendProblem(res, 400, 'Bad Request', `unknown query parameter "${unknown.slice(0, 64)}"; GET /api/v1/silences takes none`);
    const now = silences.now();
    res.json({ items: (await silences.list()).map((s) => apiSilence(s, now)) });
  });

  r.get('/api/v1/silences/:id', async (req: Request, res: Response) => {
    const id = String(req.params.id);
    const s = SILENCE_ID.test(id) ? await silences.get(id) : undefined;
    if (!s) return sendProblem(res, 404, 'Not Found', `no silence ${JSON.stringify(id.slice(0, 80))}; ids are UUIDs, as POST /api/v1/silences returns them`);
    res.json(apiSilence(s, silences.now()));
  });

  r.delete('/api/v1/silences/:id', async (req: Request, res: Response) => {
    const id = String(req.params.id);
    const fromFile = silences.fileSilence(id);
    if (fromFile)
      return sendProblem(
        res,
        409,
        'Conflict',
        `silence ${id} comes from the silences file ${fromFile.file}; remove it from that file and reload (SIGHUP or POST /-/reload)`,
      );
    const s = SILENCE_ID.test(id) ? await silences.expire(id) : undefined;
    if (!s) return sendProblem(res, 404, 'Not Found', `no silence ${JSON.stringify(id.slice(0, 80))}; ids are UUIDs, as POST /api/v1/silences returns them`);
    res.json(apiSilence(s, silences.now()));
  });

  r.post('/api/v1/incidents/:id/benign', body, async (req: Request, res: Response) => {
    const parsed = BenignRequest.safeParse(req.body ?? {});
    if (!parsed.success) return sendProblem(res, 400, 'Bad Request', describeIssues(parsed.error, req.body));
    const id = String(req.params.id);
    const inc = INCIDENT_ID.test(id) ? await deps.store.get(id) : undefined;
    if (!inc) return sendProblem(res, 404, 'Not Found', `no incident ${JSON.stringify(id.slice(0, 80))}`);
    const d = parsed.data.duration;
    const ms = d === undefined ? DEFAULT_BENIGN_MS : Number(d.slice(0, -1)) * UNIT_MS[d.at(-1) as keyof typeof UNIT_MS];
    if (ms > MAX_DURATION_MS) return sendProblem(res, 400, 'Bad Request', `duration (${JSON.stringify(d)}) must be at most 365d`);
    // Every rule it names (its timeline is bounded; `rules` is not). Correlation ids in it match no
    // signal, but correlations are built from the detection rules' signals, which it silences.
    const rules = [...inc.rules].sort();
    const matchers: SilenceMatcher[] = [{ name: 'actor', value: inc.actor.key, isRegex: false, isEqual: true }];
    if (rules.length) {
      const value = rules.map(escapeRegex).join('|');
      if (value.length > SILENCE_LIMITS.value)
        return sendProblem(
          res,
          409,
          'Conflict',
          `the incident's ${rules.length} rules do not fit one matcher (${SILENCE_LIMITS.value} characters); create silences for its rules with POST /api/v1/silences`,
        );
      matchers.push({ name: 'rule', value, isRegex: true, isEqual: true });
    }
    const now = silences.now();
    const silence: Silence = {
      id: randomUUID(),
      matchers,
      startsAt: now,
      endsAt: now + ms,
      createdBy: parsed.data.createdBy ?? 'kubevigil (mark benign)',
      comment: `Marked benign: incident ${inc.id} (/api/v1/incidents/${inc.id})${parsed.data.comment ? `: ${parsed.data.comment}` : ''}`,
      updatedAt: now,
    };
    if (!(await silences.create(silence))) return tooMany(res);
    res.json({ silenceID: silence.id });
  });

  // Malformed bodies (express.json errors) become problems, not stack traces.
  r.use(['/api/v1/silences', '/api/v1/incidents'], (err: unknown, _req: Request, res: Response, next: (e?: unknown) => void) => {
    const e = err as { type?: string; message?: string };
    if (e?.type === 'entity.parse.failed') return sendProblem(res, 400, 'Bad Request', `the body is not valid JSON: ${e.message ?? ''}`.trim());
    if (e?.type === 'entity.too.large') return sendProblem(res, 413, 'Content Too Large', 'bodies are limited to 64 KiB');
    next(err);
  });
  return r;
}
