import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { actorFromUsername } from '../../../correlator/entities.js';
import type { Incident, Remediation, TimelineEntry } from '../../../correlator/incident.js';
import { SEVERITIES } from '../../../correlator/severity.js';
import { validateBlocks } from '../../../test/helpers/slack-standin.js';
import { makeIncident, T0 } from '../../store/store.contract.js';
import { describeChange, snapshotOf } from '../changes.js';
import { codeBlock, escapeClipped, escapeText, inlineCode, link } from './escape.js';
import {
  blockTextLength,
  formatCompact,
  formatDigest,
  formatEvidence,
  formatIncident,
  formatResolved,
  formatResolvedReply,
  keyTimeline,
  SLACK_LIMITS,
  type Block,
  type SlackMessage,
  type TextObject,
} from './format.js';

const API = 'https://kubevigil.example.com';
const OUR_LINK = /<https:\/\/kubevigil\.example\.com\/api\/v1\/incidents[^|<>]*\|[^<>]*>/g;

function texts(m: SlackMessage): TextObject[] {
  return m.blocks.flatMap((b: Block): TextObject[] => {
    if (b.type === 'header') return [b.text];
    if (b.type === 'section') return [...(b.text ? [b.text] : []), ...(b.fields ?? [])];
    if (b.type === 'context') return b.elements;
    return [];
  });
}

/** Every Slack limit, checked block by block, and by the stand-in's validator too. */
function expectWithinLimits(m: SlackMessage, maxTotal: number = SLACK_LIMITS.totalBlockText): void {
  expect(m.blocks.length).toBeLessThanOrEqual(SLACK_LIMITS.blocks);
  expect(m.text.length).toBeGreaterThan(0);
  expect(m.text.length).toBeLessThanOrEqual(SLACK_LIMITS.messageText);
  for (const b of m.blocks) {
    if (b.type === 'header') {
      expect(b.text.type).toBe('plain_text');
      expect(b.text.text.length).toBeLessThanOrEqual(SLACK_LIMITS.headerText);
    }
    if (b.type === 'section') {
      expect(b.text ?? b.fields).toBeDefined();
      if (b.text) expect(b.text.text.length).toBeLessThanOrEqual(SLACK_LIMITS.sectionText);
      expect((b.fields ?? []).length).toBeLessThanOrEqual(SLACK_LIMITS.fields);
      for (const f of b.fields ?? []) expect(f.text.length).toBeLessThanOrEqual(SLACK_LIMITS.fieldText);
    }
    if (b.type === 'context') expect(b.elements.length).toBeLessThanOrEqual(SLACK_LIMITS.contextElements);
  }
  for (const t of texts(m)) expect(t.text.length).toBeGreaterThan(0);
  expect(blockTextLength(m.blocks)).toBeLessThanOrEqual(maxTotal);
  expect(() => validateBlocks(JSON.parse(JSON.stringify(m.blocks)))).not.toThrow();
}

/** No mention, link or special token but our own incident links; no `<`/`>` left unescaped. */
function expectInert(m: SlackMessage): void {
  for (const t of texts(m)) {
    const rest = t.type === 'mrkdwn' ? t.text.replace(OUR_LINK, '') : t.text;
    expect(rest, t.text).not.toMatch(/[<>]/);
    if (t.type === 'mrkdwn') expect(t.verbatim).toBe(true);
  }
  expect(m.text).not.toMatch(/[<>]/);
}

const HOSTILE = ['<!channel>', '<@U123>', '<https://evil.example|click>', '*bold*', '_it_', '~s~', '`tick`', '```fence```', '&amp;', '\u202eevil'];

function hostileIncident(): Incident {
  const pod = `web-<!channel>-<@U123>`;
  const base = makeIncident('inc_hostile', { severity: 'critical' });
  const line = `log: GET /<https://evil.example|click> *bold* \`rm -rf\` <!here> ua="<@U123>"`;
  return {
    ...base,
    title: `Pod ${pod} *bold* <https://evil.example|click>`,
    actor: { ...actorFromUsername('system:serviceaccount:payments:<!channel>'), key: 'sa:payments/<!channel>' },
    blastRadius: {
      namespaces: ['payments'],
      workloads: [`payments/${pod}`, 'payments/`x`'],
      secrets: ['billing/<@U123>'],
      bindings: ['ClusterRoleBinding/*bold*'],
      policies: [],
    },
    timeline: base.timeline.map((e, i) => ({ ...e, title: i === 0 ? line : `${e.title} ${HOSTILE.join(' ')}` })),
    rootCause: {
      ...base.rootCause,
      summary: `${pod} read secrets <!everyone> ${HOSTILE.join(' ')}`,
      evidence: [{ type: 'actor', detail: `<@U123> did it *now*`, signalIds: [] }],
    },
    remediations: [
      {
        kind: 'delete-workload',
        title: `Delete pod ${pod}`,
        rationale: `<https://evil.example|docs> say *so*`,
        risk: '~none~',
        commands: [`kubectl -n payments delete pod '${pod}'`, 'echo ``` && echo `id` > /tmp/x'],
        manifests: [`apiVersion: v1\nkind: Pod\nmetadata:\n  name: "${pod}"\n  annotations:\n    x: "\`\`\`<!channel>"\n`],
      },
    ],
    notes: [{ time: T0, status: 'acknowledged', note: '<!channel> look', by: '<@U999>' }],
  };
}

function entry(i: number): TimelineEntry {
  const kinds = ['secret.read_cross_namespace', 'rbac.denied', 'pod.exec', 'secret.list_cluster_wide', 'admission.denied'] as const;
  return {
    signalId: `sig-${i}`,
    time: T0 + i * 1000,
    actor: 'sa:payments/payments-api',
    source: i % 7 === 0 ? 'loki' : 'k8s-audit',
    kind: kinds[i % kinds.length]!,
    severity: SEVERITIES[i % SEVERITIES.length]!,
    title: `signal ${i}: payments-api did something to payments/pod-${i} ${'x'.repeat(i % 50)}`,
    outcome: i % 2 ? 'denied' : 'allowed',
    ruleId: `rule-${i % 9}`,
    target: { namespace: 'payments', resource: 'pods', name: `pod-${i}` },
    attributes: {},
  };
}

function hugeIncident(): Incident {
  const remediation = (i: number): Remediation => ({
    kind: 'rotate-credentials',
    title: `Rotate secret payments/secret-${i} ${'y'.repeat(300)}`,
    rationale: 'r'.repeat(2500),
    risk: 'k'.repeat(2500),
    commands: Array.from({ length: 12 }, (_, j) => `kubectl -n payments rollout restart deployment/app-${i}-${j} ${'--flag '.repeat(60)}`),
    manifests: [`# save as m-${i}.yaml\n${'line: value\n'.repeat(400)}`, `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: small-${i}\n`],
  });
  return {
    ...makeIncident('inc_huge', { severity: 'critical' }),
    title: 'T'.repeat(1000),
    signalCount: 500,
    timeline: Array.from({ length: 500 }, (_, i) => entry(i)),
    blastRadius: {
      namespaces: Array.from({ length: 120 }, (_, i) => `ns-${i}`),
      workloads: Array.from({ length: 500 }, (_, i) => `ns-${i % 120}/pod-${i}`),
      secrets: Array.from({ length: 300 }, (_, i) => `ns-${i % 120}/secret-${i}`),
      bindings: Array.from({ length: 80 }, (_, i) => `RoleBinding/ns-${i}/b-${i}`),
      policies: Array.from({ length: 60 }, (_, i) => `kyverno/p-${i}`),
    },
    mitre: Array.from({ length: 200 }, (_, i) => `T${1000 + i}`),
    correlations: Array.from({ length: 100 }, (_, i) => ({ ruleId: `c-${i}`, title: `pattern ${i}`, signalIds: [], time: T0 })),
    rootCause: {
      ...makeIncident('x').rootCause,
      summary: 'S'.repeat(5000),
      evidence: Array.from({ length: 40 }, (_, i) => ({ type: 'enabler' as const, detail: 'e'.repeat(900) + i, signalIds: [] })),
    },
    remediations: Array.from({ length: 40 }, (_, i) => remediation(i)),
  };
}

describe('escaping', () => {
  it('escapes &, < and > and drops control and bidi-override characters', () => {
    expect(escapeText('a & b <!channel> <@U1> >q')).toBe('a &amp; b &lt;!channel&gt; &lt;@U1&gt; &gt;q');
    expect(escapeText('x\u0000y\u001b[31mz\u202eevil\u2066\tend\nnext')).toBe('xy[31mzevil end\nnext');
  });

  it('cuts after escaping, never inside an entity, and says so', () => {
    for (let max = 2; max < 30; max++) {
      const out = escapeClipped('<<<&&&>>> and more text', max);
      expect(out.length).toBeLessThanOrEqual(max);
      expect(out.endsWith('…')).toBe(true);
      expect(out.replace(/&(amp|lt|gt);/g, '')).not.toMatch(/&/);
    }
    expect(escapeClipped('short', 10)).toBe('short');
  });

  it('keeps identifiers in one code span that a backtick cannot close', () => {
    expect(inlineCode('pod`<!here>`\nx')).toBe('`podˋ&lt;!here&gt;ˋ x`');
    expect(inlineCode('')).toBe('`-`');
    expect(inlineCode('a'.repeat(500), 50)).toHaveLength(50);
  });

  it('fences code so that it cannot be closed from inside, within its limit', () => {
    const block = codeBlock('echo ```\n<!channel>', 200);
    expect(block).toBe('```\necho ˋˋˋ\n&lt;!channel&gt;\n```');
    expect(block.slice(3, -3)).not.toContain('`');
    expect(codeBlock('z'.repeat(5000), 3000)).toHaveLength(3000);
  });

  it('makes links only of our URLs, with a label that cannot end them', () => {
    expect(link('https://k.example/api/v1/incidents/a|b>c', 'x|<y>')).toBe('<https://k.example/api/v1/incidents/a%7Cb%3Ec|x¦&lt;y&gt;>');
  });
});

describe('formatIncident', () => {
  it('shows header, actor, blast radius, root cause, timeline, remediations and a link', () => {
    const inc = makeIncident('inc_demo', { severity: 'critical' });
    const m = formatIncident(inc, { apiBaseUrl: API });
    expectWithinLimits(m);
    expectInert(m);
    const header = m.blocks[0]!;
    expect(header).toEqual({ type: 'header', text: { type: 'plain_text', text: `:red_circle: CRITICAL · ${inc.title}`, emoji: true } });
    const all = texts(m)
      .map((t) => t.text)
      .join('\n');
    expect(all).toContain('`sa:payments/payments-api`');
    expect(all).toContain('• Secrets: `billing/stripe-api-key`');
    expect(all).toContain('*Root cause* · confidence 85%');
    expect(all).toContain(inc.rootCause.summary);
    expect(all).toContain('k8s-audit · HIGH · secret.read_cross_namespace · allowed');
    expect(all).toContain('```\nkubectl delete clusterrolebinding payments-secrets-reader\n```');
    expect(all).toContain('```\napiVersion: networking.k8s.io/v1');
    expect(all).toContain(`<${API}/api/v1/incidents/inc_demo|Open the incident>`);
    expect(m.text).toBe(escapeText(`CRITICAL incident: ${inc.title}. Actor ${inc.actor.key}; 7 signals. ${inc.rootCause.summary}`));
  });

  it('works without an API URL (no links) and says what changed in an update', () => {
    const v3 = makeIncident('inc_demo');
    const v4: Incident = { ...v3, version: 4, severity: 'critical', sources: ['k8s-audit', 'loki'], signalCount: 9 };
    const m = formatIncident(v4, {}, describeChange(snapshotOf(v3, []), v4));
    expectWithinLimits(m);
    expectInert(m);
    const all = texts(m)
      .map((t) => t.text)
      .join('\n');
    expect(all).not.toContain('<http');
    expect(all).toContain('Updated since version 3: severity high → critical; new source loki; +2 signals');
  });

  it('renders an injection attempt through a pod name and a log line harmless', () => {
    const inc = hostileIncident();
    for (const m of [
      formatIncident(inc, { apiBaseUrl: API }),
      formatCompact(inc, { apiBaseUrl: API }),
      formatEvidence(inc, describeChange(snapshotOf({ ...inc, version: 1, lastSeen: T0 - 86_400_000, sources: [] }, []), inc), { apiBaseUrl: API }),
      formatResolved({ ...inc, status: 'resolved', resolution: 'manual', resolvedAt: T0 }, { apiBaseUrl: API }),
      formatResolvedReply({ ...inc, status: 'resolved', resolvedAt: T0, notes: [{ time: T0, status: 'resolved', note: '<!channel> done' }] }),
      formatDigest([{ incident: inc, change: describeChange(undefined, inc) }], { apiBaseUrl: API }),
    ]) {
      expectWithinLimits(m);
      expectInert(m);
      for (const t of texts(m)) {
        if (t.type !== 'mrkdwn') continue;
        // Outside code spans and blocks, attacker formatting characters never reach mrkdwn.
        const outside = t.text
          .replace(/```[\s\S]*?```/g, '')
          .replace(/`[^`\n]*`/g, '')
          .replace(OUR_LINK, '');
        expect(outside, t.text).not.toMatch(/\*bold\*|_it_|~s~|rm -rf|!channel|@U123/);
        // Inside a code block, the fence is never reopened by the text.
        for (const block of t.text.match(/```[\s\S]*?```/g) ?? []) expect(block.slice(3, -3)).not.toContain('`');
      }
    }
    const full = formatIncident(inc, { apiBaseUrl: API });
    const all = texts(full)
      .map((t) => t.text)
      .join('\n');
    // The text is still there for a reader, only inert.
    expect(all).toContain('&lt;!channel&gt;');
    expect(all).toContain('&lt;@U123&gt;');
    expect(all).toContain('&lt;https://evil.example|click&gt;');
    expect(all).toContain('echo ˋˋˋ &amp;&amp; echo ˋidˋ &gt; /tmp/x');
    expect(all).not.toContain('\u202e');
  });

  it('keeps an incident with 500 signals and everything oversized within Slack limits, with "and N more"', () => {
    const inc = hugeIncident();
    const m = formatIncident(inc, { apiBaseUrl: API });
    expectWithinLimits(m, 9000);
    const all = texts(m)
      .map((t) => t.text)
      .join('\n');
    expect(all).toContain('… and 492 more signals');
    expect(all).toMatch(/and \d+ more remediations/);
    expect(all).toMatch(/Workloads: .* and \d+ more/);
    const header = m.blocks[0];
    expect(header?.type === 'header' && header.text.text.endsWith('…')).toBe(true);
    // Commands are shown whole or not at all: a cut command is dangerous to paste.
    for (const t of texts(m)) for (const block of t.text.match(/```[\s\S]*?```/g) ?? []) if (block.includes('kubectl')) expect(block).not.toContain('…');
    expectWithinLimits(formatCompact(inc, { apiBaseUrl: API }), 4000);
    expectWithinLimits(formatResolved({ ...inc, status: 'resolved', resolvedAt: T0 }), 4000);
    expectWithinLimits(formatEvidence(inc, describeChange(snapshotOf({ ...inc, version: 1, lastSeen: T0 + 100_000, correlations: [] }, []), inc)), 6000);
  });

  it('picks the key timeline entries: the first, every kind, the most severe; in time order', () => {
    const timeline = Array.from({ length: 50 }, (_, i) => entry(i));
    const key = keyTimeline(timeline, 8);
    expect(key).toHaveLength(8);
    expect(key[0]).toBe(timeline[0]);
    expect(new Set(key.map((e) => e.kind)).size).toBe(5);
    expect(key.map((e) => e.time)).toEqual([...key.map((e) => e.time)].sort((a, b) => a - b));
    expect(key.filter((e) => e.severity === 'critical').length).toBeGreaterThanOrEqual(3);
    expect(keyTimeline(timeline.slice(0, 3), 8)).toEqual(timeline.slice(0, 3));
  });
});

describe('formatResolved, formatDigest', () => {
  it('gives a resolved incident a short form with how it ended', () => {
    const inc = makeIncident('inc_r', { status: 'resolved', resolution: 'merged', mergedInto: 'inc_other', resolvedAt: T0 + 60_000 });
    const m = formatIncident(inc, { apiBaseUrl: API });
    expectWithinLimits(m, 3000);
    expect(m.blocks[0]).toMatchObject({ type: 'header', text: { text: `:white_check_mark: RESOLVED · ${inc.title}` } });
    const all = texts(m)
      .map((t) => t.text)
      .join('\n');
    expect(all).toContain('merged into another incident');
    expect(all).toContain(`<${API}/api/v1/incidents/inc_other|inc_other>`);
    expect(m.text).toContain('Resolved (merged into another incident)');
  });

  it('turns a burst into one message, most severe first, cut with "and N more"', () => {
    const items = Array.from({ length: 200 }, (_, i) => {
      const incident = makeIncident(`inc_${String(i).padStart(3, '0')}`, { severity: SEVERITIES[i % 5]!, title: `incident ${i} ${'t'.repeat(400)}` });
      return { incident, change: describeChange(undefined, incident) };
    });
    const m = formatDigest(items, { apiBaseUrl: API });
    expectWithinLimits(m, 9000);
    expectInert(m);
    expect(m.blocks[0]).toMatchObject({
      type: 'header',
      text: { text: ':rotating_light: 200 new incidents (40 critical, 40 high, 40 medium, 40 low, 40 info)' },
    });
    const lines = m.blocks.filter((b) => b.type === 'context' && b.elements.length === 2);
    expect(lines[0]).toMatchObject({ elements: [{ text: expect.stringContaining('CRITICAL') }, {}] });
    expect(texts(m).at(-1)!.text).toMatch(/^… and \d+ more$/);
  });
});

describe('the README example', () => {
  it('is a message within the limits, inert, with the demo incident in it', () => {
    const readme = readFileSync(new URL('./README.md', import.meta.url), 'utf8');
    const json = /```json\n([\s\S]*?)\n```/.exec(readme)?.[1];
    const m = JSON.parse(json!) as SlackMessage;
    expectWithinLimits(m, 9000);
    expectInert(m);
    expect(JSON.stringify(m)).toContain('kubectl delete clusterrolebinding frontend-secrets-reader');
  });
});
