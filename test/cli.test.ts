import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { Signal } from '../correlator/signal.js';
import { loadConfig } from '../services/config.js';
import { createLogger } from '../services/logging.js';
import { serve } from '../services/main.js';
import { VERSION } from '../services/package-info.js';
import { openSqliteStore } from '../services/store/sqlite.js';
import { realFixture } from './helpers/fixtures.js';

const run = promisify(execFile);
const BIN = new URL('../bin/kubevigil.js', import.meta.url).pathname;

/** Runs bin/kubevigil.js (the compiled dist/ when built); a command that hangs is killed after `timeout` ms. */
async function kubevigil(
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = run(process.execPath, [BIN, ...args], {
    env: { ...process.env, KUBEVIGIL_RULES_DIR: '', ...opts.env },
    maxBuffer: 64 * 1024 * 1024,
    timeout: opts.timeout ?? 20_000,
  });
  p.child.stdin!.end(opts.input ?? '');
  try {
    const { stdout, stderr } = await p;
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number | null; signal?: string; stdout: string; stderr: string };
    if (err.code === null) throw new Error(`kubevigil ${args.join(' ')} did not exit (killed by ${err.signal})\n${err.stderr}`, { cause: e });
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** stderr is one line, prefixed `kubevigil: `, without a stack trace. */
function oneLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^kubevigil: /);
  expect(stderr).not.toMatch(/^\s+at /m);
  return lines[0]!;
}

describe('kubevigil CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('replay --format json prints one signal per line, and the summary on stderr', async () => {
    const r = await kubevigil(['replay', '--format', 'json', realFixture('k8s-audit/audit2rbac/demo.log')]);
    expect(r.code).toBe(0);
    const signals = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Signal);
    expect(signals.filter((s) => s.kind === 'rbac.denied')).toHaveLength(11);
    expect(r.stderr).toMatch(/37 events, 0 invalid, 0 duplicates dropped, \d+ signals/);
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
    const r = await kubevigil(['replay', '--format', 'table', '-'], { input: `${evil}\n` });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^TIME\s+SEVERITY\s+KIND/);
    expect(r.stdout).toContain('rbac.denied');
    expect(r.stdout).not.toContain('\u001b');
    const d = await kubevigil(['replay', '--format', 'json', realFixture('k8s-audit/falco-trace-files')]);
    expect(d.stderr).toMatch(/17 events, 0 invalid, 0 duplicates dropped/);
  });

  it('replay drops events repeated by (auditID, stage, receive time), as the audit webhook does, and says how many', async () => {
    const log = realFixture('k8s-audit/audit2rbac/demo.log');
    const once = await kubevigil(['replay', '--format', 'json', log]);
    const twice = await kubevigil(['replay', '--format', 'json', log, log]);
    expect(twice.code).toBe(0);
    expect(twice.stderr).toMatch(/74 events, 0 invalid, 37 duplicates dropped, \d+ signals/);
    // The same signals and incidents as from one copy (ids are deterministic; observedTime is not).
    const ids = (stdout: string) =>
      stdout
        .trim()
        .split('\n')
        .map((l) => {
          const v = JSON.parse(l) as { id?: string; incident?: { id: string; signalCount: number } };
          return v.incident ? `${v.incident.id}:${v.incident.signalCount}` : v.id;
        });
    expect(ids(twice.stdout)).toEqual(ids(once.stdout));
    // The same auditID at another stage is another event.
    const ev = {
      auditID: 'a1',
      stage: 'ResponseComplete',
      verb: 'get',
      user: { username: 'alice' },
      objectRef: { resource: 'pods', namespace: 'a' },
      responseStatus: { code: 403 },
    };
    const lines = [ev, ev, { ...ev, stage: 'ResponseStarted' }].map((e) => JSON.stringify(e)).join('\n');
    const stdin = await kubevigil(['replay', '--format', 'json', '-'], { input: `${lines}\n` });
    expect(stdin.stderr).toMatch(/3 events, 0 invalid, 1 duplicates dropped/);
  });

  it('rules lint reports every problem of a user rules directory at once and exits 1', async () => {
    const file = join(dir, 'mine.yaml');
    writeFileSync(
      file,
      [
        'rules:',
        '  - id: BAD',
        '    title: t',
        '    source: nowhere',
        '    severity: huge',
        '    kind: x',
        '    mitre: []',
        '    condition: {field: verb, regex: "("}',
        'exceptions:',
        '  - {rule: no-such, name: n, condition: {field: verb, eq: get}}',
        '',
      ].join('\n'),
    );
    const r = await kubevigil(['rules', 'lint', '--rules', file]);
    expect(r.code).toBe(1);
    for (const needle of [
      'id: id must be',
      'description: description is required',
      'source: source must be one of',
      'severity: severity must be one of',
      'kind: unknown signal kind',
      'mitre: mitre: list at least one',
      'condition.regex: invalid regular expression',
      'rule: no rule with id "no-such"',
    ])
      expect(r.stdout).toContain(needle);
    expect(r.stdout).toMatch(/\d+ problem\(s\)$/m);
    // KUBEVIGIL_RULES_DIR names the same files without --rules.
    const env = await kubevigil(['rules', 'lint'], { env: { KUBEVIGIL_RULES_DIR: file } });
    expect(env.code).toBe(1);
    expect(env.stdout).toContain('rule: no rule with id "no-such"');
  });

  it('rules lint points at YAML syntax errors with their line', async () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, 'rules:\n  - id: x\n   title: [unclosed\n');
    const r = await kubevigil(['rules', 'lint', '--rules', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/broken\.yaml: line \d+: /);
  });

  it('rules lint and test pass on the shipped packs; --no-shipped leaves them out', async () => {
    const lint = await kubevigil(['rules', 'lint']);
    expect(lint.code).toBe(0);
    expect(lint.stdout).toMatch(/^[1-9]\d* rule\(s\) enabled, \d+ disabled, 0 problem\(s\)$/m);
    const none = await kubevigil(['rules', 'lint', '--no-shipped']);
    expect(none.stdout).toMatch(/^0 rule\(s\) enabled/m);
    const test = await kubevigil(['rules', 'test']);
    expect(test.code).toBe(0);
    expect(test.stdout).toMatch(/^[1-9]\d* passed, 0 failed$/m);
  });

  it('--help on every command and subcommand prints help and exits 0', async () => {
    const cases: [string[], RegExp][] = [
      [[], /^Usage: kubevigil \[options\] \[command\]/],
      [['--help'], /^Usage: kubevigil \[options\] \[command\]/],
      [['-h'], /^Usage: kubevigil \[options\] \[command\]/],
      [['help'], /^Usage: kubevigil \[options\] \[command\]/],
      [['help', 'replay'], /^Usage: kubevigil replay FILE\|DIR\|- …/],
      [['serve', '--help'], /^Usage: kubevigil serve \[--host H\]/],
      [['replay', '--help'], /^Usage: kubevigil replay FILE\|DIR\|- …/],
      [['replay', 'x.log', '-h'], /^Usage: kubevigil replay /],
      [['rules', '--help'], /^Usage: kubevigil rules lint\|test/],
      [['rules', 'lint', '--help'], /^Usage: kubevigil rules lint \[--rules PATH\]…/],
      [['rules', 'test', '--help'], /^Usage: kubevigil rules test \[--rules PATH\]…/],
      [['rules', 'help', 'test'], /^Usage: kubevigil rules test /],
      [['demo', '--help'], /^Usage: kubevigil demo \[--background N\]/],
      [['config', '--help'], /^Usage: kubevigil config/],
    ];
    const results = await Promise.all(cases.map(([args]) => kubevigil(args)));
    cases.forEach(([args, usage], i) => {
      const r = results[i]!;
      expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: '' });
      expect(r.stdout).toMatch(usage);
    });
    const top = await kubevigil(['--help']);
    for (const cmd of ['serve', 'replay', 'rules', 'demo', 'config']) expect(top.stdout).toMatch(new RegExp(`^  ${cmd}\\b`, 'm'));
    expect((await kubevigil(['replay', '--help'])).stdout).toContain('KUBEVIGIL_RULES_DIR');
  });

  it('--version prints the version of package.json and exits 0', async () => {
    for (const flag of ['--version', '-V']) {
      const r = await kubevigil([flag]);
      expect(r).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
    }
  });

  it('usage errors exit 2 with one line naming the problem and the fix', async () => {
    const cases: [string[], string][] = [
      [['frobnicate'], 'kubevigil: unknown command "frobnicate"; use serve, replay, rules, demo, export, silence or config (see kubevigil --help)'],
      [['serv'], 'kubevigil: unknown command "serv"; did you mean serve? (see kubevigil --help)'],
      [['--nope'], 'kubevigil: unknown option --nope (see kubevigil --help)'],
      [['replay', '--nope', 'x'], 'kubevigil: unknown option --nope for replay (see kubevigil replay --help)'],
      [['replay', '--folow', 'x'], 'kubevigil: unknown option --folow for replay; did you mean --follow? (see kubevigil replay --help)'],
      [['replay'], 'kubevigil: replay needs at least one FILE|DIR|- (audit log files, directories of them, or - for stdin) (see kubevigil replay --help)'],
      [['replay', '--format', 'xml', 'x'], 'kubevigil: --format xml is not known; use table or json (see kubevigil replay --help)'],
      [
        ['replay', '--min-severity', 'huge', 'x'],
        'kubevigil: --min-severity huge is not known; use info, low, medium, high or critical (see kubevigil replay --help)',
      ],
      [['replay', 'x', '--rules'], 'kubevigil: --rules needs a value (see kubevigil replay --help)'],
      [['rules'], 'kubevigil: rules needs a command: lint or test (see kubevigil rules --help)'],
      [['rules', 'frob'], 'kubevigil: unknown command "frob" for rules; use lint or test (see kubevigil rules --help)'],
      [['rules', 'lint', '--nope'], 'kubevigil: unknown option --nope for rules lint (see kubevigil rules lint --help)'],
      [
        ['demo', '--background', '-1'],
        'kubevigil: --background -1 is not valid; use an integer from 0 to 1000000 (benign events mixed into the attack) (see kubevigil demo --help)',
      ],
      [
        ['demo', '--background', 'many'],
        'kubevigil: --background many is not valid; use an integer from 0 to 1000000 (benign events mixed into the attack) (see kubevigil demo --help)',
      ],
      [['demo', '--format', 'xml'], 'kubevigil: --format xml is not known; use text or json (see kubevigil demo --help)'],
      [
        ['serve', '--port', '99999'],
        'kubevigil: --port 99999 is not valid; use an integer from 0 to 65535 (the port to listen on; 0 picks a free one) (see kubevigil serve --help)',
      ],
      [
        ['serve', '--host', 'example.com'],
        'kubevigil: --host example.com is not an IP address; use one such as 127.0.0.1 or 0.0.0.0 (see kubevigil serve --help)',
      ],
      [
        ['serve', '--role', 'ingest,cook'],
        'kubevigil: --role ingest,cook is not known; use all or a comma-separated list of ingest, correlator, notifier, api (see kubevigil serve --help)',
      ],
      [['config', 'extra'], 'kubevigil: config takes no arguments; remove "extra" (see kubevigil config --help)'],
    ];
    const results = await Promise.all(cases.map(([args]) => kubevigil(args)));
    cases.forEach(([args, message], i) => {
      const r = results[i]!;
      expect({ args, code: r.code, stdout: r.stdout }).toEqual({ args, code: 2, stdout: '' });
      expect(oneLine(r.stderr)).toBe(message);
    });
  });

  it('runtime errors exit 1 with one clear line and no stack trace', async () => {
    const missing = join(dir, 'no-such-audit.log');
    const r = await kubevigil(['replay', '--format', 'json', missing]);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toBe(
      `kubevigil: cannot read ${missing}: no such file or directory (ENOENT); give an audit log file, a directory of them, or - for stdin`,
    );

    const bad = join(dir, 'one-problem.yaml');
    writeFileSync(bad, 'overrides:\n  - { rule: no-such-rule, enabled: false }\n');
    const rules = await kubevigil(['replay', '--format', 'json', '--rules', bad, realFixture('k8s-audit/audit2rbac/demo.log')]);
    expect(rules.code).toBe(1);
    expect(oneLine(rules.stderr)).toMatch(/^kubevigil: the rules do not load: .*one-problem\.yaml: .*no-such-rule/);
    expect(rules.stdout).toBe('');

    const config = await kubevigil(['serve', '--port', '0'], { env: { KUBEVIGIL_DATA_DIR: join(dir, 'data'), KUBEVIGIL_API_TOKEN: 'short' } });
    expect(config.code).toBe(1);
    expect(oneLine(config.stderr)).toBe(
      'kubevigil: invalid configuration: KUBEVIGIL_API_TOKEN is 5 characters; use at least 16 random characters (e.g. openssl rand -hex 24)',
    );
  });

  it('serve exits 1 at once, with one line, when its port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as AddressInfo;
    try {
      const r = await kubevigil(['serve', '--port', String(port)], {
        env: { KUBEVIGIL_HOST: '127.0.0.1', KUBEVIGIL_DATA_DIR: join(dir, 'taken'), KUBEVIGIL_LOG_LEVEL: 'error' },
      });
      expect(r.code).toBe(1);
      expect(oneLine(r.stderr)).toBe(`kubevigil: cannot listen on 127.0.0.1:${port}: address already in use (EADDRINUSE); set KUBEVIGIL_PORT or --port`);
    } finally {
      blocker.close();
    }
  });

  it('serve() rejects when it cannot listen, and closes what it opened', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as AddressInfo;
    const store = openSqliteStore(join(dir, 'in-process.db'));
    const close = vi.spyOn(store, 'close');
    try {
      const config = loadConfig({ KUBEVIGIL_PORT: String(port), KUBEVIGIL_DATA_DIR: dir, KUBEVIGIL_LOG_LEVEL: 'silent' });
      await expect(serve(config, createLogger('silent'), { processMetrics: false, store })).rejects.toMatchObject({ code: 'EADDRINUSE' });
      expect(close).toHaveBeenCalledOnce();
    } finally {
      blocker.close();
    }
  });
});
