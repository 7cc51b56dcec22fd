/**
 * The notifier against the Slack Web API stand-in (reached through SLACK_API_URL), on a fake clock:
 * the demo attack through the real pipeline is posted once, updated as it grows and resolved; a
 * restart neither repeats nor loses a message; a 429 storm on one channel delays only that channel;
 * Slack's ok:false errors are classified; a burst becomes a digest; attacker text stays inert.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { attackEvents, SEED_SCENARIO, type AttackScenario } from '../connectors/k8s-audit/scenario.js';
import type { Incident, TimelineEntry } from '../correlator/incident.js';
import { topics } from '../services/bus/topics.js';
import { loadConfig } from '../services/config.js';
import { createLogger } from '../services/logging.js';
import { serve } from '../services/main.js';
import { loadNotifierConfig } from '../services/notifier/config.js';
import { ManualScheduler } from '../services/notifier/dispatcher.js';
import { startNotifier, type Notifier } from '../services/notifier/index.js';
import { slackRefKey, type SlackMessageRef } from '../services/notifier/slack/bot.js';
import { MemoryStore } from '../services/store/memory.js';
import { openSqliteStore } from '../services/store/sqlite.js';
import { makeIncident, T0 } from '../services/store/store.contract.js';
import type { IncidentStore } from '../services/store/store.js';
import { readReal } from './helpers/fixtures.js';
import { startSlackStandin, STANDIN_LIMITS, validateBlocks, type SlackStandin, type StandinCall } from './helpers/slack-standin.js';

const API = 'https://kubevigil.example.com';
const OUR_LINK = /<https:\/\/kubevigil\.example\.com\/api\/v1\/incidents[^|<>]*\|[^<>]*>/g;
const dirs: string[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Rig {
  slack: SlackStandin;
  scheduler: ManualScheduler;
  store: IncidentStore;
  registry: Registry;
  notifier: Notifier;
  drain(): Promise<number>;
  restart(store?: IncidentStore): Notifier;
}

async function rig(o: { env?: NodeJS.ProcessEnv; store?: IncidentStore; slack?: SlackStandin; scheduler?: ManualScheduler } = {}): Promise<Rig> {
  const scheduler = o.scheduler ?? new ManualScheduler(T0);
  const slack = o.slack ?? (await startSlackStandin({ now: () => scheduler.now() }));
  if (!o.slack) cleanups.push(() => slack.close());
  const config = loadNotifierConfig({
    SLACK_BOT_TOKEN: slack.token,
    SLACK_CHANNEL: '#security',
    SLACK_API_URL: slack.apiUrl,
    KUBEVIGIL_PUBLIC_URL: API,
    ...o.env,
  });
  let store = o.store ?? new MemoryStore();
  const registry = new Registry();
  const start = (s: IncidentStore) => startNotifier({ config, store: s, logger: createLogger('silent'), registry: new Registry(), scheduler });
  const r: Rig = {
    slack,
    scheduler,
    store,
    registry,
    notifier: startNotifier({ config, store, logger: createLogger('silent'), registry, scheduler }),
    drain: () => r.notifier.dispatcher.runUntilIdle(scheduler),
    restart(next = store) {
      store = next;
      r.store = next;
      r.notifier = start(next);
      return r.notifier;
    },
  };
  cleanups.push(() => r.notifier.stop());
  return r;
}

async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const { values } = await m.get();
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((s, v) => s + v.value, 0);
}

/** Every text a call carried: the fallback `text` and each text object of its blocks. */
function callTexts(c: StandinCall): { type: string; text: string }[] {
  const out: { type: string; text: string }[] = typeof c.args.text === 'string' ? [{ type: 'text', text: c.args.text }] : [];
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if ((o.type === 'mrkdwn' || o.type === 'plain_text') && typeof o.text === 'string') out.push({ type: o.type, text: o.text });
      else Object.values(o).forEach(visit);
    }
  };
  visit(c.blocks ?? []);
  return out;
}

function expectInert(calls: StandinCall[]): void {
  for (const c of calls) {
    for (const t of callTexts(c)) {
      const rest = t.type === 'mrkdwn' ? t.text.replace(OUR_LINK, '') : t.text;
      expect(rest, t.text).not.toMatch(/[<>]/);
      if (t.type === 'mrkdwn') {
        const outside = rest.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
        expect(outside, t.text).not.toMatch(/\*bold\*|!channel|!here|@U123|evil\.example/);
      }
    }
  }
}

const posts = (s: SlackStandin, channel?: string) =>
  s.ok('chat.postMessage').filter((c) => c.args.thread_ts === undefined && (channel === undefined || c.args.channel === channel));
const replies = (s: SlackStandin) => s.ok('chat.postMessage').filter((c) => c.args.thread_ts !== undefined);
const updates = (s: SlackStandin) => s.ok('chat.update');
const headerOf = (c: StandinCall) => (c.blocks?.[0] as { text?: { text?: string } } | undefined)?.text?.text ?? '';

/** Consecutive requests to one channel (by name or id) are at least `ms` apart on the fake clock. */
function expectPaced(slack: SlackStandin, calls: StandinCall[], ms: number): void {
  const byChannel = new Map<string, number[]>();
  for (const c of calls) {
    const id = slack.channelId(String(c.args.channel)) ?? String(c.args.channel);
    byChannel.set(id, [...(byChannel.get(id) ?? []), c.at]);
  }
  for (const [channel, times] of byChannel) for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!, channel).toBeGreaterThanOrEqual(ms);
}

/** Runs kubevigil (real ingest, detection, correlation, store) with the notifier on its incidents topic. */
async function pipeline(
  r: Rig,
  scenario: AttackScenario,
): Promise<{ incident: () => Promise<Incident>; resolve: () => Promise<void>; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'kv-notifier-'));
  dirs.push(dir);
  const kv = await serve(loadConfig({ KUBEVIGIL_PORT: '0', KUBEVIGIL_DATA_DIR: dir }), createLogger('silent'), {
    processMetrics: false,
    sweepSchedule: false,
    store: r.store,
  });
  const unsubscribe = kv.bus.subscribe(topics().incidents, 'notifier', (batch) => r.notifier.handle(batch.map((m) => m.value)));
  const settle = async () => {
    // Twice: the correlator publishes to the incidents topic while the first wait is under way.
    await kv.drained();
    await kv.drained();
    await r.drain();
  };
  // One event per request, so the incident grows version by version as an attack unfolds.
  for (const event of attackEvents(scenario)) {
    const res = await fetch(`${kv.url}/ingest/k8s-audit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([event]) });
    expect(res.status).toBe(200);
    await settle();
  }
  const incident = async () => {
    const page = (await (await fetch(`${kv.url}/api/v1/incidents`)).json()) as { items: Incident[] };
    expect(page.items).toHaveLength(1);
    return page.items[0]!;
  };
  return {
    incident,
    resolve: async () => {
      const res = await fetch(`${kv.url}/api/v1/incidents/${(await incident()).id}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ status: 'resolved', note: 'binding removed, pod deleted', by: 'alice' }),
      });
      expect(res.status).toBe(200);
      await settle();
    },
    stop: async () => {
      await unsubscribe();
      await r.notifier.stop();
      await kv.stop();
    },
  };
}

function entry(i: number): TimelineEntry {
  return {
    signalId: `sig-${i}`,
    time: T0 + i * 1000,
    actor: 'sa:payments/payments-api',
    source: 'k8s-audit',
    kind: i % 2 ? 'rbac.denied' : 'secret.read_cross_namespace',
    severity: i % 5 === 0 ? 'critical' : 'medium',
    title: `signal ${i} for payments/pod-${i}`,
    outcome: 'denied',
    ruleId: 'r',
    target: {},
    attributes: {},
  };
}

describe('the Slack stand-in', () => {
  it("accepts Slack's own Block Kit examples", () => {
    for (const kind of ['section', 'context', 'header', 'divider', 'actions']) {
      const examples = JSON.parse(readReal(`slack/block-kit/${kind}-examples.json`)) as { test: string; block: unknown }[];
      for (const e of examples) expect(() => validateBlocks([e.block]), `${kind} ${e.test}`).not.toThrow();
    }
  });

  it('enforces auth, required arguments, limits and known ts, answering ok:false with HTTP 200, and 429 with Retry-After', async () => {
    const slack = await startSlackStandin();
    cleanups.push(() => slack.close());
    const call = async (method: string, args: Record<string, unknown>, token: string | null = slack.token) => {
      const res = await fetch(`${slack.apiUrl}${method}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-8', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(args),
      });
      return {
        status: res.status,
        retryAfter: res.headers.get('retry-after'),
        body: (await res.json()) as { ok: boolean; error?: string; ts?: string; channel?: string },
      };
    };
    const section = (text: string) => ({ type: 'section', text: { type: 'mrkdwn', text } });
    expect(await call('chat.postMessage', { channel: '#security', text: 'x' }, null)).toMatchObject({ status: 200, body: { ok: false, error: 'not_authed' } });
    expect(await call('chat.postMessage', { channel: '#security', text: 'x' }, 'xoxb-wrong')).toMatchObject({
      status: 200,
      body: { ok: false, error: 'invalid_auth' },
    });
    expect((await call('chat.postMessage', { text: 'x' })).body.error).toBe('channel_not_found');
    expect((await call('chat.postMessage', { channel: '#nowhere', text: 'x' })).body.error).toBe('channel_not_found');
    expect((await call('chat.postMessage', { channel: '#security' })).body.error).toBe('no_text');
    expect((await call('chat.postMessage', { channel: '#security', text: 'x', markdown_text: 'y' })).body.error).toBe('markdown_text_conflict');
    expect(
      (await call('chat.postMessage', { channel: '#security', text: 'x', blocks: Array.from({ length: 51 }, () => ({ type: 'divider' })) })).body.error,
    ).toBe('invalid_blocks');
    expect(
      (await call('chat.postMessage', { channel: '#security', text: 'x', blocks: [{ type: 'header', text: { type: 'plain_text', text: 'h'.repeat(151) } }] }))
        .body.error,
    ).toBe('invalid_blocks');
    expect(
      (await call('chat.postMessage', { channel: '#security', text: 'x', blocks: [{ type: 'header', text: { type: 'mrkdwn', text: 'h' } }] })).body.error,
    ).toBe('invalid_blocks');
    expect((await call('chat.postMessage', { channel: '#security', text: 'x', blocks: [section('s'.repeat(3001))] })).body.error).toBe('invalid_blocks');
    expect(
      (await call('chat.postMessage', { channel: '#security', text: 'x', blocks: Array.from({ length: 5 }, () => section('s'.repeat(2999))) })).body.error,
    ).toBe('msg_blocks_too_long');
    const posted = await call('chat.postMessage', { channel: '#security', text: 'x', blocks: [section('hello')] });
    expect(posted.body).toMatchObject({ ok: true, channel: 'C0SECURITY', ts: expect.stringMatching(/^\d+\.\d{6}$/) });
    expect((await call('chat.update', { channel: 'C0SECURITY', text: 'y' })).body.error).toBe('message_not_found');
    expect((await call('chat.update', { channel: 'C0SECURITY', ts: '1.000001', text: 'y' })).body.error).toBe('message_not_found');
    expect((await call('chat.update', { channel: 'C0SECURITY', ts: posted.body.ts, text: 'y'.repeat(4001) })).body.error).toBe('msg_too_long');
    expect((await call('chat.update', { channel: 'C0SECURITY', ts: posted.body.ts, text: 'edited' })).body).toMatchObject({ ok: true, ts: posted.body.ts });
    expect((await call('chat.postMessage', { channel: '#security', text: 'r', thread_ts: '9.999999' })).body.error).toBe('cannot_reply_to_message');
    slack.rateLimit({ channel: '#security', times: 1, retryAfter: 30 });
    expect(await call('chat.postMessage', { channel: '#security', text: 'x' })).toMatchObject({
      status: 429,
      retryAfter: '30',
      body: { ok: false, error: 'ratelimited' },
    });
    expect(slack.messages.get(`C0SECURITY/${posted.body.ts}`)).toMatchObject({ text: 'edited', edits: 1 });
    expect(slack.faults).toEqual([]);
  });
});

describe('Slack bot delivery: the demo incident', () => {
  it('posts the demo attack once, updates it as it grows, threads new evidence, and resolves it', async () => {
    const r = await rig({ store: new MemoryStore() });
    const kv = await pipeline(r, SEED_SCENARIO);
    const open = await kv.incident();
    expect(open.severity).toBe('critical');

    const top = posts(r.slack);
    expect(top).toHaveLength(1);
    const ts = top[0]!.ts!;
    expect(top[0]).toMatchObject({ args: { channel: '#security', parse: 'none', link_names: 'false', unfurl_links: 'false' }, unknownArgs: [] });
    // One post, then at most one edit per later version (5 edits and 3 replies for 6 versions today).
    expect(updates(r.slack).length).toBeGreaterThanOrEqual(1);
    expect(updates(r.slack).length).toBeLessThanOrEqual(open.version - 1);
    for (const u of updates(r.slack)) expect(u.args).toMatchObject({ channel: 'C0SECURITY', ts });
    expect(replies(r.slack).length).toBeGreaterThanOrEqual(1);
    for (const reply of replies(r.slack)) expect(reply.args.thread_ts).toBe(ts);
    // What the channel shows now is the latest version, with the fix spelled out.
    const shown = r.slack.messages.get(`C0SECURITY/${ts}`)!;
    const shownText = JSON.stringify(shown.blocks);
    expect(headerOf({ blocks: shown.blocks } as StandinCall)).toMatch(/^:red_circle: CRITICAL · Service account frontend\/frontend/);
    expect(shownText).toContain('kubectl delete clusterrolebinding frontend-secrets-reader');
    expect(shownText).toContain(`version ${open.version}`);
    const ref = JSON.parse((await r.store.getState(slackRefKey('#security', open.id)))!) as SlackMessageRef;
    expect(ref).toEqual({ channel: 'C0SECURITY', ts, version: open.version, replied: expect.any(Number), digest: false });
    expect(typeof ref.ts).toBe('string');

    const before = r.slack.calls.length;
    await kv.resolve();
    const after = r.slack.calls.slice(before);
    expect(after.map((c) => c.method)).toEqual(['chat.update', 'chat.postMessage']);
    expect(headerOf(after[0]!)).toMatch(/^:white_check_mark: RESOLVED · /);
    expect(after[1]!.args.thread_ts).toBe(ts);
    expect(JSON.stringify(after[1]!.blocks)).toContain('binding removed, pod deleted');

    expect(posts(r.slack)).toHaveLength(1);
    expect(r.slack.calls.every((c) => c.status === 200 && c.error === undefined && c.unknownArgs.length === 0)).toBe(true);
    expect(r.slack.faults).toEqual([]);
    expectInert(r.slack.calls);
    expectPaced(r.slack, r.slack.calls, 1000);
    expect(await metric(r.registry, 'kubevigil_notifier_sent_total', { kind: 'post' })).toBe(1);
    await kv.stop();
  });

  it('renders an injection attempt through a pod name and an admission log line harmless', async () => {
    const r = await rig({ store: new MemoryStore() });
    const hostile: AttackScenario = {
      ...SEED_SCENARIO,
      pod: 'frontend-<!channel>-x',
      secrets: ['db<https://evil.example|click>', '*bold*`x`<@U123>'],
      targetPod: 'pg<!here>',
      constraint: 'deny <!channel> *bold* <https://evil.example|click>',
    };
    const kv = await pipeline(r, hostile);
    expect(posts(r.slack)).toHaveLength(1);
    const all = r.slack.calls
      .flatMap(callTexts)
      .map((t) => t.text)
      .join('\n');
    // The names are shown, escaped: a reader sees them, Slack parses nothing out of them.
    expect(all).toContain('frontend-&lt;!channel&gt;-x');
    expect(all).toContain('db&lt;https://evil.example|click&gt;');
    expect(all).toContain('pg&lt;!here&gt;');
    expectInert(r.slack.calls);
    expect(r.slack.faults).toEqual([]);
    await kv.stop();
  });
});

describe('Slack bot delivery: never lose, never repeat', () => {
  it('edits the message posted before a restart, and ignores a redelivered version', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kv-notifier-'));
    dirs.push(dir);
    const file = join(dir, 'kubevigil.db');
    const r = await rig({ store: openSqliteStore(file) });
    const v1 = makeIncident('inc_restart', { version: 1 });
    await r.notifier.handle([v1]);
    await r.drain();
    expect(posts(r.slack)).toHaveLength(1);

    // The process stops and a new one opens the same database.
    await r.notifier.stop();
    await r.store.close();
    const second = r.restart(openSqliteStore(file));
    cleanups.push(() => r.store.close());
    await second.handle([v1]);
    await second.handle([{ ...v1, version: 2, severity: 'critical' }]);
    await r.drain();
    expect(posts(r.slack)).toHaveLength(1);
    expect(updates(r.slack)).toHaveLength(1);
    expect(updates(r.slack)[0]!.args.ts).toBe(posts(r.slack)[0]!.ts);
    expect(headerOf(updates(r.slack)[0]!)).toMatch(/CRITICAL/);
    expect(replies(r.slack)).toHaveLength(1);
  });

  it('delivers what a killed process had claimed once its lease ends, as one post with the latest version', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kv-notifier-'));
    dirs.push(dir);
    const file = join(dir, 'kubevigil.db');
    const r = await rig({ store: openSqliteStore(file), env: { KUBEVIGIL_NOTIFY_GROUP_WAIT_MS: '0' } });
    const v1 = makeIncident('inc_killed', { version: 1 });
    await r.notifier.handle([v1, { ...v1, version: 2, sources: ['k8s-audit', 'loki'] }]);
    // The first process claims the work, then dies before sending anything.
    const claimed = await r.store.outbox.claim('slack:#security', r.scheduler.now(), 10, 120_000);
    expect(claimed).toHaveLength(2);
    await r.notifier.stop();
    await r.store.close();

    const second = r.restart(openSqliteStore(file));
    cleanups.push(() => r.store.close());
    const started = r.scheduler.now();
    await r.drain();
    expect(r.scheduler.now() - started).toBeGreaterThanOrEqual(120_000);
    expect(posts(r.slack)).toHaveLength(1);
    expect(JSON.stringify(posts(r.slack)[0]!.blocks)).toContain('version 2');
    expect(await second.dispatcher.nextWake()).toBeUndefined();
    const items = await r.store.outbox.list({ limit: 10 });
    expect(items.map((i) => [i.version, i.status, i.note])).toEqual([
      [1, 'done', 'superseded'],
      [2, 'done', undefined],
    ]);
  });

  it('loses no update when killed between two updates', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kv-notifier-'));
    dirs.push(dir);
    const file = join(dir, 'kubevigil.db');
    const r = await rig({ store: openSqliteStore(file) });
    const v1 = makeIncident('inc_between', { version: 1 });
    await r.notifier.handle([v1]);
    await r.drain();
    await r.notifier.handle([{ ...v1, version: 2, severity: 'critical' }]);
    await r.drain();
    // Version 3 reaches the outbox; the process dies before delivering it.
    await r.notifier.handle([{ ...v1, version: 3, severity: 'critical', status: 'acknowledged' }]);
    await r.notifier.stop();
    await r.store.close();

    r.restart(openSqliteStore(file));
    cleanups.push(() => r.store.close());
    await r.drain();
    expect(posts(r.slack)).toHaveLength(1);
    expect(updates(r.slack).map((u) => JSON.stringify(u.blocks).match(/· version (\d+) ·/)?.[1])).toEqual(['2', '3']);
    expect(r.slack.messages.get(`C0SECURITY/${posts(r.slack)[0]!.ts}`)!.edits).toBe(2);
  });
});

describe('Slack bot delivery: rate limits and errors', () => {
  it('rides out a 429 storm on one channel without stalling the other', async () => {
    const r = await rig({
      env: { SLACK_ROUTES: 'namespace=payments => #payments', KUBEVIGIL_NOTIFY_GROUP_WAIT_MS: '0', KUBEVIGIL_NOTIFY_DIGEST_THRESHOLD: '100' },
    });
    const ns = (n: string) => ({ namespaces: [n], workloads: [], secrets: [], bindings: [], policies: [] });
    const incidents = Array.from({ length: 16 }, (_, i) =>
      makeIncident(`inc_storm_${String(i).padStart(2, '0')}`, {
        blastRadius: ns(i % 2 ? 'payments' : 'ci'),
        actor: { key: `user:u${i}`, type: 'user', name: `u${i}` },
      }),
    );
    r.slack.rateLimit({ channel: '#security', times: 6, retryAfter: 30 });
    const start = r.scheduler.now();
    await r.notifier.handle(incidents);
    const end = await r.drain();

    const security = posts(r.slack, '#security');
    const payments = posts(r.slack, '#payments');
    expect(security).toHaveLength(8);
    expect(payments).toHaveLength(8);
    // Each incident exactly once.
    expect(new Set([...security, ...payments].map((c) => headerOf(c))).size).toBe(16);
    const limited = r.slack.calls.filter((c) => c.status === 429);
    expect(limited).toHaveLength(6);
    // Retry-After honoured: nothing went to the limited channel before the wait was over.
    for (const l of limited) {
      const next = r.slack.calls.find((c) => c.at > l.at && c.args.channel === '#security');
      expect(next!.at - l.at).toBeGreaterThanOrEqual(30_000);
    }
    // The other channel was done long before the storm passed, at one message a second.
    expect(payments.at(-1)!.at - start).toBe(7000);
    expect(security[0]!.at - start).toBe(6 * 30_000);
    expectPaced(
      r.slack,
      r.slack.calls.filter((c) => c.status === 200),
      1000,
    );
    expect(await metric(r.registry, 'kubevigil_notifier_retries_total', { reason: 'ratelimited' })).toBe(6);
    expect(await metric(r.registry, 'kubevigil_notifier_sent_total', { kind: 'post' })).toBe(16);
    expect(await metric(r.registry, 'kubevigil_notifier_failed_total')).toBe(0);
    // Drained, in fake time: six 30 s waits, then seven 1 s gaps for the eight posts.
    expect(end - start).toBe(6 * 30_000 + 7000);
    expect(await r.store.outbox.list({ limit: 100, status: 'pending' })).toEqual([]);
  });

  it('gives up on channel_not_found and invalid_auth, counted, while other channels go on', async () => {
    const r = await rig({ env: { SLACK_ROUTES: 'severity>=critical => #nowhere', KUBEVIGIL_NOTIFY_GROUP_WAIT_MS: '0' } });
    await r.notifier.handle([makeIncident('inc_crit', { severity: 'critical' }), makeIncident('inc_high', { severity: 'high' })]);
    await r.drain();
    expect(r.slack.calls.filter((c) => c.error === 'channel_not_found')).toHaveLength(1);
    expect(posts(r.slack, '#security')).toHaveLength(1);
    expect(await metric(r.registry, 'kubevigil_notifier_failed_total', { reason: 'channel_not_found' })).toBe(1);
    expect(await metric(r.registry, 'kubevigil_notifier_retries_total')).toBe(0);
    expect((await r.store.outbox.list({ limit: 10, status: 'failed' }))[0]!.lastError).toMatch(/channel_not_found.*invite/);

    const bad = await rig({ env: { SLACK_BOT_TOKEN: 'xoxb-0000-wrong-token', KUBEVIGIL_NOTIFY_GROUP_WAIT_MS: '0' }, slack: r.slack, scheduler: r.scheduler });
    await bad.notifier.handle([makeIncident('inc_auth')]);
    await bad.drain();
    expect(r.slack.calls.filter((c) => c.error === 'invalid_auth')).toHaveLength(1);
    expect(await metric(bad.registry, 'kubevigil_notifier_failed_total', { reason: 'invalid_auth' })).toBe(1);
  });

  it('falls back to a short message on msg_too_long, reposts a deleted message, and retries 5xx and fatal_error with backoff', async () => {
    const r = await rig({ env: { KUBEVIGIL_NOTIFY_GROUP_WAIT_MS: '0' } });
    const v1 = makeIncident('inc_err', { version: 1 });
    r.slack.httpStatusNext({ method: 'chat.postMessage', status: 503, times: 2 });
    r.slack.failNext({ method: 'chat.postMessage', error: 'fatal_error' });
    const start = r.scheduler.now();
    await r.notifier.handle([v1]);
    await r.drain();
    expect(posts(r.slack)).toHaveLength(1);
    // Backoff 1 s, 2 s, 4 s after the three failures.
    expect(posts(r.slack)[0]!.at - start).toBe(7000);
    expect(await metric(r.registry, 'kubevigil_notifier_retries_total', { reason: 'http_503' })).toBe(2);
    expect(await metric(r.registry, 'kubevigil_notifier_retries_total', { reason: 'fatal_error' })).toBe(1);

    r.slack.failNext({ method: 'chat.update', error: 'msg_too_long' });
    await r.notifier.handle([{ ...v1, version: 2, status: 'acknowledged' }]);
    await r.drain();
    expect(updates(r.slack)).toHaveLength(1);
    expect(r.slack.calls.filter((c) => c.error === 'msg_too_long')).toHaveLength(1);
    expect(JSON.stringify(updates(r.slack)[0]!.blocks)).not.toContain('Suggested remediations');
    expect(await metric(r.registry, 'kubevigil_notifier_fallbacks_total', { reason: 'msg_too_long' })).toBe(1);

    // Someone deleted the message: the next change is posted anew, and later edits go to the new one.
    const first = posts(r.slack)[0]!.ts!;
    r.slack.messages.delete(`C0SECURITY/${first}`);
    await r.notifier.handle([{ ...v1, version: 3, severity: 'critical', status: 'acknowledged' }]);
    await r.drain();
    expect(posts(r.slack)).toHaveLength(2);
    const second = posts(r.slack)[1]!.ts!;
    await r.notifier.handle([{ ...v1, version: 4, severity: 'critical', status: 'resolved', resolvedAt: T0 + 1, resolution: 'manual' }]);
    await r.drain();
    expect(updates(r.slack).at(-1)!.args.ts).toBe(second);
    expect(await metric(r.registry, 'kubevigil_notifier_fallbacks_total', { reason: 'message_not_found' })).toBe(1);
    expect(r.slack.faults).toEqual([]);
  });
});

describe('Slack bot delivery: volume', () => {
  it('turns a burst into one digest per channel, and threads later news under it', async () => {
    const r = await rig();
    const burst = Array.from({ length: 12 }, (_, i) => makeIncident(`inc_burst_${String(i).padStart(2, '0')}`, { severity: i < 3 ? 'critical' : 'high' }));
    await r.notifier.handle(burst.slice(0, 7));
    await r.notifier.handle(burst.slice(7));
    await r.drain();
    expect(posts(r.slack)).toHaveLength(1);
    expect(headerOf(posts(r.slack)[0]!)).toBe(':rotating_light: 12 new incidents (3 critical, 9 high)');
    expect(await metric(r.registry, 'kubevigil_notifier_coalesced_total', { reason: 'digest' })).toBe(12);

    await r.notifier.handle([{ ...burst[4]!, version: 4, severity: 'critical' }]);
    await r.drain();
    expect(posts(r.slack)).toHaveLength(1);
    expect(replies(r.slack)).toHaveLength(1);
    expect(replies(r.slack)[0]!.args.thread_ts).toBe(posts(r.slack)[0]!.ts);
    expect(updates(r.slack)).toHaveLength(0);
  });

  it('sends nothing for versions that add nothing, and nothing below the minimum severity', async () => {
    const r = await rig({ env: { KUBEVIGIL_NOTIFY_GROUP_WAIT_MS: '0' } });
    const v1 = makeIncident('inc_quiet', { version: 1 });
    await r.notifier.handle([v1, { ...v1, version: 2, signalCount: 8 }, { ...v1, version: 3, signalCount: 9 }, makeIncident('inc_low', { severity: 'low' })]);
    await r.drain();
    expect(r.slack.calls).toHaveLength(1);
    expect(await metric(r.registry, 'kubevigil_notifier_incidents_total', { outcome: 'unchanged' })).toBe(2);
    expect(await metric(r.registry, 'kubevigil_notifier_incidents_total', { outcome: 'below_min_severity' })).toBe(1);
  });

  it('posts an incident with 500 signals within every limit the stand-in enforces', async () => {
    const r = await rig({ env: { KUBEVIGIL_NOTIFY_GROUP_WAIT_MS: '0' } });
    const base = makeIncident('inc_500', { severity: 'critical' });
    const big: Incident = {
      ...base,
      signalCount: 500,
      timeline: Array.from({ length: 500 }, (_, i) => entry(i)),
      blastRadius: {
        ...base.blastRadius,
        workloads: Array.from({ length: 500 }, (_, i) => `payments/pod-${i}`),
        secrets: Array.from({ length: 200 }, (_, i) => `payments/s-${i}`),
      },
      remediations: Array.from({ length: 30 }, (_, i) => ({
        ...base.remediations[0]!,
        title: `Remediation ${i}`,
        commands: Array.from({ length: 20 }, (_, j) => `kubectl -n payments delete pod pod-${i}-${j}`),
      })),
    };
    await r.notifier.handle([big]);
    await r.drain();
    expect(posts(r.slack)).toHaveLength(1);
    const call = posts(r.slack)[0]!;
    expect(call.blocks!.length).toBeLessThanOrEqual(STANDIN_LIMITS.blocks);
    expect(JSON.stringify(call.blocks)).toContain('… and 492 more signals');
    expect(await metric(r.registry, 'kubevigil_notifier_fallbacks_total')).toBe(0);
  });
});

describe('Slack bot delivery on real timers', () => {
  it('delivers, paces and stops with the system scheduler', async () => {
    const slack = await startSlackStandin();
    cleanups.push(() => slack.close());
    const config = loadNotifierConfig({
      SLACK_BOT_TOKEN: slack.token,
      SLACK_CHANNEL: '#security',
      SLACK_API_URL: slack.apiUrl,
      KUBEVIGIL_NOTIFY_GROUP_WAIT_MS: '0',
      SLACK_MIN_INTERVAL_MS: '50',
    });
    const notifier = startNotifier({ config, store: new MemoryStore(), logger: createLogger('silent'), registry: new Registry() });
    cleanups.push(() => notifier.stop());
    const v1 = makeIncident('inc_real', { version: 1 });
    await notifier.handle([v1]);
    await vi.waitFor(() => expect(posts(slack)).toHaveLength(1), { timeout: 5000, interval: 20 });
    await notifier.handle([{ ...v1, version: 2, severity: 'critical' }]);
    await vi.waitFor(() => expect(replies(slack)).toHaveLength(1), { timeout: 5000, interval: 20 });
    expect(updates(slack)).toHaveLength(1);
    expectPaced(slack, slack.calls, 50);
    await notifier.stop();
  });
});

describe('Slack incoming webhook delivery', () => {
  it('posts once per state change, honours 429, and digests a burst', async () => {
    const scheduler = new ManualScheduler(T0);
    const slack = await startSlackStandin({ now: () => scheduler.now() });
    cleanups.push(() => slack.close());
    const r = await rig({
      slack,
      scheduler,
      env: { SLACK_BOT_TOKEN: '', SLACK_CHANNEL: '', SLACK_WEBHOOK_URL: slack.webhookUrl, KUBEVIGIL_NOTIFY_GROUP_WAIT_MS: '0' },
    });
    const v1 = makeIncident('inc_hook', { version: 1 });
    slack.rateLimit({ method: 'webhook', times: 1, retryAfter: 5 });
    await r.notifier.handle([v1]);
    await r.drain();
    await r.notifier.handle([{ ...v1, version: 2, signalCount: 8 }]);
    await r.notifier.handle([{ ...v1, version: 3, severity: 'critical' }]);
    await r.drain();
    await r.notifier.handle([{ ...v1, version: 4, severity: 'critical', status: 'resolved', resolvedAt: T0 + 5, resolution: 'quiet' }]);
    await r.drain();
    const delivered = slack.ok('webhook');
    expect(delivered.map(headerOf)).toEqual([
      expect.stringMatching(/^:large_orange_circle: HIGH/),
      expect.stringMatching(/^:red_circle: CRITICAL/),
      expect.stringMatching(/^:white_check_mark: RESOLVED/),
    ]);
    expect(delivered[1]!.blocks!.length).toBeGreaterThan(5);
    expect(JSON.stringify(delivered[1]!.blocks)).toContain('Updated since version 1: severity high → critical');
    expect(slack.calls.filter((c) => c.status === 429)).toHaveLength(1);
    expect(delivered[0]!.at - T0).toBe(5000);
    expect(slack.calls.every((c) => c.method === 'webhook')).toBe(true);

    await r.notifier.handle(Array.from({ length: 6 }, (_, i) => makeIncident(`inc_hook_burst_${i}`)));
    await r.drain();
    expect(headerOf(slack.ok('webhook').at(-1)!)).toBe(':rotating_light: 6 new incidents (6 high)');
    expect(slack.ok('webhook')).toHaveLength(4);
    expect(slack.faults).toEqual([]);
  });
});
