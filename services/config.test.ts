import { describe, expect, it } from 'vitest';
import { ConfigError } from '../correlator/errors.js';
import { readFileSync } from 'node:fs';
import { loadConfig, SETTINGS } from './config.js';
import { settingsTable } from '../scripts/readme-settings.js';

describe('loadConfig', () => {
  it('uses the embedded defaults', () => {
    expect(loadConfig({})).toMatchObject({
      host: '127.0.0.1',
      port: 8080,
      dataDir: './data',
      maxBodyBytes: 12 * 1024 * 1024,
      minSeverity: 'info',
      insecure: false,
    });
  });

  it('reports every problem at once with the variable, the value and advice', () => {
    let err: ConfigError | undefined;
    try {
      loadConfig({ KUBEVIGIL_PORT: '99999', KUBEVIGIL_MIN_SEVERITY: 'urgent', KUBEVIGIL_MAX_BODY_BYTES: 'lots', KUBEVIGIL_API_TOKEN: 'short' });
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(err!.problems).toEqual([
      expect.stringMatching(/^KUBEVIGIL_PORT \("99999"\) must be an integer from 0 to 65535/),
      expect.stringMatching(/^KUBEVIGIL_API_TOKEN is 5 characters; use at least 16/),
      expect.stringMatching(/^KUBEVIGIL_MIN_SEVERITY \("urgent"\) must be one of/),
      expect.stringMatching(/^KUBEVIGIL_MAX_BODY_BYTES \("lots"\) must be an integer/),
    ]);
  });

  it('refuses to listen beyond loopback without tokens unless told --insecure', () => {
    expect(() => loadConfig({ KUBEVIGIL_HOST: '0.0.0.0' })).toThrow(/beyond loopback, but KUBEVIGIL_INGEST_TOKEN and KUBEVIGIL_API_TOKEN are not set/);
    expect(() => loadConfig({ KUBEVIGIL_HOST: '0.0.0.0', KUBEVIGIL_INGEST_TOKEN: 'x'.repeat(16) })).toThrow(/KUBEVIGIL_API_TOKEN is not set/);
    expect(loadConfig({ KUBEVIGIL_HOST: '0.0.0.0' }, { insecure: true }).insecure).toBe(true);
    expect(loadConfig({ KUBEVIGIL_HOST: '0.0.0.0', KUBEVIGIL_INGEST_TOKEN: 'i'.repeat(16), KUBEVIGIL_API_TOKEN: 'a'.repeat(16) }).host).toBe('0.0.0.0');
  });

  it('documents every setting in the README (regenerate with node --import tsx scripts/readme-settings.ts)', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    expect(readme).toContain(settingsTable());
    expect(SETTINGS.length).toBeGreaterThan(20);
  });
});
