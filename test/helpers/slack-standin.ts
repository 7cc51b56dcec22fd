/**
 * A local stand-in for the Slack Web API (chat.postMessage, chat.update) and an incoming webhook,
 * reached through SLACK_API_URL / SLACK_WEBHOOK_URL. It enforces the documented contract, read
 * from the real API reference in test/fixtures/real/slack: bearer auth, required arguments, the
 * argument groups (text, blocks…), Block Kit limits, `ok:false` answers with HTTP 200 using only
 * the error codes each method documents, 429 with Retry-After when told to, and chat.update only
 * of a message it knows. It records every call, so tests can check what a channel would show.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readReal } from './fixtures.js';

interface MethodRef {
  args: Record<string, { required?: boolean }>;
  errors: Record<string, string>;
  arg_groups?: { args: string[]; mutually_exclusive?: boolean; required?: boolean }[];
}

/** The methods served, with their reference (arguments, documented errors) from the fixtures. */
const METHODS: Record<string, MethodRef> = {
  'chat.postMessage': JSON.parse(readReal('slack/slack-api-ref.chat.postMessage.json')) as MethodRef,
  'chat.update': JSON.parse(readReal('slack/slack-api-ref.chat.update.json')) as MethodRef,
};
const SAMPLES = JSON.parse(readReal('slack/web-api-responses.samples.json')) as Record<string, { ok: boolean; error?: string }>;

/** Errors every Web API method may return (Slack's common errors), which the per-method lists leave out. */
const COMMON_ERRORS = new Set(['invalid_auth', 'not_authed', 'ratelimited', 'fatal_error', 'internal_error', 'service_unavailable', 'invalid_arguments']);

/** Block limits from the Block Kit reference. */
export const STANDIN_LIMITS = {
  blocks: 50,
  headerText: 150,
  sectionText: 3000,
  fields: 10,
  fieldText: 2000,
  contextElements: 10,
  blockId: 255,
  totalBlockText: 12_000,
  updateText: 4000,
};

/** One request as the stand-in saw it. */
export interface StandinCall {
  /** `chat.postMessage`, `chat.update` or `webhook`. */
  method: string;
  args: Record<string, unknown>;
  /** The parsed blocks, when valid JSON. */
  blocks?: unknown[];
  /** Arguments the method's reference does not list. */
  unknownArgs: string[];
  status: number;
  /** The `error` of an ok:false answer, `ratelimited` for a 429. */
  error?: string;
  ts?: string;
  /** The stand-in's clock at the call (a test's fake clock when given). */
  at: number;
}

/** A message as the channel would show it now. */
export interface StandinMessage {
  channel: string;
  ts: string;
  threadTs?: string;
  text: string;
  blocks: unknown[];
  edits: number;
}

/** What the next matching calls get instead of normal handling. */
interface Injection {
  method?: string;
  channel?: string;
  times: number;
  respond: { kind: 'ratelimit'; retryAfter: number } | { kind: 'error'; error: string } | { kind: 'http'; status: number };
}

/** Options of {@link startSlackStandin}. */
export interface StandinOptions {
  /** The bot token it accepts. */
  token?: string;
  /** Channel names (without #) to ids; the bot is a member of all unless listed in `notMember`. */
  channels?: Record<string, string>;
  archived?: string[];
  notMember?: string[];
  /** Timestamps calls (for pacing checks); `Date.now` by default. */
  now?: () => number;
}

/** A running stand-in. */
export interface SlackStandin {
  /** Base for SLACK_API_URL (ends with `/`). */
  apiUrl: string;
  /** An incoming-webhook URL of the first channel. */
  webhookUrl: string;
  token: string;
  calls: StandinCall[];
  /** Top-level messages and replies, by `${channel id}/${ts}`. */
  messages: Map<string, StandinMessage>;
  /** The next `times` calls matching get HTTP 429 with `Retry-After: retryAfter`. */
  rateLimit(o: { method?: string; channel?: string; times: number; retryAfter: number }): void;
  /** The next `times` matching calls get `{ok:false, error}` (HTTP 200), or for webhooks the error's HTTP status. */
  failNext(o: { method?: string; channel?: string; times?: number; error: string }): void;
  /** The next `times` matching calls get this HTTP status (a 5xx from a load balancer). */
  httpStatusNext(o: { method?: string; channel?: string; times?: number; status: number }): void;
  /** Resolves a channel name or id to the id, or undefined. */
  channelId(nameOrId: string): string | undefined;
  /** A response_url as a block_actions payload carries it; posts to it are recorded as method `response_url`. */
  responseUrl: string;
  /** Resolves with the first recorded call (answered) that matches, now or when it comes. */
  waitFor(match: (c: StandinCall) => boolean): Promise<StandinCall>;
  /** Stand-in failures (a bug here, or an error a method does not document); tests expect none. */
  faults: string[];
  /** Calls that were accepted (ok), optionally of one method. */
  ok(method?: string): StandinCall[];
  close(): Promise<void>;
}

class Refusal extends Error {
  constructor(
    readonly error: string,
    readonly status = 200,
  ) {
    super(error);
  }
}

type Json = Record<string, unknown>;

function textLength(o: unknown): number {
  return o && typeof o === 'object' && typeof (o as Json).text === 'string' ? ((o as Json).text as string).length : 0;
}

/** Checks a text object; returns its length. */
function checkText(o: unknown, types: string[], max: number, where: string): number {
  if (!o || typeof o !== 'object') throw new Refusal('invalid_blocks');
  const t = o as Json;
  if (!types.includes(String(t.type))) throw new Refusal('invalid_blocks', 200);
  if (typeof t.text !== 'string' || t.text.length < 1 || t.text.length > max) throw Object.assign(new Refusal('invalid_blocks'), { where });
  for (const k of Object.keys(t)) if (!['type', 'text', 'emoji', 'verbatim'].includes(k)) throw new Refusal('invalid_blocks');
  if (t.emoji !== undefined && typeof t.emoji !== 'boolean') throw new Refusal('invalid_blocks');
  if (t.verbatim !== undefined && typeof t.verbatim !== 'boolean') throw new Refusal('invalid_blocks');
  if (t.type === 'plain_text' && t.verbatim !== undefined) throw new Refusal('invalid_blocks');
  if (t.type === 'mrkdwn' && t.emoji !== undefined) throw new Refusal('invalid_blocks');
  return t.text.length;
}

/** Validates blocks against the Block Kit limits; returns the total text length. Throws a {@link Refusal}. */
export function validateBlocks(blocks: unknown): number {
  if (!Array.isArray(blocks)) throw new Refusal('invalid_blocks_format');
  if (blocks.length > STANDIN_LIMITS.blocks) throw new Refusal('invalid_blocks');
  let total = 0;
  for (const b of blocks) {
    if (!b || typeof b !== 'object') throw new Refusal('invalid_blocks_format');
    const block = b as Json;
    if (block.block_id !== undefined && (typeof block.block_id !== 'string' || block.block_id.length > STANDIN_LIMITS.blockId))
      throw new Refusal('invalid_blocks');
    switch (block.type) {
      case 'header':
        total += checkText(block.text, ['plain_text'], STANDIN_LIMITS.headerText, 'header');
        break;
      case 'section': {
        if (block.text === undefined && block.fields === undefined) throw new Refusal('invalid_blocks');
        if (block.text !== undefined) total += checkText(block.text, ['plain_text', 'mrkdwn'], STANDIN_LIMITS.sectionText, 'section');
        if (block.fields !== undefined) {
          if (!Array.isArray(block.fields) || block.fields.length < 1 || block.fields.length > STANDIN_LIMITS.fields) throw new Refusal('invalid_blocks');
          for (const f of block.fields) total += checkText(f, ['plain_text', 'mrkdwn'], STANDIN_LIMITS.fieldText, 'field');
        }
        break;
      }
      case 'context': {
        if (!Array.isArray(block.elements) || block.elements.length < 1 || block.elements.length > STANDIN_LIMITS.contextElements)
          throw new Refusal('invalid_blocks');
        for (const e of block.elements) {
          if ((e as Json)?.type === 'image') {
            if (typeof (e as Json).image_url !== 'string' || typeof (e as Json).alt_text !== 'string') throw new Refusal('invalid_blocks');
          } else total += checkText(e, ['plain_text', 'mrkdwn'], STANDIN_LIMITS.sectionText, 'context');
        }
        break;
      }
      case 'divider':
        break;
      case 'actions':
        if (!Array.isArray(block.elements) || block.elements.length < 1 || block.elements.length > 25) throw new Refusal('invalid_blocks');
        for (const e of block.elements) {
          const el = e as Json;
          // Buttons, per the button element reference: plain_text of at most 75, action_id 255, value 2000.
          if (el?.type === 'button') {
            checkText(el.text, ['plain_text'], 75, 'button');
            if (el.action_id !== undefined && (typeof el.action_id !== 'string' || el.action_id.length > 255)) throw new Refusal('invalid_blocks');
            if (el.value !== undefined && (typeof el.value !== 'string' || el.value.length > 2000)) throw new Refusal('invalid_blocks');
            if (el.style !== undefined && el.style !== 'primary' && el.style !== 'danger') throw new Refusal('invalid_blocks');
          }
          total += textLength(el?.text);
        }
        break;
      default:
        throw new Refusal('invalid_blocks');
    }
  }
  return total;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Starts the stand-in on a free loopback port. */
export async function startSlackStandin(o: StandinOptions = {}): Promise<SlackStandin> {
  const token = o.token ?? 'xoxb-1234567890-0987654321-standinStandinStandin';
  const channels = new Map(Object.entries(o.channels ?? { security: 'C0SECURITY', 'sec-oncall': 'C0ONCALL', payments: 'C0PAYMENTS' }));
  const archived = new Set(o.archived ?? []);
  const notMember = new Set(o.notMember ?? []);
  const now = o.now ?? (() => Date.now());
  const calls: StandinCall[] = [];
  const messages = new Map<string, StandinMessage>();
  const injections: Injection[] = [];
  const faults: string[] = [];
  let seq = 0;
  const hookChannel = [...channels.values()][0] ?? 'C0SECURITY';
  const hookPath = `/services/T0STANDIN/B0STANDIN/${'x'.repeat(24)}`;
  const responsePath = '/actions/T0STANDIN/1234567890123/standinResponseUrl';
  const waiters: { match: (c: StandinCall) => boolean; resolve: (c: StandinCall) => void }[] = [];
  const done = new WeakSet<StandinCall>();
  const answered = (call: StandinCall) => {
    done.add(call);
    for (const w of [...waiters])
      if (w.match(call)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(call);
      }
  };

  const channelId = (c: string): string | undefined => {
    const name = c.replace(/^#/, '');
    if (channels.has(name)) return channels.get(name);
    return [...channels.values()].includes(c) ? c : undefined;
  };

  const injected = (method: string, channel: string | undefined): Injection['respond'] | undefined => {
    const i = injections.findIndex((x) => (x.method === undefined || x.method === method) && (x.channel === undefined || channelId(x.channel) === channel));
    if (i < 0) return undefined;
    const inj = injections[i]!;
    if (--inj.times <= 0) injections.splice(i, 1);
    return inj.respond;
  };

  const handleApi = (method: string, req: IncomingMessage, raw: string, call: StandinCall): Json => {
    const ref = METHODS[method];
    if (!ref) throw new Refusal('unknown_method');
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
    let args: Json;
    if (type === 'application/x-www-form-urlencoded') args = Object.fromEntries(new URLSearchParams(raw));
    else if (type === 'application/json') {
      try {
        args = JSON.parse(raw) as Json;
      } catch {
        throw new Refusal('invalid_json');
      }
    } else if (type === '') throw new Refusal('missing_post_type');
    else throw new Refusal('invalid_post_type');
    call.args = args;
    const auth = req.headers.authorization;
    const given = auth?.startsWith('Bearer ') ? auth.slice(7) : typeof args.token === 'string' ? args.token : undefined;
    // JSON bodies must carry the token in the header (Slack ignores a token field in JSON).
    if (given === undefined || (type === 'application/json' && !auth)) throw new Refusal('not_authed');
    if (given !== token) throw new Refusal('invalid_auth');
    call.unknownArgs = Object.keys(args).filter((k) => k !== 'token' && !(k in ref.args));
    for (const [name, spec] of Object.entries(ref.args)) {
      if (spec.required && (args[name] === undefined || args[name] === ''))
        throw new Refusal(name === 'channel' ? 'channel_not_found' : name === 'ts' ? 'message_not_found' : 'invalid_arguments');
    }
    const [contentGroup, exclusiveGroup] = ref.arg_groups ?? [];
    if (contentGroup && !contentGroup.args.some((a) => args[a] !== undefined && args[a] !== '')) throw new Refusal('no_text');
    if (exclusiveGroup?.mutually_exclusive && exclusiveGroup.args.filter((a) => args[a] !== undefined).length > 1) throw new Refusal('markdown_text_conflict');
    const channel = channelId(String(args.channel));
    if (!channel) throw new Refusal('channel_not_found');
    const name = [...channels].find(([, id]) => id === channel)?.[0] ?? channel;
    if (archived.has(name)) throw new Refusal(method === 'chat.update' ? 'is_inactive' : 'is_archived');
    if (notMember.has(name)) throw new Refusal(method === 'chat.update' ? 'channel_not_found' : 'not_in_channel');
    let blocks: unknown[] = [];
    let total = 0;
    if (args.blocks !== undefined) {
      let parsed: unknown = args.blocks;
      if (typeof parsed === 'string') {
        try {
          parsed = JSON.parse(parsed);
        } catch {
          throw new Refusal('invalid_blocks_format');
        }
      }
      total = validateBlocks(parsed);
      blocks = parsed as unknown[];
      call.blocks = blocks;
    }
    const text = typeof args.text === 'string' ? args.text : '';
    if (method === 'chat.update') {
      if (text.length > STANDIN_LIMITS.updateText || total > STANDIN_LIMITS.totalBlockText) throw new Refusal('msg_too_long');
      const key = `${channel}/${String(args.ts)}`;
      const m = messages.get(key);
      if (!m) throw new Refusal('message_not_found');
      Object.assign(m, { text, blocks, edits: m.edits + 1 });
      call.ts = m.ts;
      return { ok: true, channel, ts: m.ts, text, message: { text, user: 'U0STANDINBOT', blocks } };
    }
    if (total > STANDIN_LIMITS.totalBlockText) throw new Refusal('msg_blocks_too_long');
    let threadTs: string | undefined;
    if (args.thread_ts !== undefined) {
      const parent = messages.get(`${channel}/${String(args.thread_ts)}`);
      if (!parent || parent.threadTs !== undefined) throw new Refusal('cannot_reply_to_message');
      threadTs = parent.ts;
    }
    const ts = `${Math.floor(now() / 1000)}.${String(++seq).padStart(6, '0')}`;
    messages.set(`${channel}/${ts}`, { channel, ts, ...(threadTs ? { threadTs } : {}), text, blocks, edits: 0 });
    call.ts = ts;
    return { ok: true, channel, ts, message: { text, username: 'kubevigil', bot_id: 'B0STANDIN', type: 'message', subtype: 'bot_message', ts, blocks } };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const raw = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://standin');
    const isHook = url.pathname === hookPath || url.pathname.startsWith('/services/');
    const method = isHook ? 'webhook' : url.pathname.replace(/^\/api\//, '');
    const call: StandinCall = { method, args: {}, unknownArgs: [], status: 200, at: now() };
    calls.push(call);
    const send = (status: number, body: string, headers: Record<string, string> = {}) => {
      call.status = status;
      res.writeHead(status, { 'content-type': isHook ? 'text/html' : 'application/json; charset=utf-8', ...headers });
      res.end(body);
      answered(call);
    };
    if (url.pathname === responsePath) {
      // A response_url takes JSON (text, response_type, replace_original…) and answers {"ok":true}.
      call.method = 'response_url';
      try {
        call.args = JSON.parse(raw) as Json;
      } catch {
        call.error = 'invalid_payload';
        return send(400, JSON.stringify({ ok: false, error: 'invalid_payload' }));
      }
      return send(200, JSON.stringify({ ok: true }));
    }
    if (req.method !== 'POST') return send(405, isHook ? 'invalid_payload' : JSON.stringify({ ok: false, error: 'invalid_post_type' }));
    let channelArg: string | undefined;
    if (isHook) channelArg = hookChannel;
    else {
      const peek = (req.headers['content-type'] ?? '').startsWith('application/json')
        ? ((): Json => {
            try {
              return JSON.parse(raw) as Json;
            } catch {
              return {};
            }
          })()
        : Object.fromEntries(new URLSearchParams(raw));
      channelArg = typeof peek.channel === 'string' ? channelId(peek.channel) : undefined;
    }
    const inj = injected(method, channelArg);
    if (inj?.kind === 'ratelimit') {
      call.error = 'ratelimited';
      // The 429 body, as Slack sends it (web-api-responses.samples.json).
      return send(429, isHook ? 'rate_limited' : JSON.stringify({ ok: false, error: SAMPLES.rate_limited_http_429?.error ?? 'ratelimited' }), {
        'retry-after': String(inj.retryAfter),
      });
    }
    if (inj?.kind === 'http') return send(inj.status, '<html>upstream error</html>');
    if (isHook) return handleHook(raw, call, send, inj);
    try {
      if (inj?.kind === 'error') throw new Refusal(inj.error);
      const body = handleApi(method, req, raw, call);
      send(200, JSON.stringify(body));
    } catch (e) {
      if (!(e instanceof Refusal)) throw e;
      const documented =
        COMMON_ERRORS.has(e.error) || (METHODS[method] && e.error in METHODS[method].errors) || ['unknown_method', 'invalid_json'].includes(e.error);
      if (!documented) throw new Error(`stand-in bug: ${method} does not document error ${e.error}`, { cause: e });
      call.error = e.error;
      // Slack answers API errors with HTTP 200 and ok:false.
      send(200, JSON.stringify({ ok: false, error: e.error }));
    }
  };

  /** An incoming webhook: plain-text "ok", or an HTTP status with the error code as the body. */
  const handleHook = (raw: string, call: StandinCall, send: (s: number, b: string) => void, inj: Injection['respond'] | undefined): void => {
    const fail = (status: number, error: string) => {
      call.error = error;
      send(status, error);
    };
    if (inj?.kind === 'error') return fail(inj.error === 'channel_not_found' ? 404 : inj.error === 'channel_is_archived' ? 410 : 400, inj.error);
    let payload: Json;
    try {
      payload = JSON.parse(raw) as Json;
      call.args = payload;
    } catch {
      return fail(400, 'invalid_payload');
    }
    if (typeof payload.text !== 'string' && payload.blocks === undefined) return fail(400, 'no_text');
    let blocks: unknown[] = [];
    if (payload.blocks !== undefined) {
      try {
        const total = validateBlocks(payload.blocks);
        if (total > STANDIN_LIMITS.totalBlockText) return fail(400, 'invalid_blocks');
        blocks = payload.blocks as unknown[];
        call.blocks = blocks;
      } catch (e) {
        return fail(400, e instanceof Refusal ? e.error : 'invalid_payload');
      }
    }
    const ts = `${Math.floor(now() / 1000)}.${String(++seq).padStart(6, '0')}`;
    messages.set(`${hookChannel}/${ts}`, { channel: hookChannel, ts, text: String(payload.text ?? ''), blocks, edits: 0 });
    call.ts = ts;
    send(200, 'ok');
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      faults.push(String(err));
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    apiUrl: `${base}/api/`,
    webhookUrl: `${base}${hookPath}`,
    responseUrl: `${base}${responsePath}`,
    waitFor: (match) => {
      const seen = calls.find((c) => done.has(c) && match(c));
      return seen ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ match, resolve }));
    },
    token,
    calls,
    messages,
    rateLimit: ({ method, channel, times, retryAfter }) =>
      void injections.push({ ...(method ? { method } : {}), ...(channel ? { channel } : {}), times, respond: { kind: 'ratelimit', retryAfter } }),
    failNext: ({ method, channel, times = 1, error }) =>
      void injections.push({ ...(method ? { method } : {}), ...(channel ? { channel } : {}), times, respond: { kind: 'error', error } }),
    httpStatusNext: ({ method, channel, times = 1, status }) =>
      void injections.push({ ...(method ? { method } : {}), ...(channel ? { channel } : {}), times, respond: { kind: 'http', status } }),
    channelId,
    faults,
    ok: (method) => calls.filter((c) => c.status === 200 && c.error === undefined && (method === undefined || c.method === method)),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
