/**
 * The image, without Docker: the Dockerfile's runtime stage is read and its steps are run in an empty
 * folder — the production-only install, the copies (dist/ compiled as the build stage does), the
 * entrypoint and the health check — so a broken stage fails here, not in a user's `docker build`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readReal } from './helpers/fixtures.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const INGEST = 'ingest-token-0123456789abcdef';
const API = 'api-token-0123456789abcdef-api';

interface Instruction {
  op: string;
  args: string;
}

/** The Dockerfile's stages by name, each a list of instructions (continuation lines joined). */
function parseDockerfile(text: string): Map<string, Instruction[]> {
  const stages = new Map<string, Instruction[]>();
  let current: Instruction[] | undefined;
  const logical = text.replace(/\\\n\s*/g, ' ').split('\n');
  for (const line of logical) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const [, op, args] = /^(\w+)\s+(.*)$/.exec(t) ?? [];
    if (!op || args === undefined) throw new Error(`cannot read Dockerfile line: ${t}`);
    if (op.toUpperCase() === 'FROM') {
      const name = /\bAS\s+(\S+)/i.exec(args)?.[1] ?? String(stages.size);
      stages.set(name, (current = [{ op: 'FROM', args }]));
    } else current!.push({ op: op.toUpperCase(), args });
  }
  return stages;
}

/** Every file under `dir`, relative to it. */
function listFiles(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(join(dir, e.name), base) : [relative(base, join(dir, e.name))]));
}

const stages = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const runtime = stages.get('runtime') ?? [];
const of = (op: string) => runtime.filter((i) => i.op === op);

describe('Dockerfile', () => {
  it('builds on Node 24 in two stages and runs as a non-root user with a health check', () => {
    expect([...stages.keys()]).toEqual(['build', 'runtime']);
    for (const s of stages.values()) expect(s[0]!.args).toMatch(/^node:24[-.\w]*\s+AS\s+\w+$/i);
    const user = of('USER').at(-1)?.args ?? '';
    expect(user).toMatch(/^\d+:\d+$/);
    expect(user.startsWith('0:')).toBe(false);
    expect(of('HEALTHCHECK')).toHaveLength(1);
    expect(of('RUN').some((r) => /npm ci\b.*--omit=dev/.test(r.args))).toBe(true);
    // Only the compiled output (the service and the console) comes from the build stage: no TypeScript source in the image.
    const copies = of('COPY').map((c) => c.args);
    expect(copies.filter((c) => c.startsWith('--from=')).map((c) => c.split(/\s+/)[1])).toEqual(['/src/dist']);
    expect(copies.some((c) => /^(services|correlator|connectors|platform|console)\b/.test(c))).toBe(false);
    // The build stage builds what `npm run build` builds: the service and the console.
    const build = stages.get('build') ?? [];
    expect(build.filter((i) => i.op === 'COPY').map((c) => c.args)).toContain('console ./console');
    expect(build.some((i) => i.op === 'RUN' && /^npm run build$/.test(i.args))).toBe(true);
  });
});

describe("the runtime stage's steps, run outside Docker", () => {
  const work = mkdtempSync(join(tmpdir(), 'kv-image-'));
  const app = join(work, 'app');
  const data = join(work, 'data');
  let child: ChildProcess | undefined;
  let url = '';
  let before: string[] = [];

  beforeAll(async () => {
    mkdirSync(app);
    for (const { op, args } of runtime) {
      if (op === 'COPY') {
        const parts = args.split(/\s+/);
        const dest = join(app, parts.at(-1)!);
        if (parts[0]!.startsWith('--from=')) {
          // The build stage's `tsc -p tsconfig.build.json` in /src, with its output here.
          const r = spawnSync(
            process.execPath,
            [
              join(ROOT, 'node_modules/typescript/bin/tsc'),
              '-p',
              join(ROOT, 'tsconfig.build.json'),
              '--outDir',
              dest,
              '--incremental',
              'false',
              '--tsBuildInfoFile',
              'null',
            ],
            { encoding: 'utf8', cwd: ROOT },
          );
          expect(r.status, r.stdout + r.stderr).toBe(0);
          // And its `vite build` of the console, into dist/console.
          const v = spawnSync(
            process.execPath,
            [
              join(ROOT, 'node_modules/vite/bin/vite.js'),
              'build',
              '--config',
              join(ROOT, 'console/vite.config.ts'),
              '--outDir',
              join(dest, 'console'),
              '--emptyOutDir',
            ],
            { encoding: 'utf8', cwd: ROOT },
          );
          expect(v.status, v.stdout + v.stderr).toBe(0);
        } else {
          for (const src of parts.slice(0, -1)) cpSync(join(ROOT, src), parts.at(-1)!.endsWith('/') ? join(dest, src) : dest, { recursive: true });
        }
      } else if (op === 'RUN' && !/\s\/(?!dev\/null)\w/.test(args)) {
        // Steps on absolute paths (the /data volume's owner) belong to the image, not to this folder.
        const r = spawnSync('sh', ['-c', args], { cwd: app, encoding: 'utf8', env: { ...process.env, NODE_ENV: 'production' }, timeout: 240_000 });
        expect(r.status, `RUN ${args}\n${r.stdout}${r.stderr}`).toBe(0);
      }
    }
    before = listFiles(app).sort();
    const [cmd, ...entry] = JSON.parse(of('ENTRYPOINT')[0]!.args) as string[];
    const argv = [...entry, ...(JSON.parse(of('CMD')[0]!.args) as string[])];
    expect(cmd).toBe('node');
    child = spawn(process.execPath, argv, {
      cwd: app,
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'production',
        KUBEVIGIL_HOST: '127.0.0.1',
        KUBEVIGIL_PORT: '0',
        KUBEVIGIL_DATA_DIR: data,
        KUBEVIGIL_INGEST_TOKEN: INGEST,
        KUBEVIGIL_API_TOKEN: API,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    url = await new Promise<string>((resolvePromise, reject) => {
      createInterface({ input: child!.stdout! }).on('line', (line) => {
        if (line.includes('kubevigil listening')) resolvePromise((JSON.parse(line) as { url: string }).url);
      });
      child!.on('exit', (code) => reject(new Error(`kubevigil exited with ${code}: ${stderr}`)));
    });
  }, 300_000);

  // Removing the installed node_modules takes a while on a busy machine.
  afterAll(() => {
    child?.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  }, 60_000);

  it('installs production dependencies only: no compiler, no test runner, no packaged Node', () => {
    const modules = readdirSync(join(app, 'node_modules'));
    for (const dev of ['typescript', 'tsx', 'vitest', 'eslint', 'vite', 'node']) expect(modules, dev).not.toContain(dev);
    expect(modules).toEqual(expect.arrayContaining(['express', 'kafkajs', 'ioredis', 'prom-client']));
    expect(existsSync(join(app, 'dist/services/cli/main.js'))).toBe(true);
    expect(existsSync(join(app, 'dist/console/index.html'))).toBe(true);
    expect(listFiles(app).filter((f) => f.endsWith('.ts') && !f.startsWith('node_modules/') && !f.endsWith('.d.ts'))).toEqual([]);
  });

  it('starts the compiled service, which takes audit events and passes the health check', async () => {
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    const exec = readReal('k8s-audit/falco-trace-files/exec_pod.json');
    const res = await fetch(`${url}/ingest/k8s-audit`, {
      method: 'POST',
      body: exec,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST}` },
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { signals: number }).signals).toBeGreaterThanOrEqual(1);

    // The console, built in the build stage, served at / with its assets.
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const asset = /src="(\/assets\/[\w.-]+\.js)"/.exec(await page.text())?.[1];
    expect(asset).toBeDefined();
    expect((await fetch(`${url}${asset}`)).status).toBe(200);

    const [, ...check] = JSON.parse(of('HEALTHCHECK')[0]!.args.replace(/^.*?CMD\s+/, '')) as string[];
    const port = new URL(url).port;
    const health = spawnSync(process.execPath, check, { env: { ...process.env, KUBEVIGIL_PORT: port }, encoding: 'utf8', timeout: 20_000 });
    expect(health.status, health.stderr).toBe(0);
    const wrongPort = spawnSync(process.execPath, check, { env: { ...process.env, KUBEVIGIL_PORT: '1' }, encoding: 'utf8', timeout: 20_000 });
    expect(wrongPort.status).toBe(1);
  });

  it('stops on SIGTERM with status 0, having written nothing outside its data folder', async () => {
    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    child!.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(listFiles(app).sort()).toEqual(before);
    expect(readdirSync(data).length).toBeGreaterThan(0);
  });
});
