/**
 * POST /slack/interactions: the incident message's buttons (Acknowledge, Resolve, Assign to me,
 * Mute actor for 24 h). Slack signs each request with the app's signing secret
 * (https://docs.slack.dev/authentication/verifying-requests-from-slack): the raw body is checked
 * before anything is parsed, and an old timestamp is refused so a captured request cannot be
 * replayed. The click is answered with 200 at once (Slack gives up after 3 s); the command then
 * runs, its result reaches Slack through the normal incident path (the notifier edits the message),
 * a thread line says who did what, and a failure goes back to the clicking user alone through the
 * payload's `response_url` (https://docs.slack.dev/interactivity/handling-user-interaction).
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import type { WebClient } from '@slack/web-api';
import { z } from 'zod';
import { sendProblem } from '../../../platform/http.js';
import type { Incident, IncidentStatus } from '../../../correlator/incident.js';
import { InvalidTransitionError } from '../../../correlator/incidents.js';
import { SILENCE_LIMITS, type Silence } from '../../../correlator/silences.js';
import { describeIssues } from '../../api/schemas.js';
import type { IncidentCommands } from '../../correlate.js';
import type { Logger } from '../../logging.js';
import type { Silences } from '../../silences.js';
import type { IncidentStore } from '../../store/store.js';
import { escapeClipped } from './escape.js';
import { ACTION_IDS, incidentUrl } from './format.js';

/** What the route needs. */
export interface SlackInteractionDeps {
  /** The app's signing secret; without it the route answers 404 naming the setting. */
  signingSecret?: string;
  store: IncidentStore;
  /** Lifecycle commands; absent without the api role. */
  commands?: IncidentCommands;
  /** Silences (for Mute); absent without them. */
  silences?: Silences;
  /** The bot's Web API client, for the thread line; absent without SLACK_BOT_TOKEN. */
  slack?: WebClient;
  /** The configured Slack API URL: a `response_url` on its origin is accepted besides hooks.slack.com (a proxy, a stand-in). */
  slackApiUrl?: string;
  apiBaseUrl?: string;
  logger: Logger;
  /** Wall-clock ms (Slack's timestamps are real time). */
  now?: () => number;
}

/** Requests older (or further in the future) than this are refused, as Slack advises. */
export const MAX_SKEW_MS = 5 * 60_000;
const MUTE_MS = 24 * 3_600_000;
const ID_RE = /^inc_[0-9a-f]{20}$/;
/** A block_actions payload carries the whole message (up to ~12k characters of blocks, escaped twice). */
const BODY_LIMIT = '1mb';
export const SLACK_SIGNING_SETTING = 'KUBEVIGIL_SLACK_SIGNING_SECRET';

/** The fields of a block_actions payload kubevigil reads (https://docs.slack.dev/reference/interaction-payloads/block_actions-payload). */
const BlockActions = z.object({
  type: z.string().max(64),
  user: z.object({ id: z.string().min(1).max(64), username: z.string().max(200).optional(), name: z.string().max(200).optional() }),
  actions: z.array(z.object({ action_id: z.string().max(255), value: z.string().max(2000).optional() })).min(1),
  container: z.object({ channel_id: z.string().max(64).optional(), message_ts: z.string().max(64).optional() }).optional(),
  channel: z.object({ id: z.string().max(64) }).optional(),
  response_url: z
    .url({ protocol: /^https?$/ })
    .max(2000)
    .optional(),
});
type BlockActions = z.infer<typeof BlockActions>;
const Form = z.object({ payload: BlockActions });

/** `v0=` + hex HMAC-SHA256 of `v0:<timestamp>:<body>`, keyed with the signing secret. */
export function slackSignature(secret: string, timestamp: string, body: Buffer | string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:`).update(body).digest('hex')}`;
}

type Verdict = { ok: true } | { ok: false; status: 400 | 401; detail: string };

/** Checks the timestamp and the signature of a request from Slack. */
export function verifySlackRequest(secret: string, timestamp: string | undefined, signature: string | undefined, body: Buffer, now: number): Verdict {
  if (timestamp === undefined || !/^\d{1,12}$/.test(timestamp))
    return { ok: false, status: 401, detail: 'X-Slack-Request-Timestamp is missing or not a number of seconds: the request is not from Slack' };
  if (Math.abs(now - Number(timestamp) * 1000) > MAX_SKEW_MS)
    return {
      ok: false,
      status: 400,
      detail: "X-Slack-Request-Timestamp is more than 5 minutes from this server's clock: a replayed request, or a clock out of sync (run NTP)",
    };
  if (signature === undefined || !/^v0=[0-9a-f]{64}$/.test(signature))
    return { ok: false, status: 401, detail: 'X-Slack-Signature is missing or not v0=<64 hex digits>: the request is not from Slack' };
  const expected = Buffer.from(slackSignature(secret, timestamp, body).slice(3), 'hex');
  // Both are 32 bytes here (the pattern above), as timingSafeEqual needs.
  if (!timingSafeEqual(Buffer.from(signature.slice(3), 'hex'), expected))
    return {
      ok: false,
      status: 401,
      detail: `X-Slack-Signature does not match: the request is not from Slack, or ${SLACK_SIGNING_SETTING} is not this app's signing secret`,
    };
  return { ok: true };
}

const header = (req: Request, name: string): string | undefined => {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
};

/** The router serving POST /slack/interactions. */
export function slackInteractions(deps: SlackInteractionDeps): Router {
  const r = express.Router();
  const now = deps.now ?? Date.now;
  const secret = deps.signingSecret;
  if (!secret) {
    r.all('/slack/interactions', (_req, res) =>
      sendProblem(res, 404, 'Not Found', `Slack interactions are not served: set ${SLACK_SIGNING_SETTING} to the Slack app's signing secret`),
    );
    return r;
  }
  // Raw bytes: the signature covers the body exactly as sent, so nothing may parse it first.
  r.post('/slack/interactions', express.raw({ type: () => true, limit: BODY_LIMIT }), (req: Request, res: Response) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const verdict = verifySlackRequest(secret, header(req, 'x-slack-request-timestamp'), header(req, 'x-slack-signature'), body, now());
    if (!verdict.ok) return sendProblem(res, verdict.status, verdict.status === 401 ? 'Unauthorized' : 'Bad Request', verdict.detail);
    const raw = new URLSearchParams(body.toString('utf8')).get('payload');
    if (raw === null) return sendProblem(res, 400, 'Bad Request', 'payload: missing; Slack sends application/x-www-form-urlencoded with a payload field');
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      return sendProblem(res, 400, 'Bad Request', 'payload: not valid JSON');
    }
    // Wrapped, so every issue is named from `payload` (payload.actions.0.action_id).
    const parsed = Form.safeParse({ payload: json });
    if (!parsed.success) return sendProblem(res, 400, 'Bad Request', describeIssues(parsed.error, { payload: json }));
    res.status(200).end();
    // Other interaction types (shortcuts, modals) are not kubevigil's: acknowledged and ignored.
    if (parsed.data.payload.type !== 'block_actions') return;
    void act(deps, parsed.data.payload).catch((err: unknown) => deps.logger.error({ err }, 'Slack interaction failed'));
  });
  return r;
}

/** Who clicked, as notes and silences name them. */
export function slackActor(user: BlockActions['user']): string {
  return `slack:${user.username ?? user.name ?? user.id} (${user.id})`.slice(0, 200);
}

class Refused extends Error {}

async function act(deps: SlackInteractionDeps, p: BlockActions): Promise<void> {
  const action = p.actions[0]!;
  const by = slackActor(p.user);
  let line: string;
  try {
    const id = action.value ?? '';
    if (!ID_RE.test(id)) throw new Refused(`This button does not name a kubevigil incident (${escapeClipped(id, 40) || 'no value'}).`);
    if (!deps.commands) throw new Refused('This kubevigil process does not run the api role: incident commands are not available here.');
    switch (action.action_id) {
      case ACTION_IDS.ack:
        await transition(deps.commands, id, 'acknowledged', by);
        line = `:eyes: Acknowledged by ${by}`;
        break;
      case ACTION_IDS.resolve:
        await transition(deps.commands, id, 'resolved', by);
        line = `:white_check_mark: Resolved by ${by}`;
        break;
      case ACTION_IDS.assign: {
        const inc = await deps.commands.assign(id, by);
        if (!inc) throw new Refused(unknownIncident(id));
        if (inc.status === 'resolved') throw new Refused(`Incident ${id} is resolved: there is nothing to assign.`);
        line = `:bust_in_silhouette: Assigned to ${by}`;
        break;
      }
      case ACTION_IDS.mute: {
        const until = await mute(deps, id, by);
        line = `:mute: ${by} muted the actor for 24 h (until ${new Date(until).toISOString()}): its new signals are stored but open nothing`;
        break;
      }
      default:
        throw new Refused(`kubevigil does not know the action ${escapeClipped(action.action_id, 60)}.`);
    }
  } catch (e) {
    if (!(e instanceof Refused)) throw e;
    await ephemeral(deps, p, e.message);
    return;
  }
  await threadLine(deps, p, line);
}

const unknownIncident = (id: string) => `kubevigil has no incident ${id} (retention may have removed it). Nothing was changed.`;

async function transition(commands: IncidentCommands, id: string, to: IncidentStatus, by: string): Promise<Incident> {
  try {
    const inc = await commands.transition(id, to, `${to === 'resolved' ? 'resolved' : 'acknowledged'} from Slack`, by);
    if (!inc) throw new Refused(unknownIncident(id));
    return inc;
  } catch (e) {
    if (e instanceof InvalidTransitionError) throw new Refused(`Incident ${id}: ${e.message}. Nothing was changed.`);
    throw e;
  }
}

/** A 24-hour silence of the incident's actor; resolves to when it ends. */
async function mute(deps: SlackInteractionDeps, id: string, by: string): Promise<number> {
  if (!deps.silences) throw new Refused('Silences are not available in this kubevigil process (distributed mode needs REDIS_URL).');
  const inc = await deps.store.get(id);
  if (!inc) throw new Refused(unknownIncident(id));
  const actor = inc.actor.key;
  if (actor.length > SILENCE_LIMITS.value) throw new Refused(`The actor of ${id} is too long for a silence; create one through the API.`);
  const start = deps.silences.now();
  const where = deps.apiBaseUrl ? incidentUrl(deps.apiBaseUrl, id) : id;
  const silence: Silence = {
    id: randomUUID(),
    matchers: [{ name: 'actor', value: actor, isRegex: false, isEqual: true }],
    startsAt: start,
    endsAt: start + MUTE_MS,
    createdBy: by.slice(0, SILENCE_LIMITS.createdBy),
    comment: `Muted from Slack for 24 h, from incident ${where}`.slice(0, SILENCE_LIMITS.comment),
    updatedAt: start,
  };
  if (!(await deps.silences.create(silence))) throw new Refused('There are too many silences that have not expired; expire some first.');
  return silence.endsAt;
}

/** A reply in the incident message's thread; best effort (the message itself is edited by the notifier). */
async function threadLine(deps: SlackInteractionDeps, p: BlockActions, line: string): Promise<void> {
  const channel = p.container?.channel_id ?? p.channel?.id;
  const ts = p.container?.message_ts;
  if (!deps.slack || !channel || !ts) return;
  try {
    await deps.slack.apiCall('chat.postMessage', {
      channel,
      thread_ts: ts,
      text: escapeClipped(line, 1000),
      parse: 'none',
      link_names: false,
      unfurl_links: false,
      unfurl_media: false,
    });
  } catch (err) {
    deps.logger.warn({ err, channel }, 'Slack interaction: the thread line could not be posted');
  }
}

/** A message only the clicking user sees, through the payload's response_url. */
async function ephemeral(deps: SlackInteractionDeps, p: BlockActions, text: string): Promise<void> {
  const url = p.response_url;
  if (!url || !responseUrlAllowed(url, deps.slackApiUrl)) {
    deps.logger.warn({ text }, 'Slack interaction refused, and the payload has no usable response_url to say so');
    return;
  }
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify({ response_type: 'ephemeral', replace_original: false, text: escapeClipped(text, 1000) }),
      signal: AbortSignal.timeout(10_000),
    });
    await res.body?.cancel();
    if (!res.ok) deps.logger.warn({ status: res.status }, 'Slack interaction: response_url refused the answer');
  } catch (err) {
    deps.logger.warn({ err }, 'Slack interaction: response_url could not be reached');
  }
}

/** Slack's hooks host, or the origin of the configured Slack API URL: nothing else is posted to (no request forgery through a payload). */
export function responseUrlAllowed(url: string, slackApiUrl?: string): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  if (u.protocol === 'https:' && u.hostname === 'hooks.slack.com') return true;
  if (!slackApiUrl) return false;
  return u.origin === new URL(slackApiUrl).origin;
}
