import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, KubevigilError } from './errors.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const productSources = (dir: string): string[] =>
  readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !/\.(test|contract)\.ts$/.test(e.name))
    .map((e) => readFileSync(join(e.parentPath, e.name), 'utf8'));

describe('the error catalogue', () => {
  it('lists only codes the product raises: no entry outlives its error', () => {
    const text = ['correlator', 'platform', 'connectors', 'services']
      .flatMap(productSources)
      .join('\n')
      .replace(/export const ERROR_CATALOGUE = \{[\s\S]*?\n\} as const/, '');
    const unused = Object.keys(ERROR_CATALOGUE).filter((code) => !text.includes(`'${code}'`));
    expect(unused).toEqual([]);
  });

  it('gives each error the status and retry rule of its code', () => {
    const e = new KubevigilError('BUS_UNAVAILABLE', 'Kafka is down', true, 5);
    expect(e.status).toBe(503);
    expect(ERROR_CATALOGUE.BUS_UNAVAILABLE.retryable).toBe(e.retryable);
    for (const [code, entry] of Object.entries(ERROR_CATALOGUE)) {
      expect(entry.status, code).toBeGreaterThanOrEqual(400);
      expect(entry.what.length, code).toBeGreaterThan(10);
    }
  });
});
