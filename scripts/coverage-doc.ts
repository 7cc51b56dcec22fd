/** Regenerates docs/coverage.md from rules/peers.yaml, the rules' `peers:` and their tests: `npm run docs:coverage`. */
import { writeFileSync } from 'node:fs';
import { computeCoverage, renderCoverage } from '../services/coverage.js';

if (process.argv[1]?.endsWith('coverage-doc.ts')) {
  const c = computeCoverage();
  writeFileSync(new URL('../docs/coverage.md', import.meta.url), `${renderCoverage(c)}\n`);
  for (const p of c.problems) console.error(p);
  console.log(
    Object.entries(c.totals)
      .map(([s, t]) => `${s} ${t.covered}/${t.total}`)
      .join(', '),
  );
}
