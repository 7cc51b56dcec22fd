/**
 * `kubevigil replay`: offline detection over audit logs. Signals go to stdout (a table on a
 * terminal, JSON lines otherwise); progress and the summary go to stderr in JSON mode so stdout
 * stays machine-readable.
 */
import { readdirSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { AuditFileFollower, readAuditFile } from '../../connectors/k8s-audit/file.js';
import { normalizeAuditEvent } from '../../connectors/k8s-audit/normalize.js';
import type { DecodedBatch } from '../../connectors/k8s-audit/parse.js';
import { isSeverity, SEVERITIES, severityRank } from '../../correlator/severity.js';
import type { Signal } from '../../correlator/signal.js';
import { terminalSafe } from './terminal.js';
import { AuditDedup, auditKeys } from '../../connectors/k8s-audit/audit-dedup.js';
import { learnFrom } from '../sources.js';
import { CorrelationEngine } from '../../correlator/correlation/engine.js';
import { Detector } from '../../correlator/detection/engine.js';
import { RuleSetError } from '../../correlator/detection/problems.js';
import { IncidentManager } from '../../correlator/incidents.js';
import { IdentityBaseline } from '../../correlator/baseline.js';
import type { Incident } from '../../correlator/incident.js';
import { loadRules, SCHEMAS } from '../rules.js';
import { UsageProfiler } from '../usage.js';
import { renderIncident } from './render.js';
import { CliError, describeSystemError, isSystemError, UsageError } from './errors.js';

/** Options of {@link replay}. */
export interface ReplayOptions {
  inputs: string[];
  format: 'table' | 'json';
  follow: boolean;
  minSeverity?: string;
  rulesPaths: string[];
  progress: boolean;
  out?: (line: string) => void;
  err?: (line: string) => void;
}

const AUDIT_FILE = /\.(json|jsonl|ndjson|log)(\.\d+)?$/;

/** How many (auditID, stage, receive time) keys replay remembers to drop repeats: as many as the audit webhook does. */
const DEDUP_ENTRIES = 100_000;

function stat(p: string): Stats {
  try {
    return statSync(p);
  } catch (e) {
    if (isSystemError(e)) throw new CliError(`cannot read ${p}: ${describeSystemError(e)}; give an audit log file, a directory of them, or - for stdin`);
    throw e;
  }
}

/** Files named by the inputs; directories are walked (sorted) for audit-looking files. */
function expand(inputs: string[]): string[] {
  return inputs.flatMap((p): string[] => {
    if (p === '-') return ['-'];
    if (!stat(p).isDirectory()) return [p];
    return readdirSync(p)
      .sort()
      .map((f) => join(p, f))
      .flatMap((f) => (statSync(f).isDirectory() ? expand([f]) : AUDIT_FILE.test(f) ? [f] : []));
  });
}

const COLUMNS: [string, number][] = [
  ['TIME', 24],
  ['SEVERITY', 8],
  ['KIND', 26],
  ['ACTOR', 40],
  ['TARGET', 40],
  ['RULE', 34],
];

function row(cells: string[]): string {
  return cells
    .map((c, i) => terminalSafe(c, COLUMNS[i]![1]).padEnd(COLUMNS[i]![1]))
    .join(' ')
    .trimEnd();
}

function targetOf(s: Signal): string {
  const t = s.target;
  const what = [t.resource, t.subresource].filter(Boolean).join('/');
  const where = [t.namespace, t.name].filter(Boolean).join('/');
  return `${t.verb ?? ''} ${what} ${where}`.trim();
}

/** Runs detection over the inputs and prints; resolves with the exit code. */
export async function replay(o: ReplayOptions): Promise<number> {
  const out = o.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  const err = o.err ?? ((l: string) => process.stderr.write(`${l}\n`));
  if (o.minSeverity !== undefined && !isSeverity(o.minSeverity))
    throw new UsageError(`--min-severity ${o.minSeverity} is not known; use one of ${SEVERITIES.join(', ')}`, 'replay');
  const rules = loadRules(o.rulesPaths);
  if (rules.problems.length) throw new RuleSetError(rules.problems);
  const detector = new Detector(rules.rules, SCHEMAS, { minSeverity: isSeverity(o.minSeverity) ? o.minSeverity : 'info' });
  // Incidents are correlated on event time: the replay clock is the latest event seen.
  let clockNow = 0;
  const usage = new UsageProfiler();
  const manager = new IncidentManager(new CorrelationEngine(rules.correlations), { now: () => clockNow }, {}, usage);
  // Replaying days of logs teaches the baseline what each identity does routinely, as serve does.
  manager.baseline = new IdentityBaseline();
  const incidents = new Map<string, Incident>();
  const files = expand(o.inputs);
  const totalBytes = files.reduce((n, f) => n + (f === '-' ? 0 : statSync(f).size), 0);
  const byKind = new Map<string, number>();
  const bySeverity = new Map<string, number>(SEVERITIES.map((s) => [s, 0]));
  // The apiserver's log and webhook backends repeat events (retries, overlapping files): drop an
  // (auditID, stage, receive time) already seen, with the same bounded memory of keys as the audit webhook.
  const seen = new AuditDedup(DEDUP_ENTRIES);
  let duplicates = 0;
  let events = 0;
  let invalid = 0;
  let signals = 0;
  let doneBytes = 0;
  if (o.format === 'table') out(row(COLUMNS.map(([h]) => h)));

  const handle = (batch: DecodedBatch, where: string) => {
    const now = Date.now();
    events += batch.events.length;
    invalid += batch.invalid.length;
    for (const bad of batch.invalid.slice(0, 5)) err(`${where}: invalid event ${bad.index}: ${terminalSafe(bad.reason, 300)}`);
    // The receiver's own store: nothing here is acknowledged later, so the keys are remembered at once.
    const split = seen.split(auditKeys(batch.events));
    split.remember();
    const fresh = split.fresh.map((i) => batch.events[i]!);
    duplicates += split.duplicates;
    const normalized = fresh.map((ev) => normalizeAuditEvent(ev, now));
    learnFrom(normalized, { usage });
    for (const ev of normalized) {
      const found = detector.detect(ev);
      if (found.length) {
        if (found[0]!.eventTime > clockNow) {
          clockNow = found[0]!.eventTime;
          // Quiet periods pass in event time, so a replayed month does not become one incident.
          for (const inc of manager.sweep()) incidents.set(inc.id, inc);
        }
        for (const inc of manager.process(found).incidents) incidents.set(inc.id, inc);
      }
      for (const s of found) {
        signals++;
        byKind.set(s.kind, (byKind.get(s.kind) ?? 0) + 1);
        bySeverity.set(s.severity, (bySeverity.get(s.severity) ?? 0) + 1);
        if (o.format === 'json') out(JSON.stringify(s));
        else out(row([new Date(s.eventTime).toISOString(), s.severity, s.kind, s.actor.key, targetOf(s), s.rule.id]));
      }
    }
  };

  const showProgress = o.progress && totalBytes > 8 * 1024 * 1024;
  for (const f of files) {
    let fileBytes = 0;
    for await (const chunk of readAuditFile(f)) {
      handle(chunk, f);
      if (showProgress) {
        const pct = Math.min(100, Math.floor(((doneBytes + chunk.bytes) / totalBytes) * 100));
        const bar = '#'.repeat(Math.floor(pct / 4)).padEnd(25, '.');
        process.stderr.write(`\r[${bar}] ${pct}% ${events} events, ${signals} signals`);
      }
      fileBytes = chunk.bytes;
    }
    doneBytes += fileBytes;
  }
  if (showProgress) process.stderr.write('\n');

  const printIncidents = () => {
    const live = [...incidents.values()].filter((i) => i.resolution !== 'merged');
    if (o.format === 'json') for (const i of live) out(JSON.stringify({ incident: i }));
    else {
      out(`\n${live.length} incident(s)\n`);
      for (const i of live) out(`${renderIncident(i)}\n`);
    }
  };

  const summary = () => {
    const sev = SEVERITIES.filter((s) => (bySeverity.get(s) ?? 0) > 0)
      .sort((a, b) => severityRank(b) - severityRank(a))
      .map((s) => `${s} ${bySeverity.get(s)}`)
      .join(', ');
    const kinds = [...byKind.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `  ${String(n).padStart(7)}  ${k}`);
    const say = o.format === 'json' ? err : out;
    const live = [...incidents.values()].filter((i) => i.resolution !== 'merged').length;
    say(`\n${events} events, ${invalid} invalid, ${duplicates} duplicates dropped, ${signals} signals${sev ? ` (${sev})` : ''}, ${live} incident(s)`);
    for (const k of kinds) say(k);
  };

  if (o.follow) {
    const followers = files.filter((f) => f !== '-').map((f) => new AuditFileFollower(f, { fromStart: false }));
    err(`following ${followers.length} file(s); Ctrl-C to stop`);
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        void (async () => {
          for (const fw of followers) handle(await fw.poll(), fw.path);
        })();
      }, 250);
      process.once('SIGINT', () => {
        clearInterval(timer);
        resolve();
      });
    });
    await Promise.all(followers.map((f) => f.close()));
  }
  printIncidents();
  summary();
  return 0;
}
