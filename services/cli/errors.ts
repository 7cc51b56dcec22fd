/**
 * What the `kubevigil` command says when something goes wrong, and with which exit code: one line
 * naming the problem and the fix, never a stack trace for a mistake the user can correct.
 *
 * - 2: the command line is wrong (unknown command or option, missing argument, bad value);
 * - 1: the command could not do its work (a file that does not exist, rules or configuration that
 *   do not load, a port that is taken);
 * - 1 with the stack after a one-line summary: a bug.
 */
import { RuleSetError, formatProblem } from '../../correlator/detection/problems.js';
import { ConfigError, KubevigilError } from '../../correlator/errors.js';

/** The command line is wrong; `command` ("replay", "rules lint", "" for the top level) names where to get help. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The command could not do its work; the message says what to do about it. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

/** A Node.js system error (fs, net), as it carries its code, syscall and path or address. */
interface SystemError extends Error {
  code: string;
  syscall?: string;
  path?: string;
  address?: string;
  port?: number;
}

export function isSystemError(e: unknown): e is SystemError {
  const code = e instanceof Error ? (e as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code);
}

const WHAT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available on this machine',
  ECONNREFUSED: 'connection refused',
  ETIMEDOUT: 'timed out',
  ENOTFOUND: 'host not found',
  EMFILE: 'too many open files',
};

/** "no such file or directory (ENOENT)" from a system error. */
export function describeSystemError(e: SystemError): string {
  return `${WHAT[e.code] ?? e.message.replace(/^E[A-Z0-9]+: /, '').replace(/, \w+ .*$/, '')} (${e.code})`;
}

/**
 * `cannot listen on 127.0.0.1:8080: address already in use (EADDRINUSE); set KUBEVIGIL_PORT or --port`
 * for an error of `server.listen`, or undefined for any other error. `fix` says how to choose
 * another port, or another address when this one is not the machine's.
 */
export function listenFailure(
  e: unknown,
  host: string,
  port: number,
  fix = { port: 'set KUBEVIGIL_PORT or --port', host: 'set KUBEVIGIL_HOST or --host' },
): CliError | undefined {
  if (!isSystemError(e) || e.syscall !== 'listen') return undefined;
  const address = e.address ?? host;
  const where = `${address.includes(':') ? `[${address}]` : address}:${e.port ?? port}`;
  const advice = e.code === 'EADDRNOTAVAIL' ? fix.host : e.code === 'EACCES' ? `use a port above 1023 (${fix.port})` : fix.port;
  return new CliError(`cannot listen on ${where}: ${describeSystemError(e)}; ${advice}`);
}

const MAX_LISTED = 20;

/** The text to print (without the `kubevigil: ` prefix) and the exit code for an error thrown by a command. */
export function explain(e: unknown): { code: number; lines: string[] } {
  if (e instanceof UsageError) return { code: 2, lines: [`${e.message} (see kubevigil${e.command ? ` ${e.command}` : ''} --help)`] };
  if (e instanceof CliError) return { code: 1, lines: [e.message] };
  // Every problem is worth seeing at once: a summary line, then one line each.
  if (e instanceof RuleSetError) {
    const [first] = e.problems;
    if (e.problems.length === 1 && first) return { code: 1, lines: [`the rules do not load: ${formatProblem(first)}`] };
    const listed = e.problems.slice(0, MAX_LISTED).map((p) => `  ${formatProblem(p)}`);
    const more = e.problems.length > MAX_LISTED ? [`  … and ${e.problems.length - MAX_LISTED} more`] : [];
    return { code: 1, lines: [`the rules do not load: ${e.problems.length} problems; fix them (kubevigil rules lint lists them):`, ...listed, ...more] };
  }
  if (e instanceof ConfigError) {
    const [first] = e.problems;
    if (e.problems.length === 1 && first) return { code: 1, lines: [`invalid configuration: ${first}`] };
    return {
      code: 1,
      lines: [`invalid configuration: ${e.problems.length} problems (kubevigil config lists the settings):`, ...e.problems.map((p) => `  ${p}`)],
    };
  }
  if (e instanceof KubevigilError) return { code: 1, lines: [e.message.split('\n').join('; ')] };
  // A service kubevigil depends on (Kafka, Redis, Loki, Tempo) is not there: not a bug.
  if (isSystemError(e) && e.syscall === 'connect')
    return {
      code: 1,
      lines: [`cannot connect to ${e.address ?? '?'}:${e.port ?? '?'}: ${describeSystemError(e)}; check the address in the settings (kubevigil config)`],
    };
  if (e instanceof Error && e.name.startsWith('KafkaJS'))
    return { code: 1, lines: [`Kafka: ${e.message.split('\n')[0]} (${e.name}); check KAFKA_BROKERS and that the brokers are up`] };
  if (isSystemError(e) && e.path !== undefined)
    return {
      code: 1,
      lines: [
        `cannot ${e.syscall === 'open' || e.syscall === 'stat' || e.syscall === 'read' ? 'read' : (e.syscall ?? 'use')} ${e.path}: ${describeSystemError(e)}`,
      ],
    };
  const summary = e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : String(e);
  return {
    code: 1,
    lines: [`internal error: ${summary} (a bug; please report it with the stack below)`, e instanceof Error ? (e.stack ?? String(e)) : String(e)],
  };
}
