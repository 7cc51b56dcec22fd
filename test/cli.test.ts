import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { Signal } from '../correlator/signal.js';
import { realFixture } from './helpers/fixtures.js';

const run = promisify(execFile);
const BIN = new URL('../bin/kubevigil.js', import.meta.url).pathname;

async function kubevigil(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = run(process.execPath, [BIN, ...args], { env: { ...process.env, KUBEVIGIL_RULES_DIR: '' }, maxBuffer: 64 * 1024 * 1024 });
  if (input !== undefined) {
    p.child.stdin!.end(input);
  }
  try {
    const { stdout, stderr } = await p;
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('kubevigil CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('replay --format json prints one signal per line, and the summary on stderr', async () => {
    const r = await kubevigil(['replay', '--format', 'json', realFixture('k8s-audit/audit2rbac/demo.log')]);
    expect(r.code).toBe(0);
    const signals = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Signal);
    expect(signals.filter((s) => s.kind === 'rbac.denied')).toHaveLength(11);
    expect(r.stderr).toMatch(/37 events, 0 invalid, \d+ signals/);
  });

  it('replay reads stdin and directories, and prints a table that cannot drive the terminal', async () => {
    const evil = JSON.stringify({
      auditID: 'evil',
      stage: 'ResponseComplete',
      verb: 'get',
      user: { username: 'system:serviceaccount:x:\u001b[31mred\u001b[0m' },
      objectRef: { resource: 'pods', namespace: 'a' },
      responseStatus: { code: 403 },
    });
    const r = await kubevigil(['replay', '--format', 'table', '-'], `${evil}\n`);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^TIME\s+SEVERITY\s+KIND/);
    expect(r.stdout).toContain('rbac.denied');
    expect(r.stdout).not.toContain('\u001b');
    const d = await kubevigil(['replay', '--format', 'json', realFixture('k8s-audit/falco-trace-files')]);
    expect(d.stderr).toMatch(/17 events, 0 invalid/);
  });

  it('rules lint reports every problem of a user rules directory at once and exits 1', async () => {
    const file = join(dir, 'mine.yaml');
    writeFileSync(
      file,
      ['rules:', '  - id: BAD', '    title: t', '    source: nowhere', '    severity: huge', '    kind: x', '    mitre: []', '    condition: {field: verb, regex: "("}', 'exceptions:', '  - {rule: no-such, name: n, condition: {field: verb, eq: get}}', ''].join('\n'),
    );
    const r = await kubevigil(['rules', 'lint', '--rules', file]);
    expect(r.code).toBe(1);
    for (const needle of ['id: id must be', 'description: description is required', 'source: source must be one of', 'severity: severity must be one of', 'kind: unknown signal kind', 'mitre: mitre: list at least one', 'condition.regex: invalid regular expression', 'rule: no rule with id "no-such"'])
      expect(r.stdout).toContain(needle);
    expect(r.stdout).toMatch(/\d+ problem\(s\)$/m);
  });

  it('rules lint points at YAML syntax errors with their line', async () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, 'rules:\n  - id: x\n   title: [unclosed\n');
    const r = await kubevigil(['rules', 'lint', '--rules', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/broken\.yaml: line \d+: /);
  });

  it('explains unknown commands and flags', async () => {
    const r = await kubevigil(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command "frobnicate"/);
    const f = await kubevigil(['replay', '--nope', 'x']);
    expect(f.code).toBe(1);
    expect(f.stderr).toMatch(/Unknown option '--nope'/);
  });
});
