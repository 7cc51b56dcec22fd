/** Incidents as a person reads them on a terminal: the story first, then the evidence and the fix. */
import type { Incident } from '../../correlator/incident.js';
import { terminalSafe } from './terminal.js';

const iso = (t: number) => new Date(t).toISOString().replace('.000Z', 'Z');
/** Where long prose (the root cause, the blast radius) is wrapped. */
const WRAP = 110;

/**
 * Word-wraps text (already terminal-safe) into lines of at most `width` columns: the first after
 * `first`, the others after `rest`; at most `maxLines` lines, the last cut with … if more remains.
 */
export function wrap(text: string, first: string, rest: string, width: number, maxLines: number): string[] {
  const lines: string[] = [];
  let line = '';
  const prefix = () => (lines.length ? rest : first);
  for (const word of text.split(/ +/).filter(Boolean)) {
    if (line && prefix().length + line.length + 1 + word.length > width) {
      lines.push(prefix() + line);
      line = '';
    }
    line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(prefix() + line);
  if (lines.length > maxLines) {
    const kept = lines.slice(0, maxLines);
    kept[maxLines - 1] = `${kept[maxLines - 1]!.slice(0, width - 1)}…`;
    return kept;
  }
  return lines.map((l) => (l.length > width ? `${l.slice(0, width - 1)}…` : l));
}

/** Renders one incident as plain text (attacker-controlled text made terminal-safe). */
export function renderIncident(inc: Incident, width = 160): string {
  const t = (s: string) => terminalSafe(s, width);
  const lines: string[] = [];
  lines.push(`${inc.severity.toUpperCase()}  ${t(inc.title)}`);
  lines.push(`  id ${inc.id}  status ${inc.status}  ${iso(inc.firstSeen)} → ${iso(inc.lastSeen)}  ${inc.signalCount} signals from ${inc.sources.join(', ')}`);
  lines.push(`  actor      ${t(inc.actor.key)}`);
  const br = inc.blastRadius;
  const radius = [
    br.namespaces.length && `namespaces ${br.namespaces.join(', ')}`,
    br.workloads.length && `workloads ${br.workloads.join(', ')}`,
    br.secrets.length && `secrets ${br.secrets.join(', ')}`,
    br.bindings.length && `bindings ${br.bindings.join(', ')}`,
    br.policies.length && `policies ${br.policies.join(', ')}`,
  ].filter(Boolean);
  // The story and its reach are worth reading whole: wrapped, not cut (but bounded, as they carry names from the cluster).
  if (radius.length) lines.push(...wrap(terminalSafe(radius.join('; '), width * 4), '  blast      ', '             ', WRAP, 6));
  lines.push(`  mitre      ${inc.mitre.join(', ')}`);
  lines.push(
    '',
    `ROOT CAUSE (confidence ${inc.rootCause.confidence.toFixed(2)})`,
    ...wrap(terminalSafe(inc.rootCause.summary, width * 6), '  ', '  ', WRAP, 8),
  );
  for (const e of inc.rootCause.evidence) lines.push(`  - [${e.type}] ${t(e.detail)}`);
  if (inc.correlations.length) {
    lines.push('', 'CORRELATIONS');
    for (const c of inc.correlations) lines.push(`  ${iso(c.time)}  ${c.ruleId}: ${t(c.title)} (${c.signalIds.length} signals)`);
  }
  lines.push('', 'TIMELINE');
  for (const e of inc.timeline.slice(0, 40)) lines.push(`  ${iso(e.time)}  ${e.source.padEnd(9)} ${e.kind.padEnd(26)} ${e.outcome.padEnd(7)} ${t(e.title)}`);
  if (inc.timeline.length > 40) lines.push(`  … and ${inc.timeline.length - 40} more`);
  lines.push('', 'REMEDIATIONS (nothing is applied automatically)');
  inc.remediations.forEach((r, i) => {
    lines.push(`  ${i + 1}. ${r.title}`, `     why:  ${r.rationale}`, `     risk: ${r.risk}`);
    for (const c of r.commands) lines.push(`     $ ${c}`);
    for (const m of r.manifests)
      lines.push(
        ...m
          .trimEnd()
          .split('\n')
          .map((l) => `     | ${l}`),
      );
  });
  return lines.join('\n');
}
