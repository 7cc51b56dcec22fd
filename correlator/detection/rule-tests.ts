/**
 * Rule tests, in the spirit of `promtool test rules`: input events → expected signals. A test file
 * sits beside its rule file (`secrets.yaml` ↔ `secrets.test.yaml`); each test lists input events and
 * the signals the file's rules must raise for them — no more, no fewer.
 */
import type { Detector } from './engine.js';
import type { Problem } from './problems.js';
import type { SourceEvent } from './source-event.js';
import type { Signal } from '../signal.js';
import { isObj } from '../json-guards.js';
import { severityRank } from '../severity.js';

/** One expected signal; every field given must match, `count` (default 1) says how many. */
export interface Expectation {
  rule: string;
  count?: number;
  severity?: string;
  kind?: string;
  actor?: string;
  outcome?: string;
  title?: string;
  target?: Record<string, string>;
  entities?: string[];
  attributes?: Record<string, string>;
}

/** A test case after its event files have been read. */
export interface RuleTestCase {
  name: string;
  source: string;
  events: unknown[];
  expect: Expectation[];
  /** Rules (from any file) that must not fire. */
  absent: string[];
  /** A benign twin: no rule of the whole pack may raise a signal of medium severity or above. */
  benign: boolean;
}

/** A rule test file after loading. */
export interface RuleTestFile {
  file: string;
  /** The rule file whose rules this file tests; unexpected signals from those rules fail a test. */
  ruleFile: string;
  tests: RuleTestCase[];
}

/** Outcome of one test case. */
export interface RuleTestResult {
  file: string;
  name: string;
  ok: boolean;
  failures: string[];
  /** The rule (or correlation) ids this test expects to fire: what it is evidence for. */
  expects: string[];
  /** A benign twin (see {@link RuleTestCase.benign}). */
  benign?: boolean;
}

/** Turns one raw input value into normalized source events (per source; wired by the caller). */
export type Decoder = (source: string, value: unknown) => { events: SourceEvent[]; invalid: string[] };

const EXPECT_KEYS = new Set(['rule', 'count', 'severity', 'kind', 'actor', 'outcome', 'title', 'target', 'entities', 'attributes']);

/** Validates a parsed test document; `readEvents` resolves `events_file:` paths relative to the test file. */
export function loadRuleTestFile(file: string, ruleFile: string, doc: unknown, readEvents: (relPath: string) => unknown[], problems: Problem[]): RuleTestFile {
  const out: RuleTestFile = { file, ruleFile, tests: [] };
  const p = (item: string, field: string, message: string) => problems.push({ file, item, field, message });
  if (!isObj(doc) || !Array.isArray(doc.tests)) {
    p('', 'tests', 'a rule test file is a mapping with tests: [ {name, events | events_file, expect} ]');
    return out;
  }
  doc.tests.forEach((t, i) => {
    const item = isObj(t) && typeof t.name === 'string' ? t.name : `tests[${i}]`;
    if (!isObj(t)) return p(item, '', 'a test must be a mapping');
    for (const k of Object.keys(t))
      if (!['name', 'source', 'events', 'events_file', 'expect', 'absent', 'benign'].includes(k)) p(item, k, `unknown key "${k}"`);
    if (typeof t.name !== 'string') p(item, 'name', 'a test needs a name');
    const events: unknown[] = [];
    if (Array.isArray(t.events)) events.push(...t.events);
    else if (t.events !== undefined) p(item, 'events', 'events must be a list of source events');
    if (typeof t.events_file === 'string') {
      try {
        events.push(...readEvents(t.events_file));
      } catch (e) {
        p(item, 'events_file', `cannot read ${t.events_file}: ${(e as Error).message}`);
      }
    }
    if (events.length === 0) p(item, 'events', 'give input events with events: or events_file:');
    const expect: Expectation[] = [];
    if (!Array.isArray(t.expect)) p(item, 'expect', 'expect: must be a list (use [] when nothing may fire)');
    else
      t.expect.forEach((e, j) => {
        if (!isObj(e) || typeof e.rule !== 'string') return p(item, `expect[${j}]`, 'each expectation needs rule: <id>');
        for (const k of Object.keys(e)) if (!EXPECT_KEYS.has(k)) p(item, `expect[${j}].${k}`, `unknown key "${k}"`);
        expect.push(e as unknown as Expectation);
      });
    const absent = Array.isArray(t.absent) ? t.absent.map(String) : [];
    if (t.benign !== undefined && typeof t.benign !== 'boolean') p(item, 'benign', 'benign must be true or false');
    out.tests.push({ name: item, source: typeof t.source === 'string' ? t.source : 'k8s-audit', events, expect, absent, benign: t.benign === true });
  });
  return out;
}

function matches(s: Signal, e: Expectation): boolean {
  if (s.rule.id !== e.rule) return false;
  if (e.severity !== undefined && s.severity !== e.severity) return false;
  if (e.kind !== undefined && s.kind !== e.kind) return false;
  if (e.actor !== undefined && s.actor.key !== e.actor) return false;
  if (e.outcome !== undefined && s.outcome !== e.outcome) return false;
  if (e.title !== undefined && !s.title.includes(e.title)) return false;
  if (e.target) for (const [k, v] of Object.entries(e.target)) if ((s.target as Record<string, unknown>)[k] !== v) return false;
  if (e.entities) for (const x of e.entities) if (!s.entities.includes(x)) return false;
  if (e.attributes) for (const [k, v] of Object.entries(e.attributes)) if (s.attributes[k] !== v) return false;
  return true;
}

const describe = (s: Signal) => `${s.rule.id} (${s.severity}, ${s.kind}, actor ${s.actor.key}, ${s.outcome}): ${s.title}`;

/** Runs every case of a test file against a detector. */
export function runRuleTests(tf: RuleTestFile, detector: Detector, decode: Decoder, rulesOfFile: Set<string>): RuleTestResult[] {
  return tf.tests.map((t) => {
    const failures: string[] = [];
    const signals: Signal[] = [];
    for (const value of t.events) {
      const { events, invalid } = decode(t.source, value);
      for (const r of invalid) failures.push(`input event rejected: ${r}`);
      for (const ev of events) signals.push(...detector.detect(ev));
    }
    // As in the pipeline, a signal id seen before is a duplicate (the same request at another stage).
    const ids = new Set<string>();
    for (let i = signals.length - 1; i >= 0; i--)
      if (ids.has(signals[i]!.id)) signals.splice(i, 1);
      else ids.add(signals[i]!.id);
    const claimed = new Set<Signal>();
    for (const e of t.expect) {
      const want = e.count ?? 1;
      const got = signals.filter((s) => !claimed.has(s) && matches(s, e));
      got.slice(0, want).forEach((s) => claimed.add(s));
      if (got.length !== want) {
        const same = signals.filter((s) => s.rule.id === e.rule);
        failures.push(
          `expected ${want} signal(s) from ${e.rule} matching ${JSON.stringify({ ...e, rule: undefined })}, got ${got.length}` +
            (same.length ? `; ${e.rule} raised: ${same.map(describe).join(' | ')}` : `; ${e.rule} did not fire`),
        );
      }
    }
    for (const s of signals) if (!claimed.has(s) && rulesOfFile.has(s.rule.id)) failures.push(`unexpected signal ${describe(s)}`);
    for (const id of t.absent) for (const s of signals) if (s.rule.id === id) failures.push(`rule ${id} must not fire, but raised ${describe(s)}`);
    if (t.benign) for (const s of signals) if (severityRank(s.severity) >= severityRank('medium')) failures.push(`benign twin raised ${describe(s)}`);
    return {
      file: tf.file,
      name: t.name,
      ok: failures.length === 0,
      failures,
      expects: [...new Set(t.expect.filter((e) => (e.count ?? 1) > 0).map((e) => e.rule))],
      benign: t.benign,
    };
  });
}
