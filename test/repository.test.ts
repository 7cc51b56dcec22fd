/**
 * The repository stands alone: a user's clone has nothing beside it, so no file in it may refer to a
 * path outside it (a sibling checkout, a workplace folder, a developer's home). Every relative path
 * written in a file is resolved against that file's folder and must stay inside the repository.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Folders that are built, installed or written at run time, never part of a clone. */
const SKIP = new Set(['.git', 'node_modules', 'data', 'coverage', '.cache', 'dist', 'bench/results', 'bench/esper/target']);
/** Strings that look like paths but are attack inputs the tests send on purpose. */
const ATTACK_INPUTS = new Set(['test/helpers/fuzz.ts']);

function* files(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (SKIP.has(relative(ROOT, path))) continue;
    if (entry.isDirectory()) yield* files(path);
    else if (entry.isFile() && statSync(path).size < 4_000_000) yield path;
  }
}

/** Relative paths that climb out of the folder they are written in (one or more `..` segments). */
const CLIMB = /(?<![\w.$/-])((?:\.\.\/)+)([\w.@-]*)/g;
/** Absolute paths into the workplace this repository was developed in. */
const ABSOLUTE = /(?<![\w.])\/work\//g;

/** Every reference in `text` (written in `file`) that leaves the repository, as `line: match`. */
export function outsideReferences(file: string, text: string): string[] {
  const found: string[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    for (const m of line.matchAll(CLIMB)) {
      const target = resolve(dirname(file), m[1]!, m[2]!);
      const rel = relative(ROOT, target);
      if (rel === '..' || rel.startsWith(`..${sep}`)) found.push(`${i + 1}: ${m[0]}`);
    }
    for (const m of line.matchAll(ABSOLUTE)) found.push(`${i + 1}: ${m[0]}`);
  });
  return found;
}

describe('the repository stands alone', () => {
  it('no file refers to a path outside the repository', () => {
    const offenders: Record<string, string[]> = {};
    let scanned = 0;
    for (const file of files(ROOT)) {
      const rel = relative(ROOT, file);
      if (ATTACK_INPUTS.has(rel)) continue;
      const buf = readFileSync(file);
      if (buf.includes(0)) continue; // binary
      scanned++;
      const refs = outsideReferences(file, buf.toString('utf8'));
      if (refs.length) offenders[rel] = refs;
    }
    expect(scanned).toBeGreaterThan(100);
    expect(offenders).toEqual({});
  });

  it('the check itself catches a sibling checkout, a climb from a nested folder and a workplace path', () => {
    // built from parts so that this file does not trip its own check
    const up = '..' + '/';
    const work = '/' + 'work/';
    expect(outsideReferences(join(ROOT, 'README.md'), `see ${up}other-checkout/fixtures`)).toEqual([`1: ${up}other-checkout`]);
    expect(outsideReferences(join(ROOT, 'test/helpers/x.ts'), `new URL('${up}${up}${up}other-checkout/x', u)`)).toEqual([`1: ${up}${up}${up}other-checkout`]);
    expect(outsideReferences(join(ROOT, 'test/helpers/x.ts'), `new URL('${up}fixtures/real/a', u)`)).toEqual([]);
    expect(outsideReferences(join(ROOT, 'rules/detections/a.yaml'), `events_file: ${up}${up}test/fixtures/a`)).toEqual([]);
    expect(outsideReferences(join(ROOT, 'scripts/a.sh'), `cat ${work}other-checkout/x`)).toEqual([`1: ${work}`]);
  });
});
