/**
 * KUBEVIGIL_CLUSTER_NAME (issue #15): validated at start-up, stamped on every signal by the ingest
 * stage, carried to the incident those signals open, and named in every output — the REST API, the
 * signed webhook, the Alertmanager alert (label `cluster`) and the Slack message.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../correlator/errors.js';
import type { Incident } from '../correlator/incident.js';
import type { Signal } from '../correlator/signal.js';
import { Incident as IncidentSchema, Signal as SignalSchema } from '../services/api/schemas.js';
import { loadConfig } from '../services/config.js';
import { createLogger } from '../services/logging.js';
import { serve } from '../services/main.js';
import type { PostableAlert } from '../services/notifier/alertmanager.js';
import { alertsFor } from '../services/notifier/alertmanager.js';
import { formatIncident, formatResolved } from '../services/notifier/slack/format.js';
import { makeIncident, T0 } from '../services/store/store.contract.js';
import { startSlackStandin } from './helpers/slack-standin.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A receiver that records JSON bodies and resolves `first` on the first one. */
async function receiver() {
  const bodies: unknown[] = [];
  let arrived!: () => void;
  const first = new Promise<void>((r) => (arrived = r));
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(200).end();
      arrived();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies, first };
}

describe('KUBEVIGIL_CLUSTER_NAME', () => {
  it('is optional, and must be a DNS label', () => {
    expect(loadConfig({}).clusterName).toBeUndefined();
    expect(loadConfig({ KUBEVIGIL_CLUSTER_NAME: 'prod-eu-1' }).clusterName).toBe('prod-eu-1');
    for (const bad of ['Prod', 'prod_eu', '-prod', 'prod-', 'a'.repeat(64), 'prod eu']) {
      let err: unknown;
      try {
        loadConfig({ KUBEVIGIL_CLUSTER_NAME: bad });
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems.join('\n')).toMatch(/^KUBEVIGIL_CLUSTER_NAME \(.*\) must be a DNS label/);
    }
  });

  it('is on every signal, the incident, the webhook, the Alertmanager alert and the Slack message', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kv-cluster-'));
    dirs.push(dir);
    const hook = await receiver();
    const am = await receiver();
    const slack = await startSlackStandin();
    cleanups.push(() => slack.close());
    let slackPosted!: () => void;
    const slackFirst = new Promise<void>((r) => (slackPosted = r));
    const config = loadConfig({
      KUBEVIGIL_PORT: '0',
      KUBEVIGIL_DATA_DIR: dir,
      KUBEVIGIL_INVENTORY: 'off',
      KUBEVIGIL_CLUSTER_NAME: 'prod-eu-1',
      KUBEVIGIL_NOTIFY_GROUP_WAIT_MS: '0',
      KUBEVIGIL_WEBHOOK_URLS: `${hook.url}/hook`,
      KUBEVIGIL_WEBHOOK_SECRET: 'webhook-signing-secret-for-tests-0123456789',
      KUBEVIGIL_ALERTMANAGER_URL: am.url,
      SLACK_BOT_TOKEN: slack.token,
      SLACK_CHANNEL: '#security',
      SLACK_API_URL: slack.apiUrl,
    });
    const kv = await serve(config, createLogger('silent'), { processMetrics: false, sweepSchedule: false });
    cleanups.push(() => kv.stop());
    const res = await fetch(`${kv.url}/ingest/k8s-audit`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: readFileSync('examples/eventlist.json'),
    });
    expect(res.status).toBe(200);
    await kv.drained();
    await kv.drained();

    const signals = ((await (await fetch(`${kv.url}/api/v1/signals?limit=100`)).json()) as { items: Signal[] }).items;
    expect(signals.length).toBeGreaterThan(0);
    for (const s of signals) {
      expect(s.cluster).toBe('prod-eu-1');
      expect(SignalSchema.safeParse(s).success).toBe(true);
    }
    const page = (await (await fetch(`${kv.url}/api/v1/incidents`)).json()) as { items: Incident[] };
    expect(page.items).toHaveLength(1);
    expect(page.items[0]!.cluster).toBe('prod-eu-1');
    const full = await (await fetch(`${kv.url}/api/v1/incidents/${page.items[0]!.id}`)).json();
    expect(IncidentSchema.parse(full).cluster).toBe('prod-eu-1');

    // The notifier runs on real timers here: wait for each sink's first delivery, not a fixed time.
    const poll = setInterval(() => {
      if (slack.ok('chat.postMessage').length) slackPosted();
    }, 20);
    cleanups.push(async () => clearInterval(poll));
    await Promise.all([hook.first, am.first, slackFirst]);
    expect((hook.bodies[0] as { cluster?: string }).cluster).toBe('prod-eu-1');
    expect((am.bodies[0] as PostableAlert[])[0]!.labels.cluster).toBe('prod-eu-1');
    const post = slack.ok('chat.postMessage')[0]!;
    expect(String(post.args.text)).toContain('incident in prod-eu-1:');
    expect(JSON.stringify(post.blocks)).toContain('cluster `prod-eu-1`');
  });

  it('leaves the label and the words out when no cluster is named', () => {
    const unnamed = makeIncident('inc_unnamed');
    expect(alertsFor(unnamed, undefined, T0)[0]!.labels).not.toHaveProperty('cluster');
    expect(JSON.stringify(formatIncident(unnamed).blocks)).not.toContain('cluster `');
    const named: Incident = { ...unnamed, cluster: 'staging' };
    expect(alertsFor(named, 'low', T0).map((a) => a.labels.cluster)).toEqual(['staging', 'staging']);
    expect(JSON.stringify(formatResolved({ ...named, status: 'resolved', resolvedAt: T0 }).blocks)).toContain('cluster `staging`');
  });
});
