import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { computeCoverage, renderCoverage } from '../services/coverage.js';

describe('coverage of the public Kubernetes rule sets', () => {
  const c = computeCoverage();

  it('every peer rule is covered by a tested rule or says why not, and every rule names real peers', () => {
    expect(c.problems).toEqual([]);
  });

  it('covers at least 90% of the four sets together, and of each set', () => {
    let total = 0;
    let covered = 0;
    for (const [set, t] of Object.entries(c.totals)) {
      expect(t.total, `${set} has peer rules`).toBeGreaterThan(0);
      expect(t.covered / t.total, `${set}: ${t.covered}/${t.total}`).toBeGreaterThanOrEqual(0.9);
      total += t.total;
      covered += t.covered;
    }
    expect(covered / total).toBeGreaterThanOrEqual(0.9);
  });

  it('counts a peer as covered only through a passing test that expects its rule to fire', () => {
    for (const r of c.rows.filter((x) => x.covered))
      expect(
        r.by.some((b) => b.tests.length > 0),
        `${r.peer.set}:${r.peer.id}`,
      ).toBe(true);
    // Every rule that fires on an attack case has a benign twin somewhere in its file's tests (checked by
    // the pack test); here: the uncovered ones carry a reason a person can read.
    for (const r of c.rows.filter((x) => !x.covered)) expect(r.peer.notCovered?.length ?? 0, `${r.peer.set}:${r.peer.id}`).toBeGreaterThan(40);
  });

  it('docs/coverage.md is what the catalogue, the rules and their tests generate', () => {
    const committed = readFileSync(new URL('../docs/coverage.md', import.meta.url), 'utf8');
    expect(committed, 'docs/coverage.md is stale: run npm run docs:coverage').toBe(`${renderCoverage(c)}\n`);
  });
});
