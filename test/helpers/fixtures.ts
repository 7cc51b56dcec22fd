/** Paths to the shared real-payload fixtures (../shared/fixtures beside the repository) and the project's own. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Absolute path of a file under ../shared/fixtures. */
export function sharedFixture(rel: string): string {
  return fileURLToPath(new URL(`../../../shared/fixtures/${rel}`, import.meta.url));
}

/** Absolute path of a file under test/fixtures. */
export function projectFixture(rel: string): string {
  return fileURLToPath(new URL(`../fixtures/${rel}`, import.meta.url));
}

/** Text of a shared fixture. */
export function readShared(rel: string): string {
  return readFileSync(sharedFixture(rel), 'utf8');
}
