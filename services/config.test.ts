import { availableParallelism } from 'node:os';
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

  it('detects on one worker thread when it may use two CPUs or more, unless KUBEVIGIL_WORKERS says otherwise', () => {
    expect(loadConfig({}).workers).toBe(availableParallelism() >= 2 ? 1 : 0);
    expect(loadConfig({ KUBEVIGIL_WORKERS: '0' }).workers).toBe(0);
    expect(loadConfig({ KUBEVIGIL_WORKERS: '3' }).workers).toBe(3);
    expect(() => loadConfig({ KUBEVIGIL_WORKERS: '-1' })).toThrow(/KUBEVIGIL_WORKERS \("-1"\) must be an integer from 0 to 64/);
    expect(() => loadConfig({ KUBEVIGIL_WORKERS: 'all' })).toThrow(/KUBEVIGIL_WORKERS/);
    // auto: one worker with two usable CPUs or more (a container's CPU limit counts), none with one.
    expect(loadConfig({ KUBEVIGIL_WORKERS: 'auto' }).workers).toBe(availableParallelism() >= 2 ? 1 : 0);
  });

  it('sweeps every minute unless KUBEVIGIL_SWEEP_SCHEDULE gives another cron expression', () => {
    expect(loadConfig({}).sweepSchedule).toBe('* * * * *');
    expect(loadConfig({ KUBEVIGIL_SWEEP_SCHEDULE: '*/10 * * * * *' }).sweepSchedule).toBe('*/10 * * * * *');
    expect(() => loadConfig({ KUBEVIGIL_SWEEP_SCHEDULE: 'hourly' })).toThrow(/KUBEVIGIL_SWEEP_SCHEDULE \(hourly\) is not a cron expression/);
  });

  it('sets V8 flags from KUBEVIGIL_V8_FLAGS: by default the throughput flag only for a correlator without the ingest role (request bodies); flags only', () => {
    const distributed = { KAFKA_BROKERS: '127.0.0.1:9092', REDIS_URL: 'redis://127.0.0.1:6379' };
    expect(loadConfig({}).v8Flags).toEqual([]);
    expect(loadConfig({ ...distributed, KUBEVIGIL_ROLES: 'ingest' }).v8Flags).toEqual([]);
    expect(loadConfig({ ...distributed, KUBEVIGIL_ROLES: 'ingest,correlator' }).v8Flags).toEqual([]);
    expect(loadConfig({ ...distributed, KUBEVIGIL_ROLES: 'correlator' }).v8Flags).toEqual(['--external-memory-accounted-in-global-limit']);
    expect(loadConfig({ ...distributed, KUBEVIGIL_ROLES: 'correlator,api,notifier' }).v8Flags).toEqual(['--external-memory-accounted-in-global-limit']);
    expect(loadConfig({ ...distributed, KUBEVIGIL_ROLES: 'api,notifier' }).v8Flags).toEqual([]);
    expect(loadConfig({ ...distributed, KUBEVIGIL_ROLES: 'correlator', KUBEVIGIL_V8_FLAGS: 'none' }).v8Flags).toEqual([]);
    expect(loadConfig({ KUBEVIGIL_V8_FLAGS: 'none' }).v8Flags).toEqual([]);
    expect(loadConfig({ KUBEVIGIL_V8_FLAGS: ' --external-memory-accounted-in-global-limit  --stack-size=2048 ' }).v8Flags).toEqual([
      '--external-memory-accounted-in-global-limit',
      '--stack-size=2048',
    ]);
    expect(() => loadConfig({ KUBEVIGIL_V8_FLAGS: '--ok rm -rf' })).toThrow(
      /KUBEVIGIL_V8_FLAGS \("--ok rm -rf"\): "rm", "-rf" is not a V8 flag; write flags as --name/,
    );
  });

  it('takes the Slack signing secret only as the 32 hex digits Slack gives, never echoing it', () => {
    expect(loadConfig({ KUBEVIGIL_SLACK_SIGNING_SECRET: '8f742231b10e8888abcd990000a85a5e' }).slackSigningSecret).toBe('8f742231b10e8888abcd990000a85a5e');
    expect(loadConfig({}).slackSigningSecret).toBeUndefined();
    expect(() => loadConfig({ KUBEVIGIL_SLACK_SIGNING_SECRET: 'xoxb-not-a-signing-secret' })).toThrow(
      /KUBEVIGIL_SLACK_SIGNING_SECRET \(value hidden, 25 characters\) must be/,
    );
    expect(() => loadConfig({ KUBEVIGIL_SLACK_SIGNING_SECRET: 'xoxb-not-a-signing-secret' })).not.toThrow(/xoxb/);
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

  it('reads KUBEVIGIL_SHUTDOWN_GRACE as a duration (20s by default) and names it when it is not one', () => {
    expect(loadConfig({}).shutdownGraceMs).toBe(20_000);
    expect(loadConfig({ KUBEVIGIL_SHUTDOWN_GRACE: '3s' }).shutdownGraceMs).toBe(3000);
    expect(loadConfig({ KUBEVIGIL_SHUTDOWN_GRACE: '1m' }).shutdownGraceMs).toBe(60_000);
    expect(loadConfig({ KUBEVIGIL_SHUTDOWN_GRACE: '1500ms' }).shutdownGraceMs).toBe(1500);
    expect(loadConfig({ KUBEVIGIL_SHUTDOWN_GRACE: '0' }).shutdownGraceMs).toBe(0);
    for (const bad of ['20', 'soon', '-5s', '1.5s', '11m']) {
      const problems = (() => {
        try {
          loadConfig({ KUBEVIGIL_SHUTDOWN_GRACE: bad });
        } catch (e) {
          return (e as ConfigError).problems;
        }
        return [];
      })();
      expect(problems, bad).toEqual([
        `KUBEVIGIL_SHUTDOWN_GRACE (${JSON.stringify(bad)}) must be a duration such as 20s or 1m, at most 10m; keep it, plus 5 s, below the pod's terminationGracePeriodSeconds (30 s by default)`,
      ]);
    }
  });

  it('checks KUBEVIGIL_METRICS_TOKEN like the other tokens', () => {
    expect(loadConfig({ KUBEVIGIL_METRICS_TOKEN: 'm'.repeat(16) }).metricsToken).toBe('m'.repeat(16));
    expect(loadConfig({}).metricsToken).toBeUndefined();
    expect(() => loadConfig({ KUBEVIGIL_METRICS_TOKEN: 'short' })).toThrow(/KUBEVIGIL_METRICS_TOKEN is 5 characters; use at least 16/);
  });

  it('reads KUBEVIGIL_INGEST_MAX_QUEUE_DELAY as a duration (250ms by default, 0 turns it off) and names it when it is not one', () => {
    expect(loadConfig({}).ingestMaxQueueDelayMs).toBe(250);
    expect(loadConfig({ KUBEVIGIL_INGEST_MAX_QUEUE_DELAY: '200ms' }).ingestMaxQueueDelayMs).toBe(200);
    expect(loadConfig({ KUBEVIGIL_INGEST_MAX_QUEUE_DELAY: '1s' }).ingestMaxQueueDelayMs).toBe(1000);
    expect(loadConfig({ KUBEVIGIL_INGEST_MAX_QUEUE_DELAY: '0' }).ingestMaxQueueDelayMs).toBe(0);
    for (const bad of ['250', 'fast', '5ms', '0.5s', '-1s', '2m']) {
      let problems: string[] = [];
      try {
        loadConfig({ KUBEVIGIL_INGEST_MAX_QUEUE_DELAY: bad });
      } catch (e) {
        problems = (e as ConfigError).problems;
      }
      expect(problems, bad).toEqual([
        `KUBEVIGIL_INGEST_MAX_QUEUE_DELAY (${JSON.stringify(bad)}) must be a duration from 10ms to 60s, such as 250ms or 1s, or 0 to turn queue-delay admission off`,
      ]);
    }
  });

  it('documents every setting in the README (regenerate with node --import tsx scripts/readme-settings.ts)', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    expect(readme).toContain(settingsTable());
    expect(SETTINGS.length).toBeGreaterThan(20);
  });
});
