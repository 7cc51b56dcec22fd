import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../correlator/errors.js';
import { loadNotifierConfig, NOTIFIER_SETTINGS } from './config.js';
import { routeChannels } from './routing.js';
import { makeIncident } from '../store/store.contract.js';

const TOKEN = 'xoxb-1111-2222-abcdefABCDEF';

function problems(env: NodeJS.ProcessEnv): string[] {
  try {
    loadNotifierConfig(env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  return [];
}

describe('loadNotifierConfig', () => {
  it('configures nothing by default', () => {
    const c = loadNotifierConfig({});
    expect(c).toMatchObject({ webhooks: { urls: [] }, minSeverity: 'medium', delivery: { slackIntervalMs: 1000, groupWaitMs: 2000, digestThreshold: 5 } });
    expect(c.slackBot).toBeUndefined();
    expect(c.slackWebhookUrl).toBeUndefined();
  });

  it('reads the bot, routes, webhooks and Alertmanager', () => {
    const c = loadNotifierConfig({
      SLACK_BOT_TOKEN: TOKEN,
      SLACK_CHANNEL: '#security',
      SLACK_ROUTES: 'severity>=critical => #sec-oncall; namespace=pay*, severity>=high => C0PAYMENTS ; severity=medium=>#low',
      SLACK_API_URL: 'http://127.0.0.1:9999/api',
      SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T/B/X',
      KUBEVIGIL_WEBHOOK_URLS: 'https://a.example/hook, https://b.example/hook',
      KUBEVIGIL_WEBHOOK_SECRET: 's'.repeat(32),
      KUBEVIGIL_ALERTMANAGER_URL: 'http://alertmanager:9093',
      KUBEVIGIL_PUBLIC_URL: 'https://kubevigil.example.com',
      KUBEVIGIL_NOTIFY_MIN_SEVERITY: 'high',
    });
    expect(c.slackBot).toEqual({
      token: TOKEN,
      defaultChannel: '#security',
      apiUrl: 'http://127.0.0.1:9999/api/',
      routes: [
        { channel: '#sec-oncall', minSeverity: 'critical' },
        { channel: 'C0PAYMENTS', namespace: 'pay*', minSeverity: 'high' },
        { channel: '#low', severity: 'medium' },
      ],
    });
    // With a bot token the incoming webhook is not used.
    expect(c.slackWebhookUrl).toBeUndefined();
    expect(c).toMatchObject({
      webhooks: { urls: ['https://a.example/hook', 'https://b.example/hook'] },
      alertmanagerUrl: 'http://alertmanager:9093/',
      minSeverity: 'high',
      apiBaseUrl: 'https://kubevigil.example.com/',
    });
    const slack = c.slackBot!;
    expect(routeChannels(makeIncident('a', { severity: 'critical' }), slack)).toEqual(['#sec-oncall', 'C0PAYMENTS']);
    expect(
      routeChannels(
        makeIncident('b', { severity: 'medium', blastRadius: { namespaces: ['payments'], workloads: [], secrets: [], bindings: [], policies: [] } }),
        slack,
      ),
    ).toEqual(['#low']);
    expect(
      routeChannels(
        makeIncident('c', {
          severity: 'high',
          blastRadius: { namespaces: ['ci'], workloads: [], secrets: [], bindings: [], policies: [] },
          actor: { key: 'user:x', type: 'user', name: 'x' },
        }),
        slack,
      ),
    ).toEqual(['#security']);
  });

  it('reports every problem at once, without quoting secrets', () => {
    const found = problems({
      SLACK_BOT_TOKEN: 'xoxp-user-token-secret',
      SLACK_ROUTES: 'severity>=urgent => #a; namespace>=x => #b; nothing; team=x => #c',
      SLACK_WEBHOOK_URL: 'ftp://secret-hook',
      KUBEVIGIL_WEBHOOK_URLS: 'https://ok.example, not a url',
      KUBEVIGIL_WEBHOOK_SECRET: 'short',
      KUBEVIGIL_NOTIFY_MIN_SEVERITY: 'loud',
      KUBEVIGIL_NOTIFY_DIGEST_THRESHOLD: '1',
    });
    expect(found).toHaveLength(10);
    expect(found.join('\n')).not.toMatch(/xoxp-user-token-secret|secret-hook|not a url/);
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^SLACK_BOT_TOKEN \(value hidden\) must be a bot token starting with xoxb-/),
        expect.stringMatching(/^SLACK_ROUTES route 1 .* has severity "urgent"/),
        expect.stringMatching(/^SLACK_ROUTES route 3 \("nothing"\) has no "=>"/),
        expect.stringMatching(/^KUBEVIGIL_WEBHOOK_SECRET is 5 characters/),
        expect.stringMatching(/^KUBEVIGIL_NOTIFY_DIGEST_THRESHOLD \("1"\) must be an integer from 2/),
      ]),
    );
    expect(problems({ SLACK_BOT_TOKEN: TOKEN })).toEqual([expect.stringMatching(/neither SLACK_CHANNEL nor SLACK_ROUTES/)]);
    expect(problems({ SLACK_CHANNEL: '#x' })).toEqual([expect.stringMatching(/without SLACK_BOT_TOKEN/)]);
  });

  it('documents every variable it reads', () => {
    const documented = new Set(NOTIFIER_SETTINGS.map((s) => s.env));
    for (const v of [
      'SLACK_BOT_TOKEN',
      'SLACK_CHANNEL',
      'SLACK_ROUTES',
      'SLACK_WEBHOOK_URL',
      'SLACK_API_URL',
      'KUBEVIGIL_NOTIFY_MIN_SEVERITY',
      'KUBEVIGIL_PUBLIC_URL',
      'KUBEVIGIL_WEBHOOK_URLS',
      'KUBEVIGIL_WEBHOOK_SECRET',
      'KUBEVIGIL_ALERTMANAGER_URL',
      'KUBEVIGIL_NOTIFY_GROUP_WAIT_MS',
      'KUBEVIGIL_NOTIFY_DIGEST_THRESHOLD',
      'SLACK_MIN_INTERVAL_MS',
    ])
      expect(documented.has(v), v).toBe(true);
  });
});
