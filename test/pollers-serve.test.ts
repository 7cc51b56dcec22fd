/**
 * The pollers as `serve` wires them: a failed Loki or Tempo poll is counted in /metrics by source
 * and reason and logged once with its reason, and a good poll is counted as such — a poller that
 * fails in silence would leave a blind spot nobody sees.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../services/config.js';
import { createLogger } from '../services/logging.js';
import { serve, type Running } from '../services/main.js';
import { startLokiStandin, type LokiStandin } from './helpers/loki-standin.js';
import { startTempoStandin, type TempoStandin } from './helpers/tempo-standin.js';

interface LogLine {
  level: number;
  msg: string;
  source?: string;
  reason?: string;
  query?: string;
}

describe('kubevigil serve with the Loki and Tempo pollers', () => {
  let kv: Running;
  let loki: LokiStandin;
  let tempo: TempoStandin;
  const dir = mkdtempSync(join(tmpdir(), 'kv-pollers-'));
  const logs: LogLine[] = [];
  beforeAll(async () => {
    loki = await startLokiStandin();
    tempo = await startTempoStandin();
    // The first Loki poll is refused (500), the first Tempo search too; the next ones succeed.
    loki.failNext(1, 500);
    tempo.failNext('/api/search', 500, 1);
    const config = loadConfig({
      KUBEVIGIL_PORT: '0',
      KUBEVIGIL_DATA_DIR: dir,
      LOKI_URL: loki.url,
      LOKI_QUERIES: JSON.stringify([{ name: 'istio', query: '{container="istio-proxy"}' }]),
      LOKI_POLL_SCHEDULE: '* * * * * *',
      TEMPO_URL: tempo.url,
      TEMPO_QUERIES: '{ span.http.response.status_code = 403 }',
      TEMPO_POLL_SCHEDULE: '* * * * * *',
    });
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line) as LogLine);
        done();
      },
    });
    kv = await serve(config, createLogger('info', sink), { processMetrics: false });
  });
  afterAll(async () => {
    await kv.stop();
    await loki.close();
    await tempo.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The value of one series in /metrics, 0 when absent. */
  async function series(name: string, labels: string): Promise<number> {
    const text = await (await fetch(`${kv.url}/metrics`)).text();
    const m = new RegExp(`^${name}\\{${labels}\\} (\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  }

  /** Waits until `check` holds, re-reading on each poll the pollers make (a second apart). */
  async function until(what: string, check: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('counts and logs a failed Loki poll, then counts the good ones', async () => {
    await until('a failed Loki poll', async () => (await series('kubevigil_poller_errors_total', 'source="loki",reason="server"')) >= 1);
    expect(await series('kubevigil_poller_polls_total', 'source="loki",outcome="error"')).toBe(1);
    const warned = logs.filter((l) => l.msg === 'loki poll failed');
    expect(warned).toEqual([expect.objectContaining({ level: 40, source: 'loki', reason: 'server', query: 'istio' })]);
    await until('a good Loki poll', async () => (await series('kubevigil_poller_polls_total', 'source="loki",outcome="ok"')) >= 1);
  });

  it('counts and logs a failed Tempo search, then counts the good polls', async () => {
    await until('a failed Tempo search', async () => (await series('kubevigil_poller_errors_total', 'source="otlp",reason="search"')) >= 1);
    expect(logs.filter((l) => l.msg === 'tempo poll failed')).toEqual([expect.objectContaining({ level: 40, source: 'otlp', reason: 'search' })]);
    await until('a good Tempo poll', async () => (await series('kubevigil_poller_polls_total', 'source="otlp",outcome="ok"')) >= 1);
  });
});
