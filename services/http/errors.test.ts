import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { createLogger } from '../logging.js';
import { serve, type Running } from '../main.js';

describe("kubevigil's own errors answer with their catalogued status", () => {
  let kv: Running;
  const dir = mkdtempSync(join(tmpdir(), 'kv-errors-'));
  beforeAll(async () => {
    kv = await serve(loadConfig({ KUBEVIGIL_PORT: '0', KUBEVIGIL_DATA_DIR: dir }), createLogger('silent'), { processMetrics: false, sweepSchedule: false });
  });
  afterAll(async () => {
    await kv.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a store that closed (a process stopping) is a 503 naming its code, not a 500', async () => {
    await kv.store.close();
    const res = await fetch(`${kv.url}/api/v1/incidents`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { title: string; detail: string };
    expect(body.title).toBe('Service Unavailable');
    expect(body.detail).toMatch(/is closed; .*\(STORE_CLOSED\)$/);
  });
});
