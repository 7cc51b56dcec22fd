/**
 * README.md shows what the commands print; this runs each of them and compares.
 *
 * A sample is a fenced block whose first line is `$ command`; every following line up to the next
 * `$ ` line is the output. A line that is only `…` stands for lines left out (a README shows an
 * excerpt of a long incident): the lines between two `…` must appear together and in that order in
 * the real output, the lines before the first `…` at its start and after the last one at its end.
 * Only what differs from run to run is normalised: the port of the kubevigil `demo` starts.
 *
 * The commands: `kubevigil …` / `node bin/kubevigil.js …` run bin/kubevigil.js in the repository;
 * the `curl` examples are sent to a kubevigil started here (the README's 127.0.0.1:8080 is that
 * kubevigil's address), and `jq '.items[] | {id, title, severity}'` is applied as jq would.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../services/config.js';
import { createLogger } from '../services/logging.js';
import { serve, type Running } from '../services/main.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const BIN = join(ROOT, 'bin/kubevigil.js');
const ELISION = '…';

/** The only thing that changes between runs: the free port `kubevigil demo` listens on. */
const normalise = (line: string) => line.replace(/\bhttp:\/\/127\.0\.0\.1:\d+\b/g, 'http://127.0.0.1:<port>');

interface Sample {
  line: number;
  command: string;
  output: string[];
}

/** Fenced blocks of README.md, with the line number of their first line. */
function fencedBlocks(text: string): { line: number; lines: string[] }[] {
  const blocks: { line: number; lines: string[] }[] = [];
  let open: { line: number; lines: string[] } | undefined;
  text.split('\n').forEach((l, i) => {
    if (/^```/.test(l)) {
      if (open) blocks.push(open);
      open = open ? undefined : { line: i + 2, lines: [] };
    } else open?.lines.push(l);
  });
  return blocks;
}

function samples(): Sample[] {
  const found: Sample[] = [];
  for (const b of fencedBlocks(README)) {
    if (!b.lines[0]?.startsWith('$ ')) continue;
    b.lines.forEach((l, i) => {
      if (l.startsWith('$ ')) found.push({ line: b.line + i, command: l.slice(2), output: [] });
      else found.at(-1)!.output.push(l);
    });
  }
  return found;
}

/** Undefined when `actual` is what the README shows; otherwise what is wrong. */
export function excerptMismatch(expected: string[], actual: string[]): string | undefined {
  const want = expected.map(normalise);
  const got = actual.map(normalise);
  while (got.at(-1) === '') got.pop();
  while (want.at(-1) === '') want.pop();
  const segments: string[][] = [[]];
  for (const l of want) {
    if (l.trim() === ELISION) segments.push([]);
    else segments.at(-1)!.push(l);
  }
  const leadingGap = want[0]?.trim() === ELISION;
  const trailingGap = want.at(-1)?.trim() === ELISION;
  const at = (seg: string[], i: number) => seg.every((l, k) => got[i + k] === l);
  let pos = 0;
  for (const [n, seg] of segments.entries()) {
    if (seg.length === 0) continue;
    const first = n === 0 && !leadingGap;
    const last = n === segments.length - 1 && !trailingGap;
    let found = -1;
    if (first && last) found = got.length === seg.length && at(seg, 0) ? 0 : -1;
    else if (last) found = got.length - seg.length >= pos && at(seg, got.length - seg.length) ? got.length - seg.length : -1;
    else if (first) found = at(seg, 0) ? 0 : -1;
    else for (let i = pos; i + seg.length <= got.length && found < 0; i++) if (at(seg, i)) found = i;
    if (found < 0)
      return `these README lines are not ${first && last ? 'all of' : first ? 'the start of' : last ? 'the end of' : 'in'} the output${pos ? ` after its line ${pos}` : ''}:\n${seg.join('\n')}\n\n--- the real output ---\n${got.join('\n')}`;
    pos = found + seg.length;
  }
  return undefined;
}

const exec = promisify(execFile);

/**
 * The environment of a reader who runs the README's commands on a fresh checkout: none of the
 * test run's own settings (the suite runs beside a Kafka broker and Redis, whose KAFKA_BROKERS and
 * REDIS_URL would turn the embedded demo into a distributed one).
 */
function readerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(KUBEVIGIL_|KAFKA_|REDIS_|SLACK_|LOKI_|TEMPO_|OTEL_)/.test(k)) env[k] = v;
  return env;
}

describe('README.md samples are what the commands print', () => {
  let kv: Running;
  const dir = mkdtempSync(join(tmpdir(), 'kv-readme-'));
  beforeAll(async () => {
    kv = await serve(loadConfig({ KUBEVIGIL_PORT: '0', KUBEVIGIL_DATA_DIR: dir, KUBEVIGIL_LOG_LEVEL: 'silent' }), createLogger('silent'), {
      processMetrics: false,
      sweepSchedule: false,
    });
  });
  afterAll(async () => {
    await kv?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs one README command; resolves with what it prints. */
  async function runCommand(command: string): Promise<string> {
    const cli = /^(?:kubevigil|node bin\/kubevigil\.js) (.+)$/.exec(command);
    if (cli) {
      const { stdout, stderr } = await exec(process.execPath, [BIN, ...cli[1]!.split(/\s+/)], {
        cwd: ROOT,
        env: readerEnv(),
        maxBuffer: 16 * 1024 * 1024,
        timeout: 60_000,
      });
      expect(stderr).toBe('');
      return stdout;
    }
    const post = /^curl -s -H 'content-type: application\/json' --data-binary @(\S+) http:\/\/127\.0\.0\.1:8080(\/\S+)$/.exec(command);
    if (post) {
      const res = await fetch(`${kv.url}${post[2]}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: readFileSync(join(ROOT, post[1]!)),
      });
      const text = await res.text();
      await kv.drained();
      return `${text}\n`;
    }
    const get = /^curl -s 'http:\/\/127\.0\.0\.1:8080(\/[^']+)' \| jq '\.items\[\] \| \{id, title, severity\}'$/.exec(command);
    if (get) {
      const { items } = (await (await fetch(`${kv.url}${get[1]}`)).json()) as { items: { id: string; title: string; severity: string }[] };
      return items.map(({ id, title, severity }) => `${JSON.stringify({ id, title, severity }, null, 2)}\n`).join('');
    }
    throw new Error(`README.md shows the output of \`${command}\`, which this test does not know how to run; teach it, or drop the output`);
  }

  const all = samples();
  it('finds the samples: the demo, replay over examples/eventlist.json, and posting that file to kubevigil', () => {
    const commands = all.map((s) => s.command);
    expect(commands).toContain('kubevigil demo');
    expect(commands.some((c) => c.includes('replay') && c.includes('examples/eventlist.json'))).toBe(true);
    expect(commands.some((c) => c.startsWith('curl') && c.includes('@examples/eventlist.json'))).toBe(true);
    expect(commands.some((c) => c.includes('/api/v1/incidents'))).toBe(true);
  });

  // In README order: the incidents query answers what the post before it sent.
  for (const s of all)
    it(`README.md line ${s.line}: ${s.command}`, async () => {
      const output = await runCommand(s.command);
      expect(excerptMismatch(s.output, output.split('\n'))).toBeUndefined();
    });

  it('the "Command line" section is the synopsis `kubevigil --help` prints', async () => {
    const section = README.slice(README.indexOf('\n## Command line\n'));
    const block = fencedBlocks(section)[0]!.lines;
    const { stdout } = await exec(process.execPath, [BIN, '--help'], { cwd: ROOT });
    const lines = stdout.split('\n');
    const start = lines.indexOf('Synopsis:') + 1;
    const synopsis = lines.slice(start, lines.indexOf('', start)).map((l) => l.trim());
    expect(start).toBeGreaterThan(0);
    expect(block).toEqual(synopsis);
  });

  it('the configuration table is what `kubevigil config` lists', async () => {
    const table = README.slice(README.indexOf('<!-- settings:start -->'), README.indexOf('<!-- settings:end -->'));
    const rows = [...table.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \| (?:`([^`]*)`|—) \| (.*) \|$/gm)].map(
      (m) => `${m[1]!.padEnd(26)} ${(m[2] ?? '(none)').padEnd(12)} ${m[3]!.replace(/\\\|/g, '|')}`,
    );
    const { stdout } = await exec(process.execPath, [BIN, 'config'], { cwd: ROOT });
    expect(rows.length).toBeGreaterThan(20);
    expect(rows).toEqual(stdout.trimEnd().split('\n'));
  });

  it('the excerpt check catches a changed, a reordered and a missing line', () => {
    const out = ['a', 'b', 'c', 'd', 'e'];
    expect(excerptMismatch(['a', 'b', 'c', 'd', 'e'], out)).toBeUndefined();
    expect(excerptMismatch(['a', ELISION, 'c', 'd', ELISION], out)).toBeUndefined();
    expect(excerptMismatch([ELISION, 'e'], out)).toBeUndefined();
    expect(excerptMismatch(['a', ELISION, 'x', ELISION], out)).toMatch(/not in the output/);
    expect(excerptMismatch(['a', ELISION, 'd', ELISION, 'c', ELISION], out)).toMatch(/not in the output/);
    expect(excerptMismatch(['a', 'c', ELISION], out)).toMatch(/not the start/);
    expect(excerptMismatch([ELISION, 'd'], out)).toMatch(/not the end/);
    expect(excerptMismatch(['a', 'b', 'c', 'd'], out)).toMatch(/not all of/);
    expect(excerptMismatch(['b', 'c', 'd', 'e'], out)).toMatch(/not all of/);
    expect(excerptMismatch(['to http://127.0.0.1:8080 x'], ['to http://127.0.0.1:41363 x'])).toBeUndefined();
  });
});
