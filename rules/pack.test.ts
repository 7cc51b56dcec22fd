import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CorrelationEngine } from '../correlator/correlation/engine.js';
import { Detector } from '../correlator/detection/engine.js';
import { formatProblem } from '../correlator/detection/problems.js';
import { IncidentManager } from '../correlator/incidents.js';
import { severityRank } from '../correlator/severity.js';
import { decodeForTests, loadRules, SCHEMAS, testRules } from '../services/rules.js';

describe('the shipped rule pack', () => {
  it('lints clean', () => {
    const r = loadRules();
    expect(r.problems.map(formatProblem)).toEqual([]);
    expect(r.rules.length).toBeGreaterThan(0);
  });

  it('passes its own rule tests, and every rule file and rule is tested', () => {
    const r = testRules();
    expect(r.problems.map(formatProblem)).toEqual([]);
    expect(r.untested).toEqual([]);
    const failed = r.results.filter((t) => !t.ok).map((t) => `${t.file}: ${t.name}: ${t.failures.join('; ')}`);
    expect(failed).toEqual([]);
    expect(r.results.length).toBeGreaterThan(0);
  });
});

describe('benign twins through the whole pipeline', () => {
  it('every benign twin of the pack opens no incident of medium severity or above', () => {
    const rules = loadRules();
    const detector = new Detector(rules.rules, SCHEMAS);
    const dir = fileURLToPath(new URL('./detections/', import.meta.url));
    const twins: { name: string; source: string; events: unknown[] }[] = [];
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.test.yaml'))) {
      const doc = parse(readFileSync(join(dir, f), 'utf8')) as { tests: { name: string; source?: string; benign?: boolean; events?: unknown[] }[] };
      for (const t of doc.tests) if (t.benign && t.events) twins.push({ name: `${f}: ${t.name}`, source: t.source ?? 'k8s-audit', events: t.events });
    }
    expect(twins.length).toBeGreaterThanOrEqual(10);
    for (const twin of twins) {
      let now = Date.UTC(2026, 11, 6, 9);
      const manager = new IncidentManager(new CorrelationEngine(rules.correlations), { now: () => now });
      const opened: string[] = [];
      for (const value of twin.events) {
        now += 1000;
        const { events } = decodeForTests(twin.source, value);
        const { incidents } = manager.process(events.flatMap((e) => detector.detect(e)));
        for (const inc of incidents) if (severityRank(inc.severity) >= severityRank('medium')) opened.push(`${inc.severity}: ${inc.title}`);
      }
      expect(opened, twin.name).toEqual([]);
    }
  });
});
