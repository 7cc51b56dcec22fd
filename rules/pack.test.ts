import { describe, expect, it } from 'vitest';
import { formatProblem } from '../correlator/detection/problems.js';
import { loadRules, testRules } from '../services/rules.js';

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
