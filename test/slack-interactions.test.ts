/**
 * The incident message's buttons end to end: kubevigil runs in-process (ingest, correlator, api and
 * the notifier posting to the Slack stand-in); clicks arrive at POST /slack/interactions as Slack
 * sends them (a signed, form-encoded block_actions payload), and the outcome is read back from the
 * API and from what the stand-in's channel shows: the message edited in place, a thread line, an
 * ephemeral answer through response_url. Forged, replayed and malformed requests change nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attackEvents, SEED_SCENARIO } from '../connectors/k8s-audit/scenario.js';
import type { Incident } from '../correlator/incident.js';
import { loadConfig } from '../services/config.js';
import { createLogger } from '../services/logging.js';
import { serve, type Running } from '../services/main.js';
import { ACTION_IDS, formatCompact, formatIncident, type Block } from '../services/notifier/slack/format.js';
import { responseUrlAllowed, slackSignature } from '../services/notifier/slack/interactions.js';
import { makeIncident } from '../services/store/store.contract.js';
import { startSlackStandin, validateBlocks, type SlackStandin, type StandinCall } from './helpers/slack-standin.js';

const SECRET = '8f742231b10e8888abcd990000a85a5e';
const API = 'https://kubevigil.example.com';
const USER = { id: 'UA8RXUSPL', username: 'jtorrance', name: 'jtorrance', team_id: 'T9TK3CUKW' };
const BY = 'slack:jtorrance (UA8RXUSPL)';

/**
 * A block_actions payload for a button click on a message, shaped as Slack documents it:
 * https://docs.slack.dev/reference/interaction-payloads/block_actions-payload (our own values).
 */
function blockActions(o: { actionId: string; value: string; channel: string; ts: string; responseUrl: string }): Record<string, unknown> {
  return {
    type: 'block_actions',
    team: { id: 'T9TK3CUKW', domain: 'example' },
    user: USER,
    api_app_id: 'AABA1ABCD',
    token: '9s8d9as89d8as9d8as989',
    container: { type: 'message', message_ts: o.ts, channel_id: o.channel, is_ephemeral: false },
    trigger_id: '12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3',
    channel: { id: o.channel, name: 'security' },
    message: { type: 'message', user: 'U0STANDINBOT', ts: o.ts, text: 'HIGH incident' },
    state: { values: {} },
    response_url: o.responseUrl,
    actions: [
      {
        action_id: o.actionId,
        block_id: 'kubevigil_actions_v3',
        text: { type: 'plain_text', text: 'Acknowledge', emoji: false },
        value: o.value,
        type: 'button',
        action_ts: '1548426417.840180',
      },
    ],
  };
}

/** The form body Slack posts, and its signature headers (https://docs.slack.dev/authentication/verifying-requests-from-slack). */
function signed(payload: unknown, o: { secret?: string; at?: number } = {}): { body: string; headers: Record<string, string> } {
  const body = `payload=${encodeURIComponent(JSON.stringify(payload))}`;
  const ts = String(Math.floor((o.at ?? Date.now()) / 1000));
  return {
    body,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': ts,
      'x-slack-signature': slackSignature(o.secret ?? SECRET, ts, body),
    },
  };
}

const actionsOf = (blocks: unknown[] | undefined): string[] =>
  ((blocks ?? []) as Block[]).flatMap((b) => (b.type === 'actions' ? b.elements.map((e) => e.action_id) : []));
const isMessage = (c: StandinCall) =>
  c.status === 200 && c.error === undefined && ((c.method === 'chat.postMessage' && c.args.thread_ts === undefined) || c.method === 'chat.update');

describe('the buttons, as formatted', () => {
  it('fit the Block Kit limits and show only what applies to the state', () => {
    const open = formatIncident(makeIncident('inc_0123456789abcdef0123'), { actions: true, apiBaseUrl: API });
    validateBlocks(open.blocks);
    expect(actionsOf(open.blocks)).toEqual([ACTION_IDS.ack, ACTION_IDS.resolve, ACTION_IDS.assign, ACTION_IDS.mute]);
    const acked = formatIncident(makeIncident('inc_0123456789abcdef0123', { status: 'acknowledged' }), { actions: true });
    expect(actionsOf(acked.blocks)).toEqual([ACTION_IDS.resolve, ACTION_IDS.assign, ACTION_IDS.mute]);
    expect(actionsOf(formatIncident(makeIncident('inc_0123456789abcdef0123', { status: 'resolved' }), { actions: true }).blocks)).toEqual([]);
    expect(actionsOf(formatCompact(makeIncident('inc_0123456789abcdef0123'), { actions: true }).blocks)).toHaveLength(4);
    // Without the option (webhooks, or no signing secret) there are none.
    expect(actionsOf(formatIncident(makeIncident('inc_0123456789abcdef0123')).blocks)).toEqual([]);
  });

  it('keep a huge incident within the block budget', () => {
    const many = makeIncident('inc_0123456789abcdef0123');
    const remediations = Array.from({ length: 60 }, (_, i) => ({ ...many.remediations[0]!, title: `remediation ${i} `.repeat(20) }));
    const m = formatIncident({ ...many, remediations }, { actions: true, apiBaseUrl: API });
    expect(m.blocks.length).toBeLessThanOrEqual(50);
    expect(validateBlocks(m.blocks)).toBeLessThanOrEqual(12_000);
    expect(m.blocks.at(-1)?.type).toBe('actions');
  });

  it('accept response_url only on Slack or the configured API origin', () => {
    expect(responseUrlAllowed('https://hooks.slack.com/actions/T/1/x')).toBe(true);
    expect(responseUrlAllowed('http://hooks.slack.com/actions/T/1/x')).toBe(false);
    expect(responseUrlAllowed('https://169.254.169.254/latest/meta-data')).toBe(false);
    expect(responseUrlAllowed('http://127.0.0.1:9/actions/x', 'http://127.0.0.1:9/api/')).toBe(true);
    expect(responseUrlAllowed('http://127.0.0.1:10/actions/x', 'http://127.0.0.1:9/api/')).toBe(false);
  });
});

describe('POST /slack/interactions', () => {
  let slack: SlackStandin;
  let kv: Running;
  let channel: string;
  let ts: string;
  let incidentId: string;
  const dir = mkdtempSync(join(tmpdir(), 'kv-slack-interactions-'));

  const incident = async (): Promise<Incident> => (await (await fetch(`${kv.url}/api/v1/incidents/${incidentId}`)).json()) as Incident;
  const click = async (actionId: string, o: { value?: string; secret?: string; at?: number } = {}) => {
    const req = signed(blockActions({ actionId, value: o.value ?? incidentId, channel, ts, responseUrl: slack.responseUrl }), o);
    return fetch(`${kv.url}/slack/interactions`, { method: 'POST', ...req });
  };
  /** The message as edited to show this version of the incident. */
  const shown = (version: number) => slack.waitFor((c) => isMessage(c) && JSON.stringify(c.blocks).includes(`version ${version} ·`));
  const threadLine = (text: string) =>
    slack.waitFor((c) => c.method === 'chat.postMessage' && c.args.thread_ts === ts && String(c.args.text).includes(text) && c.error === undefined);
  const silences = async () => ((await (await fetch(`${kv.url}/api/v1/silences`)).json()) as { items: { createdBy: string }[] }).items;

  beforeAll(async () => {
    slack = await startSlackStandin();
    kv = await serve(
      loadConfig({
        KUBEVIGIL_PORT: '0',
        KUBEVIGIL_DATA_DIR: dir,
        SLACK_BOT_TOKEN: slack.token,
        SLACK_CHANNEL: '#security',
        SLACK_API_URL: slack.apiUrl,
        SLACK_MIN_INTERVAL_MS: '0',
        KUBEVIGIL_NOTIFY_GROUP_WAIT_MS: '0',
        KUBEVIGIL_PUBLIC_URL: API,
        KUBEVIGIL_SLACK_SIGNING_SECRET: SECRET,
      }),
      createLogger('silent'),
      { processMetrics: false, sweepSchedule: false },
    );
    const res = await fetch(`${kv.url}/ingest/k8s-audit`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(attackEvents(SEED_SCENARIO)),
    });
    expect(res.status).toBe(200);
    await kv.drained();
    await kv.drained();
    const page = (await (await fetch(`${kv.url}/api/v1/incidents`)).json()) as { items: Incident[] };
    expect(page.items).toHaveLength(1);
    incidentId = page.items[0]!.id;
    const posted = await slack.waitFor((c) => isMessage(c) && c.method === 'chat.postMessage');
    channel = String(posted.args.channel === '#security' ? slack.channelId('#security') : posted.args.channel);
    ts = posted.ts!;
    await shown(page.items[0]!.version);
    expect(actionsOf(slack.messages.get(`${channel}/${ts}`)!.blocks)).toEqual([ACTION_IDS.ack, ACTION_IDS.resolve, ACTION_IDS.assign, ACTION_IDS.mute]);
  });

  afterAll(async () => {
    await kv?.stop();
    await slack?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a forged signature with 401, and nothing changes', async () => {
    const before = await incident();
    const forged = await click(ACTION_IDS.ack, { secret: 'f'.repeat(32) });
    expect(forged.status).toBe(401);
    expect(forged.headers.get('content-type')).toContain('application/problem+json');
    const unsigned = await fetch(`${kv.url}/slack/interactions`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': String(Math.floor(Date.now() / 1000)) },
      body: 'payload=%7B%7D',
    });
    expect(unsigned.status).toBe(401);
    // A body changed after signing no longer matches.
    const req = signed(blockActions({ actionId: ACTION_IDS.resolve, value: incidentId, channel, ts, responseUrl: slack.responseUrl }));
    const tampered = await fetch(`${kv.url}/slack/interactions`, { method: 'POST', headers: req.headers, body: req.body.replace('resolve', 'ack') });
    expect(tampered.status).toBe(401);
    expect(await incident()).toEqual(before);
    expect(await silences()).toEqual([]);
  });

  it('refuses a replayed request 6 minutes old (or 6 minutes ahead) with 400, and nothing changes', async () => {
    const before = await incident();
    const old = await click(ACTION_IDS.resolve, { at: Date.now() - 6 * 60_000 });
    expect(old.status).toBe(400);
    expect(((await old.json()) as { detail: string }).detail).toContain('X-Slack-Request-Timestamp');
    expect((await click(ACTION_IDS.resolve, { at: Date.now() + 6 * 60_000 })).status).toBe(400);
    expect(await incident()).toEqual(before);
  });

  it('refuses a malformed payload with 400 naming the field', async () => {
    const bad = signed({ type: 'block_actions', user: { id: 'U1' }, actions: 'nope' });
    const res = await fetch(`${kv.url}/slack/interactions`, { method: 'POST', ...bad });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/^payload\.actions/);
    const notJson = `payload=${encodeURIComponent('{not json')}`;
    const t = String(Math.floor(Date.now() / 1000));
    const res2 = await fetch(`${kv.url}/slack/interactions`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': t, 'x-slack-signature': slackSignature(SECRET, t, notJson) },
      body: notJson,
    });
    expect(res2.status).toBe(400);
  });

  it('answers an unknown incident with 200 and an ephemeral error through response_url; nothing changes', async () => {
    const before = await incident();
    const res = await click(ACTION_IDS.ack, { value: 'inc_ffffffffffffffffffff' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
    const answer = await slack.waitFor((c) => c.method === 'response_url');
    expect(answer.args).toMatchObject({ response_type: 'ephemeral', replace_original: false });
    expect(String(answer.args.text)).toContain('inc_ffffffffffffffffffff');
    expect(await incident()).toEqual(before);
  });

  it('Assign to me: sets the assignee, edits the message and says so in the thread', async () => {
    const res = await click(ACTION_IDS.assign);
    expect(res.status).toBe(200);
    await threadLine('Assigned to');
    const inc = await incident();
    expect(inc).toMatchObject({ status: 'open', assignee: BY });
    await shown(inc.version);
    expect(JSON.stringify(slack.messages.get(`${channel}/${ts}`)!.blocks)).toContain(`assigned to ${BY}`);
  });

  it('Acknowledge: acknowledged by the Slack user, the message edited in place without the button, a thread line', async () => {
    const edits = slack.messages.get(`${channel}/${ts}`)!.edits;
    expect((await click(ACTION_IDS.ack)).status).toBe(200);
    const line = await threadLine('Acknowledged by');
    expect(line.args.text).toBe(`:eyes: Acknowledged by ${BY}`);
    const inc = await incident();
    expect(inc.status).toBe('acknowledged');
    expect(inc.notes.at(-1)).toMatchObject({ status: 'acknowledged', by: BY });
    await shown(inc.version);
    const message = slack.messages.get(`${channel}/${ts}`)!;
    expect(message.edits).toBeGreaterThan(edits);
    expect(actionsOf(message.blocks)).toEqual([ACTION_IDS.resolve, ACTION_IDS.assign, ACTION_IDS.mute]);
    // Still one message for the incident: edited, not posted again.
    expect(slack.ok('chat.postMessage').filter((c) => c.args.thread_ts === undefined)).toHaveLength(1);
  });

  it('Acknowledge again: refused to the user alone, nothing changes', async () => {
    const before = await incident();
    expect((await click(ACTION_IDS.ack)).status).toBe(200);
    await slack.waitFor((c) => c.method === 'response_url' && String(c.args.text).includes('cannot become acknowledged'));
    expect(await incident()).toEqual(before);
  });

  it('Mute actor for 24 h: a silence of the actor, by the Slack user, linking the incident', async () => {
    const before = Date.now();
    expect((await click(ACTION_IDS.mute)).status).toBe(200);
    await threadLine('muted the actor for 24 h');
    const inc = await incident();
    const list = (await (await fetch(`${kv.url}/api/v1/silences`)).json()) as {
      items: {
        matchers: { name: string; value: string; isRegex: boolean; isEqual: boolean }[];
        startsAt: string;
        endsAt: string;
        createdBy: string;
        comment: string;
        status: { state: string };
      }[];
    };
    expect(list.items).toHaveLength(1);
    const s = list.items[0]!;
    expect(s.matchers).toEqual([{ name: 'actor', value: inc.actor.key, isRegex: false, isEqual: true }]);
    expect(s.createdBy).toBe(BY);
    expect(s.comment).toContain(`${API}/api/v1/incidents/${incidentId}`);
    expect(s.status.state).toBe('active');
    const length = Date.parse(s.endsAt) - Date.parse(s.startsAt);
    expect(length).toBe(24 * 3_600_000);
    expect(Date.parse(s.startsAt)).toBeGreaterThanOrEqual(before - 1000);
  });

  it('Resolve: resolved by the Slack user, the message replaced by the resolved form without buttons', async () => {
    expect((await click(ACTION_IDS.resolve)).status).toBe(200);
    await threadLine('Resolved by');
    const inc = await incident();
    expect(inc).toMatchObject({ status: 'resolved', resolution: 'manual' });
    expect(inc.notes.at(-1)).toMatchObject({ status: 'resolved', by: BY });
    await shown(inc.version);
    const message = slack.messages.get(`${channel}/${ts}`)!;
    expect(actionsOf(message.blocks)).toEqual([]);
    expect(JSON.stringify(message.blocks)).toContain('RESOLVED');
    expect(slack.faults).toEqual([]);
  });
});
