/**
 * The notifier's settings from environment variables, validated all at once: every problem is
 * reported with the variable, the value and advice. Secrets (token, webhook URL, signing secret)
 * are never quoted back.
 */
import { ConfigError } from '../../correlator/errors.js';
import { isSeverity, SEVERITIES, type Severity } from '../../correlator/severity.js';
import type { SettingDoc } from '../settings-doc.js';

/** One Slack route: incidents matching every condition go to `channel`. */
export interface SlackRoute {
  channel: string;
  /** At least this severe (`severity>=high`). */
  minSeverity?: Severity;
  /** Exactly this severe (`severity=medium`). */
  severity?: Severity;
  /** Any namespace of the incident (blast radius or actor) matches this glob (`*` for any run of characters). */
  namespace?: string;
}

/** Slack through a bot token: messages are posted once and then updated. */
export interface SlackBotConfig {
  token: string;
  /** Where incidents no route matched go; none when unset. */
  defaultChannel?: string;
  routes: SlackRoute[];
  /** The Web API base, ending in `/`. */
  apiUrl: string;
}

/** Delivery tuning. */
export interface DeliveryConfig {
  /** Minimum time between two messages to one Slack channel or webhook (Slack allows about one per second). */
  slackIntervalMs: number;
  /** A new incident waits this long before its first message, so a burst can be gathered into one digest. */
  groupWaitMs: number;
  /** This many new incidents waiting for one channel become one digest message. */
  digestThreshold: number;
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** A claimed notification is offered again after this long if its deliverer died. */
  leaseMs: number;
  requestTimeoutMs: number;
  /** How often the outbox is checked when nothing is known to be due (work left by another process). */
  pollMs: number;
  /** Finished outbox items are deleted after this long. */
  retentionMs: number;
}

/** Everything the notifier needs. */
export interface NotifierConfig {
  slackBot?: SlackBotConfig;
  /** An incoming-webhook URL (used only without a bot token). */
  slackWebhookUrl?: string;
  /** Signed JSON webhooks. */
  webhooks: { urls: string[]; secret: string };
  /** Base URL of an Alertmanager to push incidents to as alerts. */
  alertmanagerUrl?: string;
  /** Incidents below this severity are not notified. */
  minSeverity: Severity;
  /** Public base URL of the kubevigil API, for links in messages. */
  apiBaseUrl?: string;
  /** Bot messages carry action buttons: KUBEVIGIL_SLACK_SIGNING_SECRET is set, so the clicks are received. */
  slackButtons?: boolean;
  delivery: DeliveryConfig;
}

/** The defaults of {@link DeliveryConfig}. */
export const DEFAULT_DELIVERY: DeliveryConfig = {
  slackIntervalMs: 1000,
  groupWaitMs: 2000,
  digestThreshold: 5,
  maxAttempts: 12,
  backoffBaseMs: 1000,
  backoffMaxMs: 5 * 60_000,
  leaseMs: 2 * 60_000,
  requestTimeoutMs: 10_000,
  pollMs: 5000,
  retentionMs: 7 * 24 * 3_600_000,
};

/** The notifier's variables, for `kubevigil config` and the README. */
export const NOTIFIER_SETTINGS: SettingDoc[] = [
  {
    env: 'SLACK_BOT_TOKEN',
    default: '(none)',
    help: 'Slack bot token (xoxb-…, scope chat:write): one message per incident, updated as it changes, with thread replies for new evidence.',
  },
  { env: 'SLACK_CHANNEL', default: '(none)', help: 'Channel (ID such as C0123ABCD, or #name) for incidents no route matches. Invite the app to it.' },
  {
    env: 'SLACK_ROUTES',
    default: '(none)',
    help: 'Routes, ";"-separated: "<conditions> => <channel>", conditions comma-separated: severity>=high, severity=medium, namespace=payments, namespace=team-*. Every matching route gets the incident; SLACK_CHANNEL gets those none matched.',
  },
  {
    env: 'SLACK_WEBHOOK_URL',
    default: '(none)',
    help: 'Slack incoming-webhook URL, used when no bot token is set: one message per incident change (webhooks cannot edit).',
  },
  { env: 'SLACK_API_URL', default: 'https://slack.com/api/', help: 'Slack Web API base URL (a proxy or a test stand-in).' },
  { env: 'KUBEVIGIL_NOTIFY_MIN_SEVERITY', default: 'medium', help: `Incidents below this severity are not notified (${SEVERITIES.join(', ')}).` },
  {
    env: 'KUBEVIGIL_PUBLIC_URL',
    default: '(none)',
    help: 'Base URL at which people reach the kubevigil API, for links in messages (https://kubevigil.example.com).',
  },
  {
    env: 'KUBEVIGIL_WEBHOOK_URLS',
    default: '(none)',
    help: 'Comma-separated URLs that receive each incident change as JSON, signed (X-Kubevigil-Signature: sha256=HMAC of "<timestamp>.<body>").',
  },
  {
    env: 'KUBEVIGIL_WEBHOOK_SECRET',
    default: '(none)',
    help: 'HMAC-SHA256 key of the webhook signatures (16+ characters); required with KUBEVIGIL_WEBHOOK_URLS.',
  },
  {
    env: 'KUBEVIGIL_ALERTMANAGER_URL',
    default: '(none)',
    help: 'Alertmanager base URL: each incident becomes an alert (alertname=KubevigilIncident) posted to /api/v2/alerts.',
  },
  {
    env: 'KUBEVIGIL_NOTIFY_GROUP_WAIT_MS',
    default: '2000',
    help: 'How long a new incident waits before its first message, so that a burst becomes one digest.',
  },
  { env: 'KUBEVIGIL_NOTIFY_DIGEST_THRESHOLD', default: '5', help: 'New incidents waiting for one channel at once that are sent as one digest message.' },
  { env: 'SLACK_MIN_INTERVAL_MS', default: '1000', help: 'Minimum time between two messages to one channel (Slack allows about one per second).' },
];

const ROUTE_HELP = 'write "<conditions> => <channel>", e.g. "severity>=critical => #sec-oncall; namespace=payments,severity>=high => C0PAYMENTS"';

function parseRoutes(raw: string, problems: string[]): SlackRoute[] {
  const routes: SlackRoute[] = [];
  raw
    .split(';')
    .map((r) => r.trim())
    .filter((r) => r !== '')
    .forEach((text, i) => {
      const where = `SLACK_ROUTES route ${i + 1} (${JSON.stringify(text)})`;
      const arrow = text.indexOf('=>');
      if (arrow < 0) return void problems.push(`${where} has no "=>"; ${ROUTE_HELP}`);
      const channel = text.slice(arrow + 2).trim();
      if (!/^#?[A-Za-z0-9._-]{1,80}$/.test(channel)) problems.push(`${where} names channel ${JSON.stringify(channel)}; use a channel ID (C0123ABCD) or #name`);
      const route: SlackRoute = { channel };
      for (const cond of text
        .slice(0, arrow)
        .split(',')
        .map((c) => c.trim())
        .filter((c) => c !== '' && c !== '*')) {
        const m = /^(severity|namespace)\s*(>=|=)\s*(\S+)$/.exec(cond);
        if (!m) {
          problems.push(`${where} has condition ${JSON.stringify(cond)}; use severity>=<level>, severity=<level> or namespace=<name or glob>`);
          continue;
        }
        const [, field, op, value] = m as unknown as [string, 'severity' | 'namespace', string, string];
        if (field === 'severity') {
          if (!isSeverity(value)) problems.push(`${where} has severity ${JSON.stringify(value)}; use one of ${SEVERITIES.join(', ')}`);
          else if (op === '=') route.severity = value;
          else route.minSeverity = value;
        } else if (op !== '=') problems.push(`${where} compares namespace with ${op}; write namespace=<name or glob>`);
        else route.namespace = value;
      }
      routes.push(route);
    });
  return routes;
}

function url(env: NodeJS.ProcessEnv, name: string, problems: string[], secret = false): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  try {
    const u = new URL(raw.trim());
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http');
    return u.toString();
  } catch {
    problems.push(`${name} (${secret ? 'value hidden' : JSON.stringify(raw)}) must be an http:// or https:// URL`);
    return undefined;
  }
}

function int(env: NodeJS.ProcessEnv, name: string, def: number, min: number, max: number, problems: string[]): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    problems.push(`${name} (${JSON.stringify(raw)}) must be an integer from ${min} to ${max}; ${def} is the default`);
    return def;
  }
  return n;
}

/** Reads and validates the notifier's settings; throws {@link ConfigError} listing every problem. */
export function loadNotifierConfig(env: NodeJS.ProcessEnv = process.env): NotifierConfig {
  const problems: string[] = [];
  const token = env.SLACK_BOT_TOKEN?.trim() || undefined;
  const channel = env.SLACK_CHANNEL?.trim() || undefined;
  const routes = parseRoutes(env.SLACK_ROUTES ?? '', problems);
  const apiUrl = url(env, 'SLACK_API_URL', problems) ?? 'https://slack.com/api/';
  const slackWebhookUrl = url(env, 'SLACK_WEBHOOK_URL', problems, true);
  if (token !== undefined && !/^xoxb-[A-Za-z0-9-]+$/.test(token))
    problems.push('SLACK_BOT_TOKEN (value hidden) must be a bot token starting with xoxb-; find it under OAuth & Permissions of your Slack app');
  if (token !== undefined && channel === undefined && routes.length === 0)
    problems.push('SLACK_BOT_TOKEN is set but neither SLACK_CHANNEL nor SLACK_ROUTES is: name a channel to post to');
  if (token === undefined && (channel !== undefined || routes.length > 0) && slackWebhookUrl === undefined)
    problems.push(
      'SLACK_CHANNEL or SLACK_ROUTES is set without SLACK_BOT_TOKEN; set the bot token (or use SLACK_WEBHOOK_URL, whose channel is fixed by the webhook)',
    );
  if (channel !== undefined && !/^#?[A-Za-z0-9._-]{1,80}$/.test(channel))
    problems.push(`SLACK_CHANNEL (${JSON.stringify(channel)}) must be a channel ID (C0123ABCD) or #name`);
  const minSeverity = env.KUBEVIGIL_NOTIFY_MIN_SEVERITY?.trim() || 'medium';
  if (!isSeverity(minSeverity)) problems.push(`KUBEVIGIL_NOTIFY_MIN_SEVERITY (${JSON.stringify(minSeverity)}) must be one of ${SEVERITIES.join(', ')}`);
  const apiBaseUrl = url(env, 'KUBEVIGIL_PUBLIC_URL', problems);
  const webhookUrls: string[] = [];
  (env.KUBEVIGIL_WEBHOOK_URLS ?? '')
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '')
    .forEach((raw, i) => {
      const u = url({ [`KUBEVIGIL_WEBHOOK_URLS[${i}]`]: raw }, `KUBEVIGIL_WEBHOOK_URLS[${i}]`, problems, true);
      if (u) webhookUrls.push(u);
    });
  const secret = env.KUBEVIGIL_WEBHOOK_SECRET ?? '';
  if (webhookUrls.length > 0 && secret.length < 16)
    problems.push(
      `KUBEVIGIL_WEBHOOK_SECRET is ${secret.length} characters; webhooks need a signing secret of at least 16 random characters (openssl rand -hex 32)`,
    );
  const alertmanagerUrl = url(env, 'KUBEVIGIL_ALERTMANAGER_URL', problems);
  const delivery: DeliveryConfig = {
    ...DEFAULT_DELIVERY,
    groupWaitMs: int(env, 'KUBEVIGIL_NOTIFY_GROUP_WAIT_MS', DEFAULT_DELIVERY.groupWaitMs, 0, 600_000, problems),
    digestThreshold: int(env, 'KUBEVIGIL_NOTIFY_DIGEST_THRESHOLD', DEFAULT_DELIVERY.digestThreshold, 2, 1000, problems),
    slackIntervalMs: int(env, 'SLACK_MIN_INTERVAL_MS', DEFAULT_DELIVERY.slackIntervalMs, 0, 60_000, problems),
  };
  if (problems.length) throw new ConfigError(problems);
  return {
    ...(token ? { slackBot: { token, ...(channel ? { defaultChannel: channel } : {}), routes, apiUrl: apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/` } } : {}),
    ...(slackWebhookUrl && !token ? { slackWebhookUrl } : {}),
    webhooks: { urls: webhookUrls, secret },
    ...(alertmanagerUrl ? { alertmanagerUrl } : {}),
    minSeverity: isSeverity(minSeverity) ? minSeverity : 'medium',
    ...(apiBaseUrl ? { apiBaseUrl } : {}),
    ...(token && env.KUBEVIGIL_SLACK_SIGNING_SECRET?.trim() ? { slackButtons: true } : {}),
    delivery,
  };
}
