/**
 * A real kube-apiserver (with etcd) for one test file, started by `scripts/kube-apiserver.sh up`
 * with its audit webhook pointed at a URL the test gives (a kubevigil it started), and helpers to
 * run kubectl as the admin or with a service account's token.
 *
 * The binaries come from `scripts/kube-apiserver.sh build` (scripts/test-all.sh runs it and exports
 * KUBEVIGIL_KUBE_APISERVER_BIN): in KUBEVIGIL_KUBE_APISERVER_BIN, else in
 * ${KUBEVIGIL_CACHE_DIR:-~/.cache/kubevigil}/kube-apiserver/bin. Each server gets free ports and a
 * state directory of its own (certificates, etcd data, the audit log), removed on stop. A watchdog
 * stops the server when the test process exits, however it ends (killed included).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** scripts/kube-apiserver.sh: build, up, down, status, env. */
export const KUBE_APISERVER_SCRIPT = join(ROOT, 'scripts/kube-apiserver.sh');
/** The recipe's files: the scenario the attack runs in, the privileged pod, the admission probe. */
export const RECIPE_DIR = join(ROOT, 'scripts/kube-apiserver');

/** Where the binaries are: KUBEVIGIL_KUBE_APISERVER_BIN, else the build cache. */
export const KUBE_APISERVER_BIN =
  process.env.KUBEVIGIL_KUBE_APISERVER_BIN || join(process.env.KUBEVIGIL_CACHE_DIR || join(homedir(), '.cache/kubevigil'), 'kube-apiserver/bin');
const BINARIES = ['kube-apiserver', 'kubectl', 'etcd'];

/** The binaries that are missing (empty when a server can start). */
export function missingKubeApiserverBinaries(): string[] {
  return BINARIES.filter((b) => !existsSync(join(KUBE_APISERVER_BIN, b)));
}

/**
 * Whether the suite skips: only when nobody asked for the binaries. With KUBEVIGIL_KUBE_APISERVER_BIN
 * set (as scripts/test-all.sh does after building), missing binaries fail the suite instead.
 */
export const kubeApiserverSkip = !process.env.KUBEVIGIL_KUBE_APISERVER_BIN && missingKubeApiserverBinaries().length > 0;
/** Appended to the suite's name when it is skipped: why, and how to build. */
export const kubeApiserverSkipNote = kubeApiserverSkip
  ? ` (skipped: no ${missingKubeApiserverBinaries().join(', ')} in ${KUBE_APISERVER_BIN}; build them once with scripts/kube-apiserver.sh build, ≈12 min)`
  : '';

/** What a command printed and how it ended. */
export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (no shell), feeding `input` on stdin; never throws on a non-zero exit. */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} did not finish within ${opts.timeoutMs} ms\n${stderr.slice(-2000)}`));
    }, opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Reads `export NAME=VALUE` lines (values as `printf %q` writes them: backslash escapes). */
export function parseExports(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^export ([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2]!;
    if (v === "''") v = '';
    else if (v.startsWith("'") && v.endsWith("'")) v = v.slice(1, -1);
    else v = v.replace(/\\(.)/g, '$1');
    out[m[1]!] = v;
  }
  return out;
}

/** A CA and a serving certificate it signed, as PEM files. */
export interface ServingCertificate {
  ca: string;
  cert: string;
  key: string;
}

/**
 * A CA and a certificate it signs for 127.0.0.1 and localhost, written into `dir` (openssl): for a
 * receiver the audit webhook posts to over https. The webhook must use https to send its bearer
 * token: client-go reads a kubeconfig's credentials only for TLS servers.
 */
export function servingCertificate(dir: string): ServingCertificate {
  const f = (n: string) => join(dir, n);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=kubevigil-test-ca');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=kubevigil');
  writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  openssl(
    'x509',
    '-req',
    '-in',
    f('server.csr'),
    '-CA',
    f('ca.crt'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-out',
    f('server.crt'),
    '-days',
    '2',
    '-extfile',
    f('server.ext'),
  );
  return { ca: f('ca.crt'), cert: f('server.crt'), key: f('server.key') };
}

/** kubectl bound to one identity. */
export interface Kubectl {
  /** Runs kubectl with these arguments (and `input` on stdin); resolves whatever the exit status. */
  (args: string[], input?: string): Promise<RunResult>;
  /** The kubeconfig file it uses. */
  kubeconfig: string;
  /** The bearer token it presents (service accounts; the admin's is in `env.KAPI_ADMIN_TOKEN`). */
  token?: string;
}

/** One audit event as kube-apiserver writes it (the fields the tests read). */
export interface RealAuditEvent {
  auditID: string;
  stage: string;
  level: string;
  verb: string;
  requestURI: string;
  user: { username: string; groups?: string[] };
  userAgent?: string;
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string; apiGroup?: string };
  responseStatus?: { code?: number; message?: string };
  requestObject?: unknown;
  responseObject?: unknown;
  annotations?: Record<string, string>;
}

/** A running kube-apiserver. */
export interface KubeApiserver {
  /** What `up` exported: KUBECONFIG, KAPI_SERVER, KAPI_CA, KAPI_AUDIT_LOG, KAPI_STATE, KAPI_KUBECTL… */
  env: Record<string, string>;
  /** https://127.0.0.1:port */
  server: string;
  /** kubectl as the admin (static token, group system:masters). */
  admin: Kubectl;
  /** kubectl with a fresh token of a service account (TokenRequest, minted by the admin). */
  serviceAccount(namespace: string, name: string, opts?: { duration?: string }): Promise<Kubectl>;
  /** Every event of the audit log file so far (the webhook gets the same events). */
  auditEvents(): RealAuditEvent[];
  /** The last lines of the apiserver's log, for failure messages. */
  logTail(lines?: number): string;
  /** Stops etcd and the apiserver and removes the state directory. Safe to call twice. */
  stop(): Promise<void>;
}

function kubectlAt(kubectl: string, kubeconfig: string): Kubectl {
  const k = ((args: string[], input?: string) => run(kubectl, args, { env: { ...process.env, KUBECONFIG: kubeconfig }, input, timeoutMs: 60_000 })) as Kubectl;
  k.kubeconfig = kubeconfig;
  return k;
}

/**
 * Starts etcd and kube-apiserver (≈5–15 s) with the audit webhook posting to `webhookUrl`, presenting
 * `webhookToken` as its bearer token when given (an https URL then, trusted through `webhookCa`).
 * The audit policy is the one kubevigil ships (deploy/kube-apiserver/audit-policy.yaml) unless
 * `auditPolicy` names another file.
 */
export async function startKubeApiserver(opts: {
  webhookUrl: string;
  webhookToken?: string;
  webhookCa?: string;
  auditPolicy?: string;
  timeoutMs?: number;
}): Promise<KubeApiserver> {
  const missing = missingKubeApiserverBinaries();
  if (missing.length) throw new Error(`no ${missing.join(', ')} in ${KUBE_APISERVER_BIN}: run scripts/kube-apiserver.sh build`);
  const state = mkdtempSync(join(tmpdir(), 'kv-kapi-'));
  // Nothing of a server a developer started by hand (eval "$(scripts/kube-apiserver.sh up)") leaks in.
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KAPI_') && k !== 'KUBECONFIG'));
  Object.assign(env, {
    KUBEVIGIL_KUBE_APISERVER_BIN: KUBE_APISERVER_BIN,
    KAPI_STATE: state,
    KAPI_WATCH_PID: String(process.pid),
    KAPI_WATCH_PURGE: '1',
    ...(opts.webhookToken ? { KAPI_AUDIT_WEBHOOK_TOKEN: opts.webhookToken } : {}),
    ...(opts.webhookCa ? { KAPI_AUDIT_WEBHOOK_CA: opts.webhookCa } : {}),
    ...(opts.auditPolicy ? { KAPI_AUDIT_POLICY: opts.auditPolicy } : {}),
  });
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.off('exit', stopOnExit);
    const r = await run('bash', [KUBE_APISERVER_SCRIPT, 'down', '--purge'], { env, timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`scripts/kube-apiserver.sh down failed (${r.code}): ${r.stderr}`);
    rmSync(state, { recursive: true, force: true });
  };
  // The last resort when afterAll never ran: kill the server's processes at once (only while their
  // pids are still theirs); the watchdog, left alone, then removes the state directory.
  const stopOnExit = (): void => {
    let pids: string[];
    try {
      pids = readFileSync(join(state, 'pids'), 'utf8').trim().split('\n');
    } catch {
      return; // stopped already
    }
    for (const line of pids) {
      const [name, pid] = line.split(' ');
      if (!name || !pid || name === 'watchdog.sh') continue;
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(name)) process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone
      }
    }
  };
  process.on('exit', stopOnExit);

  const up = await run('bash', [KUBE_APISERVER_SCRIPT, 'up', opts.webhookUrl], { env, timeoutMs: opts.timeoutMs ?? 180_000 }).catch(async (e: unknown) => {
    await stop().catch(() => undefined);
    throw e;
  });
  if (up.code !== 0) {
    await stop().catch(() => undefined);
    throw new Error(`scripts/kube-apiserver.sh up failed (${up.code}):\n${up.stderr.slice(-4000)}`);
  }
  const exported = parseExports(up.stdout);
  for (const k of ['KUBECONFIG', 'KAPI_SERVER', 'KAPI_CA', 'KAPI_AUDIT_LOG', 'KAPI_KUBECTL'])
    if (!exported[k]) {
      await stop().catch(() => undefined);
      throw new Error(`scripts/kube-apiserver.sh up did not export ${k}:\n${up.stdout}`);
    }
  const kubectl = exported.KAPI_KUBECTL!;
  const admin = kubectlAt(kubectl, exported.KUBECONFIG!);
  let accounts = 0;

  return {
    env: exported,
    server: exported.KAPI_SERVER!,
    admin,
    async serviceAccount(namespace, name, o = {}) {
      const minted = await admin(['create', 'token', name, '-n', namespace, `--duration=${o.duration ?? '1h'}`]);
      if (minted.code !== 0) throw new Error(`kubectl create token ${name} -n ${namespace} failed: ${minted.stderr}`);
      const file = join(state, `sa-${++accounts}-${namespace}-${name}.kubeconfig`);
      const config = {
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'kapi', cluster: { server: exported.KAPI_SERVER, 'certificate-authority': exported.KAPI_CA } }],
        users: [{ name, user: { token: minted.stdout.trim() } }],
        contexts: [{ name: 'sa', context: { cluster: 'kapi', user: name, namespace } }],
        'current-context': 'sa',
      };
      writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
      const k = kubectlAt(kubectl, file);
      k.token = minted.stdout.trim();
      return k;
    },
    auditEvents() {
      const text = readFileSync(exported.KAPI_AUDIT_LOG!, 'utf8');
      return text
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as RealAuditEvent);
    },
    logTail(lines = 40) {
      try {
        return readFileSync(join(state, 'apiserver.log'), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      } catch {
        return '(no apiserver log)';
      }
    },
    stop,
  };
}
