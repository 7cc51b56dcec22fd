/**
 * Loading rule packs from disk: the shipped pack in `rules/detections/` plus the user's own
 * directories (`KUBEVIGIL_RULES_DIR`), which may add rules, extend lists, add exceptions and
 * override shipped rules without editing them. YAML syntax errors become problems like any other.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { compileCorrelations, type CompiledCorrelation } from '../correlator/correlation/rules.js';
import { loadCorrelationTests, runCorrelationTests } from '../correlator/correlation/rule-tests.js';
import { compileRules, type CompileResult, type RuleFileInput } from '../correlator/detection/compile.js';
import { Detector, type DetectorOptions } from '../correlator/detection/engine.js';
import { RuleSetError, type Problem } from '../correlator/detection/problems.js';
import { loadRuleTestFile, runRuleTests, type Decoder, type RuleTestResult } from '../correlator/detection/rule-tests.js';
import type { SourceSchema } from '../correlator/detection/source-event.js';
import { PACKAGE_ROOT } from './package-info.js';
import { SOURCES } from './sources.js';
import { isObj } from '../correlator/json-guards.js';

/** The shipped detection pack. */
export const SHIPPED_DETECTIONS = join(PACKAGE_ROOT, 'rules/detections');
/** The shipped correlation pack. */
export const SHIPPED_CORRELATIONS = join(PACKAGE_ROOT, 'rules/correlations');

/** Every source schema detection knows about. */
export const SCHEMAS: SourceSchema[] = [...SOURCES.values()].map((s) => s.schema);

const isRuleFile = (f: string) => /\.ya?ml$/.test(f) && !/\.test\.ya?ml$/.test(f);

/** Files under a path (a file or a directory, not recursive), sorted for a stable load order. */
function listFiles(path: string, want: (f: string) => boolean): string[] {
  if (!existsSync(path)) return [];
  if (statSync(path).isFile()) return want(path) ? [path] : [];
  return readdirSync(path)
    .filter(want)
    .sort()
    .map((f) => join(path, f));
}

/** Reads and parses YAML; syntax errors are reported as problems with line and column. */
export function readYaml(file: string, problems: Problem[]): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    problems.push({ file, field: '(file)', message: `cannot read: ${(e as Error).message}` });
    return undefined;
  }
  const docs = parseAllDocuments(text, { prettyErrors: true });
  const list = Array.isArray(docs) ? docs : [docs];
  if (list.length > 1) problems.push({ file, field: '(file)', message: 'one YAML document per file, please (found a --- separator)' });
  const doc = list[0];
  if (!doc) return undefined;
  for (const e of doc.errors) problems.push({ file, field: `line ${e.linePos?.[0]?.line ?? '?'}`, message: e.message.split('\n')[0] ?? e.message });
  return doc.errors.length ? undefined : doc.toJS({ maxAliasCount: 100 });
}

/** Every rule file, split into detection and correlation files by their top-level key. */
export interface RuleFiles {
  detection: RuleFileInput[];
  correlation: RuleFileInput[];
}

/** Reads the shipped packs and the extra paths, in load order. */
export function readRuleFiles(extraPaths: string[] = [], problems: Problem[] = [], includeShipped = true): RuleFiles {
  const dirs = [...(includeShipped ? [SHIPPED_DETECTIONS, SHIPPED_CORRELATIONS] : []), ...extraPaths.map((p) => resolve(p))];
  const out: RuleFiles = { detection: [], correlation: [] };
  for (const file of dirs.flatMap((d) => listFiles(d, isRuleFile))) {
    const doc = readYaml(file, problems);
    (isObj(doc) && 'correlations' in doc ? out.correlation : out.detection).push({ file, doc });
  }
  return out;
}

/** Detection rules, correlations, and every problem found in either. */
export interface LoadedRules extends CompileResult {
  correlations: CompiledCorrelation[];
  /** The detection files as read (plain data): detection worker threads compile the very same rules from them. */
  detectionFiles?: RuleFileInput[];
}

/** Loads, validates and compiles rules; every problem is returned (lint) rather than thrown. */
export function loadRules(extraPaths: string[] = [], includeShipped = true): LoadedRules {
  const problems: Problem[] = [];
  const files = readRuleFiles(extraPaths, problems, includeShipped);
  const result = compileRules(files.detection, SCHEMAS);
  const ids = new Set([...result.rules.map((r) => r.id), ...result.disabled]);
  const corr = compileCorrelations(files.correlation, ids);
  return { ...result, correlations: corr.correlations, problems: [...problems, ...result.problems, ...corr.problems], detectionFiles: files.detection };
}

/** Loads rules and builds a detector; throws {@link RuleSetError} listing every problem. */
export function loadDetector(extraPaths: string[] = [], opts: DetectorOptions = {}): Detector {
  const r = loadRules(extraPaths);
  if (r.problems.length) throw new RuleSetError(r.problems);
  return new Detector(r.rules, SCHEMAS, opts);
}

/** Decodes test inputs per source with the same code the receivers use. */
export const decodeForTests: Decoder = (source, value) => {
  const s = SOURCES.get(source);
  if (!s) return { events: [], invalid: [`unknown source ${source}; known: ${[...SOURCES.keys()].join(', ')}`] };
  return s.decode(value, 0);
};

/** Reads an events file: JSON lines, a JSON array/EventList, or YAML. */
function readEventsFile(path: string): unknown[] {
  const text = readFileSync(path, 'utf8');
  const trimmed = text.trim();
  if (/\.ya?ml$/.test(path)) return [readYaml(path, [])];
  try {
    return [JSON.parse(trimmed)];
  } catch {
    return trimmed
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as unknown);
  }
}

/** Runs the rule tests beside the given rule paths (default: the shipped packs). */
export function testRules(extraPaths: string[] = [], includeShipped = true): { results: RuleTestResult[]; problems: Problem[]; untested: string[] } {
  const compiled = loadRules(extraPaths, includeShipped);
  const problems = [...compiled.problems];
  const detector = new Detector(compiled.rules, SCHEMAS);
  const dirs = [...(includeShipped ? [SHIPPED_DETECTIONS, SHIPPED_CORRELATIONS] : []), ...extraPaths.map((p) => resolve(p))];
  const results: RuleTestResult[] = [];
  const untested: string[] = [];
  for (const dir of dirs) {
    for (const ruleFile of listFiles(dir, isRuleFile)) {
      const testFile = ruleFile.replace(/\.ya?ml$/, '.test.yaml');
      const detIds = compiled.rules.filter((r) => r.file === ruleFile).map((r) => r.id);
      const corrIds = compiled.correlations.filter((c) => c.file === ruleFile).map((c) => c.id);
      const ids = new Set([...detIds, ...corrIds]);
      if (!existsSync(testFile)) {
        if (ids.size) untested.push(ruleFile);
        continue;
      }
      const doc = readYaml(testFile, problems);
      let covered: Set<string>;
      if (corrIds.length) {
        const cases = loadCorrelationTests(testFile, doc, problems);
        results.push(...runCorrelationTests(testFile, cases, compiled.correlations));
        covered = new Set(cases.flatMap((t) => t.expect.flatMap((e) => e.correlations ?? [])));
      } else {
        const tf = loadRuleTestFile(testFile, ruleFile, doc, (rel) => readEventsFile(resolve(dirname(testFile), rel)), problems);
        results.push(...runRuleTests(tf, detector, decodeForTests, ids));
        covered = new Set(tf.tests.flatMap((t) => t.expect.map((e) => e.rule)));
      }
      // Every rule of the file must be exercised by at least one expectation.
      for (const id of ids)
        if (!covered.has(id))
          problems.push({ file: testFile, item: id, field: 'expect', message: `rule ${id} of ${basename(ruleFile)} has no test that expects it to fire` });
    }
  }
  return { results, problems, untested };
}
