import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiDocument } from './api/openapi.js';
import { loadConfig } from './config.js';
import { createLogger } from './logging.js';
import { serve, type Running } from './main.js';
import { SOURCE_LIST, SOURCE_REGISTRY, SOURCES } from './sources.js';

describe('the source registry', () => {
  it('declares each source once, under the name its schema has, with its own path and token variable', () => {
    expect(SOURCE_LIST.map((s) => s.name)).toEqual(['k8s-audit', 'alertmanager', 'loki', 'otlp', 'falco']);
    for (const s of SOURCE_LIST) expect(s.descriptor.schema.name, s.name).toBe(s.name);
    expect(new Set(SOURCE_LIST.map((s) => s.path)).size).toBe(SOURCE_LIST.length);
    expect(new Set(SOURCE_LIST.map((s) => s.tokenEnv)).size).toBe(SOURCE_LIST.length);
    expect([...SOURCES.keys()]).toEqual([...SOURCE_REGISTRY.keys()]);
  });

  it('gives the API document one ingest operation per source, from the registry', () => {
    const paths = openApiDocument().paths as Record<string, { post?: { operationId?: string } }>;
    for (const s of SOURCE_LIST) expect(paths[s.path]?.post?.operationId, s.path).toBe(s.openapi.operationId);
  });

  it('reads a token variable per source, each checked like the others', () => {
    const env = Object.fromEntries(SOURCE_LIST.map((s, i) => [s.tokenEnv, `token-of-source-${i}-0123456789`]));
    const config = loadConfig(env);
    for (const [i, s] of SOURCE_LIST.entries()) expect(config.sourceTokens[s.name]).toBe(`token-of-source-${i}-0123456789`);
    expect(() => loadConfig({ [SOURCE_LIST[2]!.tokenEnv]: 'short' })).toThrow(new RegExp(`${SOURCE_LIST[2]!.tokenEnv} is 5 characters`));
  });
});

describe('a source token opens its own receiver only', () => {
  let kv: Running;
  const dir = mkdtempSync(join(tmpdir(), 'kv-sources-'));
  const tokens = Object.fromEntries(SOURCE_LIST.map((s) => [s.name, `only-for-${s.name}-0123456789abcdef`]));
  beforeAll(async () => {
    const env = Object.fromEntries(SOURCE_LIST.map((s) => [s.tokenEnv, tokens[s.name]!]));
    kv = await serve(loadConfig({ ...env, KUBEVIGIL_PORT: '0', KUBEVIGIL_DATA_DIR: dir }), createLogger('silent'), {
      processMetrics: false,
      sweepSchedule: false,
    });
  });
  afterAll(async () => {
    await kv.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lets each source in with its token, and no other source', async () => {
    for (const s of SOURCE_LIST)
      for (const t of SOURCE_LIST) {
        const res = await fetch(`${kv.url}${s.path}`, {
          method: 'POST',
          body: '{}',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[t.name]}` },
        });
        // Past authentication, an empty object is a bad or empty batch: anything but 401.
        if (s === t) expect(res.status, `${t.name}'s token on ${s.path}`).not.toBe(401);
        else expect(res.status, `${t.name}'s token on ${s.path}`).toBe(401);
      }
  });
});
