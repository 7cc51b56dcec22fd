/**
 * Incidents as Slack Block Kit messages: pure functions, no I/O (the senders only send). Every
 * message stays within Slack's limits (blocks, characters per text object, total size) by cutting
 * lists with "and N more", and every attacker-controlled string is made inert (see `escape.ts`):
 * prose goes into `plain_text` objects, identifiers into code spans, commands into code blocks.
 */
import type { Incident, Remediation, TimelineEntry } from '../../../correlator/incident.js';
import { severityRank, type Severity } from '../../../correlator/severity.js';
import type { IncidentChange } from '../changes.js';
import { codeBlock, escapeClipped, escapeText, inlineCode, link } from './escape.js';

/** A `plain_text` text object. */
export interface PlainText {
  type: 'plain_text';
  text: string;
  emoji?: boolean;
}

/** A `mrkdwn` text object; `verbatim` stops Slack from turning bare URLs and names into links. */
export interface Mrkdwn {
  type: 'mrkdwn';
  text: string;
  verbatim?: boolean;
}

/** A Block Kit text object. */
export type TextObject = PlainText | Mrkdwn;

/** The Block Kit blocks kubevigil sends. */
export type Block =
  | { type: 'header'; text: PlainText }
  | { type: 'section'; text?: TextObject; fields?: TextObject[] }
  | { type: 'context'; elements: TextObject[] }
  | { type: 'divider' }
  | { type: 'actions'; block_id: string; elements: Button[] };

/** A Block Kit button; `value` (at most 2000 characters) comes back in the block_actions payload. */
export interface Button {
  type: 'button';
  action_id: string;
  text: PlainText;
  value: string;
  style?: 'primary' | 'danger';
}

/** The `action_id`s of the incident buttons (POST /slack/interactions dispatches on them). */
export const ACTION_IDS = { ack: 'kubevigil_ack', resolve: 'kubevigil_resolve', assign: 'kubevigil_assign', mute: 'kubevigil_mute' } as const;

/** A message: blocks, and the plain `text` Slack shows in notifications and where blocks cannot be shown. */
export interface SlackMessage {
  text: string;
  blocks: Block[];
}

/** Slack's documented limits (Block Kit reference; chat.postMessage / chat.update). */
export const SLACK_LIMITS = {
  blocks: 50,
  headerText: 150,
  sectionText: 3000,
  fields: 10,
  fieldText: 2000,
  contextElements: 10,
  /** `msg_too_long`: "The text field cannot exceed 4,000 characters". */
  messageText: 4000,
  /** Slack rejects messages of roughly 12k characters of block text (`msg_blocks_too_long`). */
  totalBlockText: 12_000,
} as const;

/** Options of the formatters. */
export interface FormatOptions {
  /** The API's public base URL; links to the incident are left out without it. */
  apiBaseUrl?: string;
  /** Block text budget for the whole message, well under {@link SLACK_LIMITS.totalBlockText}. */
  maxChars?: number;
  /** Timeline entries shown. */
  maxTimeline?: number;
  /** Adds the action buttons (bot messages, with POST /slack/interactions configured). */
  actions?: boolean;
}

const DEFAULT_MAX_CHARS = 9000;
const SEVERITY_EMOJI: Record<Severity, string> = {
  critical: ':red_circle:',
  high: ':large_orange_circle:',
  medium: ':large_yellow_circle:',
  low: ':large_blue_circle:',
  info: ':white_circle:',
};
const RESOLUTION_TEXT: Record<NonNullable<Incident['resolution']>, string> = {
  manual: 'resolved by a person',
  quiet: 'resolved after a quiet period',
  lifetime: 'closed at its maximum lifetime',
  merged: 'merged into another incident',
  evicted: 'closed early: kubevigil was holding its maximum of open incidents',
};
const MANIFEST_INLINE_CHARS = 700;
const MANIFEST_INLINE_LINES = 30;

/** The API URL of an incident. */
export function incidentUrl(apiBaseUrl: string, id: string): string {
  return `${apiBaseUrl.replace(/\/+$/, '')}/api/v1/incidents/${encodeURIComponent(id)}`;
}

/** Total characters of text in a message's blocks (what Slack's size limit counts). */
export function blockTextLength(blocks: readonly Block[]): number {
  let n = 0;
  for (const b of blocks) {
    if (b.type === 'header') n += b.text.text.length;
    else if (b.type === 'section') n += (b.text?.text.length ?? 0) + (b.fields ?? []).reduce((s, f) => s + f.text.length, 0);
    else if (b.type === 'context') n += b.elements.reduce((s, e) => s + e.text.length, 0);
    else if (b.type === 'actions') n += b.elements.reduce((s, e) => s + e.text.text.length, 0);
  }
  return n;
}

const plain = (raw: string, max: number = SLACK_LIMITS.sectionText): PlainText => ({
  type: 'plain_text',
  text: escapeClipped(raw.trim() === '' ? '-' : raw, max),
  emoji: false,
});
/** mrkdwn whose text is already safe (built from escaped parts). */
const md = (safe: string): Mrkdwn => ({ type: 'mrkdwn', text: safe, verbatim: true });
const section = (text: TextObject): Block => ({ type: 'section', text });
const context = (...elements: TextObject[]): Block => ({ type: 'context', elements: elements.slice(0, SLACK_LIMITS.contextElements) });
const divider: Block = { type: 'divider' };

/** Blocks added while a character and block budget lasts; `reserve` keeps room for what must close the message. */
class Budget {
  readonly blocks: Block[] = [];
  private chars = 0;

  constructor(
    private readonly maxBlocks: number,
    private readonly maxChars: number,
  ) {}

  /** Adds the blocks if they fit with `reserveBlocks`/`reserveChars` left over; reports whether they did. */
  add(blocks: Block[], reserveBlocks = 0, reserveChars = 0): boolean {
    const chars = blockTextLength(blocks);
    if (this.blocks.length + blocks.length + reserveBlocks > this.maxBlocks || this.chars + chars + reserveChars > this.maxChars) return false;
    this.blocks.push(...blocks);
    this.chars += chars;
    return true;
  }

  /** Characters still free. */
  get left(): number {
    return this.maxChars - this.chars;
  }
}

const iso = (t: number): string =>
  new Date(t)
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace('T', ' ');
const clock = (t: number): string => new Date(t).toISOString().slice(11, 19);

/** Joins escaped items, at most `max` characters, ending with "and N more" when cut. */
function listWithin(items: string[], max: number, sep = ', '): string {
  let out = '';
  for (let i = 0; i < items.length; i++) {
    const next = (i === 0 ? '' : sep) + items[i]!;
    const after = items.length - i - 1;
    const suffix = after > 0 ? ` and ${after} more` : '';
    if (out.length + next.length + suffix.length > max) return out === '' ? `${items.length} items` : `${out} and ${items.length - i} more`;
    out += next;
  }
  return out;
}

function headerText(prefix: string, title: string): PlainText {
  // The prefix is ours; only the title needs escaping, and the header's limit counts both.
  return { type: 'plain_text', text: `${prefix}${escapeClipped(title, SLACK_LIMITS.headerText - prefix.length)}`, emoji: true };
}

const severityLabel = (s: Severity): string => `${SEVERITY_EMOJI[s]} ${s.toUpperCase()}`;

/** The timeline entries worth showing: the first, then one per kind by severity, then the most severe; in time order. */
export function keyTimeline(timeline: readonly TimelineEntry[], max: number): TimelineEntry[] {
  if (timeline.length <= max) return [...timeline];
  const picked = new Set<TimelineEntry>();
  if (timeline[0]) picked.add(timeline[0]);
  const bySeverity = [...timeline].sort((a, b) => severityRank(b.severity) - severityRank(a.severity) || a.time - b.time);
  const kinds = new Set<string>([...picked].map((e) => e.kind));
  for (const e of bySeverity) {
    if (picked.size >= max) break;
    if (!kinds.has(e.kind)) {
      kinds.add(e.kind);
      picked.add(e);
    }
  }
  for (const e of bySeverity) {
    if (picked.size >= max) break;
    picked.add(e);
  }
  return timeline.filter((e) => picked.has(e));
}

function timelineLine(e: TimelineEntry, multiDay: boolean): string {
  const when = multiDay ? iso(e.time) : `${clock(e.time)}Z`;
  return `${when} · ${e.source} · ${e.severity.toUpperCase()} · ${e.kind} · ${e.outcome} · ${e.title}`;
}

function factFields(inc: Incident): Mrkdwn[] {
  const sameDay = iso(inc.firstSeen).slice(0, 10) === iso(inc.lastSeen).slice(0, 10);
  const seen = sameDay ? `${iso(inc.firstSeen)} → ${clock(inc.lastSeen)}Z` : `${iso(inc.firstSeen)} → ${iso(inc.lastSeen)}`;
  return [
    md(`*Actor*\n${inlineCode(inc.actor.key, 300)}`),
    md(
      `*Status*\n${escapeText(inc.status)}${inc.status === 'resolved' && inc.resolution ? ` (${RESOLUTION_TEXT[inc.resolution]})` : ''}${inc.assignee ? `, assigned to ${escapeClipped(inc.assignee, 220)}` : ''}`,
    ),
    md(`*Signals*\n${inc.signalCount} from ${escapeText(inc.sources.join(', ') || 'none')}`),
    md(`*Seen*\n${escapeText(seen)}`),
    md(
      `*MITRE ATT&amp;CK*\n${
        listWithin(
          inc.mitre.map((m) => escapeText(m)),
          400,
        ) || '-'
      }`,
    ),
  ];
}

function blastRadiusText(inc: Incident, max: number): string {
  const br = inc.blastRadius;
  const rows: [string, string[]][] = [
    ['Namespaces', br.namespaces],
    ['Workloads', br.workloads],
    ['Secrets', br.secrets],
    ['Bindings', br.bindings],
    ['Policies', br.policies],
  ];
  const shown = rows.filter(([, items]) => items.length > 0);
  if (shown.length === 0) return '*Blast radius*\nnothing recorded beyond the actor';
  const per = Math.floor((max - 20) / shown.length) - 20;
  return `*Blast radius*\n${shown
    .map(
      ([label, items]) =>
        `• ${label}: ${listWithin(
          items.map((i) => inlineCode(i, 160)),
          per,
        )}`,
    )
    .join('\n')}`;
}

/** Whole commands only, as many as fit: half a command is worse than none when pasted into a shell. */
function commandsText(commands: readonly string[], max: number): { text?: string; omitted: number } {
  const kept: string[] = [];
  for (const c of commands) {
    if (codeBlock([...kept, c].join('\n'), Number.MAX_SAFE_INTEGER).length > max) break;
    kept.push(c);
  }
  return { ...(kept.length ? { text: codeBlock(kept.join('\n'), Number.MAX_SAFE_INTEGER) } : {}), omitted: commands.length - kept.length };
}

function remediationBlocks(r: Remediation, n: number, inc: Incident, o: FormatOptions, maxChars: number): Block[] {
  const blocks: Block[] = [];
  const share = (f: number, floor: number) => Math.max(floor, Math.floor(maxChars * f));
  const prose = [
    escapeClipped(`${n}. ${r.title}`, 200),
    `Why: ${escapeClipped(r.rationale, share(0.2, 160))}`,
    `Risk: ${escapeClipped(r.risk, share(0.2, 160))}`,
  ].join('\n');
  blocks.push(section({ type: 'plain_text', text: prose, emoji: false }));
  const where = o.apiBaseUrl ? link(incidentUrl(o.apiBaseUrl, inc.id), 'in the incident') : `in ${inlineCode(`GET /api/v1/incidents/${inc.id}`)}`;
  const notes: string[] = [];
  if (r.commands.length > 0) {
    const { text, omitted } = commandsText(r.commands, Math.min(SLACK_LIMITS.sectionText, share(0.35, 300)));
    if (text) blocks.push(section(md(text)));
    if (omitted > 0) notes.push(`${omitted} more command${omitted > 1 ? 's' : ''}`);
  }
  const linked: string[] = [];
  for (const m of r.manifests) {
    const lines = m.trimEnd().split('\n');
    const name = /^#\s*save as\s+(\S+)/.exec(lines[0] ?? '')?.[1];
    if (m.length <= MANIFEST_INLINE_CHARS && lines.length <= MANIFEST_INLINE_LINES) blocks.push(section(md(codeBlock(m, SLACK_LIMITS.sectionText))));
    else linked.push(`manifest ${name ? inlineCode(name, 120) : ''} (${lines.length} lines)`);
  }
  if (linked.length > 0) notes.push(listWithin(linked, 1200));
  if (notes.length > 0) blocks.push(context(md(`${notes.join('; ')}: ${where} (remediations[${n - 1}])`)));
  return blocks;
}

function footer(inc: Incident, o: FormatOptions): Block {
  const parts = [
    o.apiBaseUrl ? link(incidentUrl(o.apiBaseUrl, inc.id), 'Open the incident') : null,
    inc.cluster ? `cluster ${inlineCode(inc.cluster, 80)}` : null,
    `id ${inlineCode(inc.id, 80)}`,
    `version ${inc.version}`,
    'kubevigil: nothing is applied automatically',
  ];
  return context(md(parts.filter((p): p is string => p !== null).join(' · ')));
}

function changeLine(change: IncidentChange): string | undefined {
  if (change.kind === 'opened') return undefined;
  const parts: string[] = [];
  if (change.severity) parts.push(`severity ${change.severity.from} → ${change.severity.to}`);
  if (change.status) parts.push(`status ${change.status.from} → ${change.status.to}`);
  if (change.newSources.length) parts.push(`new source${change.newSources.length > 1 ? 's' : ''} ${change.newSources.join(', ')}`);
  if (change.newCorrelations.length) parts.push(`${change.newCorrelations.length} new pattern${change.newCorrelations.length > 1 ? 's' : ''}`);
  if (change.newKinds.length) parts.push(`new signal kinds ${change.newKinds.join(', ')}`);
  if (change.addedSignals) parts.push(`+${change.addedSignals} signals`);
  if (change.newRemediations.length) parts.push(`${change.newRemediations.length} new remediation${change.newRemediations.length > 1 ? 's' : ''}`);
  if (parts.length === 0 && change.rootCauseChanged) parts.push('root cause revised');
  return parts.length ? `Updated${change.fromVersion !== undefined ? ` since version ${change.fromVersion}` : ''}: ${parts.join('; ')}` : undefined;
}

/** The plain-text fallback: one line for notifications, escaped, no links. */
function fallbackText(lead: string, inc: Incident, max = 1000): string {
  return escapeClipped(
    `${lead}${inc.cluster ? ` in ${inc.cluster}` : ''}: ${inc.title}. Actor ${inc.actor.key}; ${inc.signalCount} signals. ${inc.rootCause.summary}`,
    max,
  );
}

/** The buttons that apply to the incident's state: none once resolved, no Acknowledge once acknowledged. */
export function actionsBlock(inc: Incident): Block | undefined {
  if (inc.status === 'resolved') return undefined;
  const value = inc.id.slice(0, 2000);
  const button = (id: string, text: string, style?: Button['style']): Button => ({
    type: 'button',
    action_id: id,
    text: { type: 'plain_text', text, emoji: false },
    value,
    ...(style ? { style } : {}),
  });
  const elements: Button[] = [];
  if (inc.status === 'open') elements.push(button(ACTION_IDS.ack, 'Acknowledge', 'primary'));
  elements.push(button(ACTION_IDS.resolve, 'Resolve'));
  elements.push(button(ACTION_IDS.assign, 'Assign to me'));
  elements.push(button(ACTION_IDS.mute, 'Mute actor for 24 h', 'danger'));
  // The block id carries the version, so Slack never reuses the buttons of an older state.
  return { type: 'actions', block_id: `kubevigil_actions_v${inc.version}`, elements };
}

/** The full message of an open or acknowledged incident (a resolved one gets {@link formatResolved}). */
export function formatIncident(inc: Incident, o: FormatOptions = {}, change?: IncidentChange): SlackMessage {
  if (inc.status === 'resolved') return formatResolved(inc, o);
  const actions = o.actions ? actionsBlock(inc) : undefined;
  // The buttons' block and text come off the budget first, so the rest is cut as before.
  const budget = new Budget(SLACK_LIMITS.blocks - (actions ? 1 : 0), (o.maxChars ?? DEFAULT_MAX_CHARS) - (actions ? blockTextLength([actions]) : 0));
  const foot = footer(inc, o);
  const reserveChars = blockTextLength([foot]) + 200;
  budget.add([{ type: 'header', text: headerText(`${severityLabel(inc.severity)} · `, inc.title) }]);
  const updated = change && changeLine(change);
  if (updated) budget.add([context(plain(updated, 600))]);
  budget.add([{ type: 'section', fields: factFields(inc) }, section(md(blastRadiusText(inc, 1500)))], 2, reserveChars);

  const conf = Math.round(inc.rootCause.confidence * 100);
  const evidence = inc.rootCause.evidence.slice(0, 4).map((e) => plain(`${e.type}: ${e.detail}`, 280));
  budget.add([divider, section(md(`*Root cause* · confidence ${conf}%`)), section(plain(inc.rootCause.summary, 1500))], 2, reserveChars);
  if (evidence.length) budget.add([context(...evidence)], 2, reserveChars);

  const shown = keyTimeline(inc.timeline, o.maxTimeline ?? 8);
  const multiDay = iso(inc.firstSeen).slice(0, 10) !== iso(inc.lastSeen).slice(0, 10);
  const omitted = inc.signalCount - shown.length;
  const lines = shown.map((e) => timelineLine(e, multiDay));
  const timelineText = lines.join('\n') + (omitted > 0 ? `\n… and ${omitted} more signals` : '');
  budget.add(
    [
      divider,
      section(md(`*Timeline* · ${shown.length} key signal${shown.length === 1 ? '' : 's'} of ${inc.signalCount}`)),
      section(plain(timelineText, Math.min(2000, Math.max(300, budget.left - reserveChars - 2500)))),
    ],
    2,
    reserveChars,
  );

  if (inc.remediations.length) {
    budget.add([divider, section(md(`*Suggested remediations* · ${inc.remediations.length}, in order; review before running`))], 2, reserveChars);
    let added = 0;
    // Room for the "and N more" line that follows when not all fit.
    const reserveMore = reserveChars + 800;
    for (const [i, r] of inc.remediations.entries()) {
      const left = inc.remediations.length - i;
      const blocks = remediationBlocks(r, i + 1, inc, o, Math.max(600, Math.floor((budget.left - reserveMore) / left)));
      if (!budget.add(blocks, 2, left > 1 ? reserveMore : reserveChars)) break;
      added++;
    }
    if (added < inc.remediations.length) {
      const rest = inc.remediations.slice(added).map((r) => r.title);
      const where = o.apiBaseUrl ? `: ${link(incidentUrl(o.apiBaseUrl, inc.id), 'see the incident')}` : '';
      budget.add([context(md(`…and ${rest.length} more remediation${rest.length > 1 ? 's' : ''}${where}`), plain(rest.join('; '), 600))], 1);
    }
  }
  budget.add([foot]);
  return { text: fallbackText(`${inc.severity.toUpperCase()} incident`, inc), blocks: actions ? [...budget.blocks, actions] : budget.blocks };
}

/** The short form of a resolved incident: what it was, how it ended, and where to read it. */
export function formatResolved(inc: Incident, o: FormatOptions = {}): SlackMessage {
  const how = inc.resolution ? RESOLUTION_TEXT[inc.resolution] : 'resolved';
  const blocks: Block[] = [
    { type: 'header', text: headerText(':white_check_mark: RESOLVED · ', inc.title) },
    {
      type: 'section',
      fields: [
        md(`*Severity*\n${escapeText(inc.severity)}`),
        md(`*Actor*\n${inlineCode(inc.actor.key, 300)}`),
        md(`*Signals*\n${inc.signalCount} from ${escapeText(inc.sources.join(', ') || 'none')}`),
        md(`*Resolved*\n${inc.resolvedAt !== undefined ? escapeText(iso(inc.resolvedAt)) : '-'} (${escapeText(how)})`),
      ],
    },
  ];
  if (inc.mergedInto) {
    const target = o.apiBaseUrl ? link(incidentUrl(o.apiBaseUrl, inc.mergedInto), inc.mergedInto) : inlineCode(inc.mergedInto, 80);
    blocks.push(section(md(`Merged into ${target}: follow that incident from now on.`)));
  }
  const note = inc.notes.at(-1);
  if (note) blocks.push(context(plain(`${note.status}${note.by ? ` by ${note.by}` : ''}: ${note.note}`, 1000)));
  blocks.push(section(plain(`Root cause was: ${inc.rootCause.summary}`, 1500)));
  blocks.push(footer(inc, o));
  return { text: escapeClipped(`Resolved (${how}): ${inc.title}`, 1000), blocks };
}

/** The thread reply announcing a resolution (the message itself is replaced by {@link formatResolved}). */
export function formatResolvedReply(inc: Incident, o: FormatOptions = {}): SlackMessage {
  const how = inc.resolution ? RESOLUTION_TEXT[inc.resolution] : 'resolved';
  const when = inc.resolvedAt !== undefined ? ` at ${iso(inc.resolvedAt)}` : '';
  const note = inc.notes.at(-1);
  const blocks: Block[] = [section(md(`:white_check_mark: *Resolved*${escapeText(when)}: ${escapeText(how)}.`))];
  if (note && note.status === 'resolved') blocks.push(context(plain(`${note.by ? `${note.by}: ` : ''}${note.note}`, 1000)));
  blocks.push(footer(inc, o));
  return { text: escapeClipped(`Resolved (${how}): ${inc.title}`, 1000), blocks };
}

/** A short form of an open incident, sent when Slack refuses the full one as too long. */
export function formatCompact(inc: Incident, o: FormatOptions = {}): SlackMessage {
  if (inc.status === 'resolved') return formatResolved(inc, o);
  const blocks: Block[] = [
    { type: 'header', text: headerText(`${severityLabel(inc.severity)} · `, inc.title) },
    { type: 'section', fields: factFields(inc).slice(0, 3) },
    section(plain(`Root cause (confidence ${Math.round(inc.rootCause.confidence * 100)}%): ${inc.rootCause.summary}`, 1200)),
    context(plain(`${inc.remediations.length} suggested remediation(s): ${inc.remediations.map((r) => r.title).join('; ')}`, 1200)),
    footer(inc, o),
  ];
  const actions = o.actions ? actionsBlock(inc) : undefined;
  if (actions) blocks.push(actions);
  return { text: fallbackText(`${inc.severity.toUpperCase()} incident`, inc, 600), blocks };
}

/** A thread reply for new evidence: what changed, and the signals that arrived since the last message. */
export function formatEvidence(inc: Incident, change: IncidentChange, o: FormatOptions = {}): SlackMessage {
  const lines: string[] = [];
  if (change.severity) lines.push(`Severity ${change.severity.from} → ${change.severity.to}`);
  for (const s of change.newSources) lines.push(`New source: ${s}`);
  for (const c of change.newCorrelations.slice(0, 5)) lines.push(`New pattern: ${c.title}`);
  if (change.newCorrelations.length > 5) lines.push(`… and ${change.newCorrelations.length - 5} more patterns`);
  const fresh = change.since === undefined ? [] : inc.timeline.filter((e) => e.time > change.since!);
  const shown = keyTimeline(fresh, 6);
  const blocks: Block[] = [section(md(`*New evidence* · version ${inc.version}, ${change.addedSignals} new signal${change.addedSignals === 1 ? '' : 's'}`))];
  if (lines.length) blocks.push(section(plain(lines.join('\n'), 1500)));
  if (shown.length) {
    const more = fresh.length - shown.length;
    blocks.push(section(plain(shown.map((e) => timelineLine(e, false)).join('\n') + (more > 0 ? `\n… and ${more} more` : ''), 2000)));
  }
  if (change.newRemediations.length) blocks.push(context(plain(`New remediation: ${change.newRemediations.join('; ')}`, 1000)));
  blocks.push(footer(inc, o));
  return { text: escapeClipped(`New evidence for ${inc.title}: ${lines.join('; ') || `${change.addedSignals} new signals`}`, 1000), blocks };
}

/** One item of a digest. */
export interface DigestItem {
  incident: Incident;
  change: IncidentChange;
}

/** One message for a burst: a line per incident, most severe first, cut with "and N more". */
export function formatDigest(items: readonly DigestItem[], o: FormatOptions = {}): SlackMessage {
  const sorted = [...items].sort(
    (a, b) => severityRank(b.incident.severity) - severityRank(a.incident.severity) || a.incident.firstSeen - b.incident.firstSeen,
  );
  const counts = new Map<Severity, number>();
  for (const { incident } of sorted) counts.set(incident.severity, (counts.get(incident.severity) ?? 0) + 1);
  const bySeverity = [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
  const opened = sorted.filter((i) => i.change.kind === 'opened').length;
  const title = opened === sorted.length ? `${sorted.length} new incidents` : `${sorted.length} incident changes`;
  const budget = new Budget(SLACK_LIMITS.blocks, o.maxChars ?? DEFAULT_MAX_CHARS);
  budget.add([
    { type: 'header', text: { type: 'plain_text', text: `:rotating_light: ${title} (${bySeverity})`.slice(0, SLACK_LIMITS.headerText), emoji: true } },
    context(
      md(
        `Many incidents at once: one line each, most severe first.${o.apiBaseUrl ? ` ${link(`${o.apiBaseUrl.replace(/\/+$/, '')}/api/v1/incidents?status=open`, 'All open incidents')}` : ''}`,
      ),
    ),
  ]);
  let shown = 0;
  for (const { incident: inc, change } of sorted) {
    const state = change.kind === 'opened' ? 'new' : change.kind;
    const ref = o.apiBaseUrl ? link(incidentUrl(o.apiBaseUrl, inc.id), inc.id) : inlineCode(inc.id, 80);
    const line = context(md(`${severityLabel(inc.severity)} · ${state} · ${ref} · ${inlineCode(inc.actor.key, 160)}`), plain(inc.title, 300));
    if (!budget.add([line], 1, 200)) break;
    shown++;
  }
  if (shown < sorted.length) budget.add([context(plain(`… and ${sorted.length - shown} more`, 100))]);
  return {
    text: escapeClipped(
      `kubevigil: ${title} (${bySeverity}): ${sorted
        .slice(0, 3)
        .map((i) => i.incident.title)
        .join('; ')}`,
      1000,
    ),
    blocks: budget.blocks,
  };
}
