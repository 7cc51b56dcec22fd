/** Paths to the test fixtures: real captures from public sources (test/fixtures/real) and the project's own. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Absolute path of a real captured payload under test/fixtures/real (provenance in its SOURCES.md). */
export function realFixture(rel: string): string {
  return fileURLToPath(new URL(`../fixtures/real/${rel}`, import.meta.url));
}

/** Absolute path of a file under test/fixtures. */
export function projectFixture(rel: string): string {
  return fileURLToPath(new URL(`../fixtures/${rel}`, import.meta.url));
}

/** Text of a real captured payload under test/fixtures/real. */
export function readReal(rel: string): string {
  return readFileSync(realFixture(rel), 'utf8');
}
