/**
 * The `kubevigil` command line, on commander: the commands, their options and how each value is
 * checked. A command's action reports its exit code, or `RUNNING` when the process stays up after
 * it (serve, demo --keep). Mistakes on the command line become {@link UsageError}s (exit 2);
 * {@link run} turns every error into one line on stderr and an exit code (see errors.ts).
 */
import { isIP } from 'node:net';
import { Command, CommanderError, Option } from 'commander';
import { formatProblem } from '../../correlator/detection/problems.js';
import { SEVERITIES, type Severity } from '../../correlator/severity.js';
import { loadConfig, ROLES, SETTINGS } from '../config.js';
import { createLogger } from '../logging.js';
import { VERSION } from '../package-info.js';
import { explain, listenFailure, UsageError } from './errors.js';
import { addSilenceCommand, SILENCE_SYNOPSIS } from './silence.js';

/** An action's result when the process keeps running after it returns (a server, a follower). */
export const RUNNING = 'running';
export type Outcome = number | typeof RUNNING;

/** Where the command writes; the process's streams unless a test says otherwise. */
export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
  stdoutIsTTY: boolean;
  stderrIsTTY: boolean;
}

/** One line per command, as `kubevigil --help` and README.md's "Command line" section show them. */
export const SYNOPSIS = [
  'kubevigil serve [--host H] [--port P] [--insecure] [--role ingest,correlator,notifier,api]',
  'kubevigil replay FILE|DIR|- … [--format table|json] [--follow] [--min-severity S] [--rules PATH]… [--no-progress]',
  'kubevigil demo [--background N] [--format text|json] [--keep]',
  'kubevigil rules lint [--rules PATH]… [--no-shipped]',
  'kubevigil rules test [--rules PATH]… [--no-shipped]',
  'kubevigil export --since T [--until T] [--what incidents|signals|both] [--data-dir DIR]',
  ...SILENCE_SYNOPSIS,
  'kubevigil config',
];

const usageOf = (command: string) =>
  SYNOPSIS.find((l) => l.startsWith(`kubevigil ${command} `) || l === `kubevigil ${command}`)!
    .slice(`kubevigil ${command}`.length)
    .trim();

/** The path of a command below the program: "replay", "rules lint", "" for the program itself. */
function pathOf(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Option-argument parsers: a bad value is a usage error that names the option, the value and what is allowed. */
const oneOf =
  <T extends string>(flag: string, command: string, allowed: readonly T[]) =>
  (value: string): T => {
    if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`${flag} ${value} is not known; use ${orList(allowed)}`, command);
    return value as T;
  };

const integer =
  (flag: string, command: string, min: number, max: number, meaning: string) =>
  (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max)
      throw new UsageError(`${flag} ${value} is not valid; use an integer from ${min} to ${max} (${meaning})`, command);
    return n;
  };

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

function orList(items: readonly string[]): string {
  return items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;
}

/** Rule paths from KUBEVIGIL_RULES_DIR (colon-separated), then from --rules. */
const rulePaths = (env: NodeJS.ProcessEnv, flags: string[] = []) => [...(env.KUBEVIGIL_RULES_DIR ?? '').split(':').filter(Boolean), ...flags];

const RULES_ENV = '\nEnvironment:\n  KUBEVIGIL_RULES_DIR  colon-separated rule files or directories loaded after the shipped packs, before --rules';

/** Builds the program. Actions record their outcome through `done`. */
export function buildProgram(io: Io, done: (outcome: Outcome) => void): Command {
  const program = new Command('kubevigil')
    .description('kubevigil — security event correlation for Kubernetes')
    .version(VERSION, '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'print help and exit')
    .helpCommand('help [command]', 'print help for a command')
    .addHelpText('after', `\nSynopsis:\n${SYNOPSIS.map((l) => `  ${l}`).join('\n')}\n\nDocs: README.md (configuration, rule-writing guide).`);

  program
    .command('serve')
    .summary('run kubevigil: audit webhook, detection, correlation, store, API and notifier')
    .description(
      'Run every role in one process on the embedded defaults (in-memory bus, SQLite store in KUBEVIGIL_DATA_DIR); ' +
        'with KAFKA_BROKERS and REDIS_URL, run the given roles of a distributed deployment. ' +
        'Every setting is an environment variable (see kubevigil config); these options override them.',
    )
    .usage(usageOf('serve'))
    .option('--host <H>', 'address to listen on (KUBEVIGIL_HOST; default 127.0.0.1)', (v: string) => {
      if (v !== 'localhost' && v !== '0.0.0.0' && v !== '::' && isIP(v) === 0)
        throw new UsageError(`--host ${v} is not an IP address; use one such as 127.0.0.1 or 0.0.0.0`, 'serve');
      return v;
    })
    .option('--port <P>', 'port to listen on, 0 for any free one (KUBEVIGIL_PORT; default 8080)', (v: string) =>
      String(integer('--port', 'serve', 0, 65535, 'the port to listen on; 0 picks a free one')(v)),
    )
    .option('--insecure', 'allow listening beyond loopback without ingest and API tokens (a mesh or proxy authenticates callers)')
    .option('--role <roles>', `comma-separated roles of this process: all, or ${ROLES.join(', ')} (KUBEVIGIL_ROLES)`, (v: string) => {
      const bad =
        v === 'all'
          ? []
          : v
              .split(',')
              .map((r) => r.trim())
              .filter((r) => !(ROLES as readonly string[]).includes(r));
      if (bad.length || v.trim() === '') throw new UsageError(`--role ${v} is not known; use all or a comma-separated list of ${ROLES.join(', ')}`, 'serve');
      return v;
    })
    .action(async (o: { host?: string; port?: string; insecure?: boolean; role?: string }) => {
      const config = loadConfig(io.env, o);
      const logger = createLogger(config.logLevel);
      // The commands' modules load when they run, so that --help and --version answer at once.
      const { serve } = await import('../main.js');
      const { StopTimeoutError } = await import('../roles/lifecycle.js');
      const running = await serve(config, logger).catch((e: unknown) => {
        throw listenFailure(e, config.host, config.port) ?? e;
      });
      // Exit 0 once everything stopped, also when the grace expired and open requests were cut
      // (logged): that is the clients' doing, not a fault of kubevigil's. Exit 1 when a component
      // failed to stop, or hung past the grace plus the margin (the log names it).
      const shutdown = (signal: string) => {
        logger.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down');
        running.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            if (err instanceof StopTimeoutError)
              logger.error({ component: err.component, timeoutMs: err.timeoutMs }, `shutdown did not finish in time: ${err.component} hung; exiting`);
            else logger.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
      // As Prometheus: SIGHUP reloads the rules (this process only); the outcome is logged and on /metrics.
      process.on('SIGHUP', () => void running.reload.reload('SIGHUP'));
      done(RUNNING);
    });

  program
    .command('replay')
    .summary('run detection and correlation offline over audit logs; print signals and incidents')
    .description(
      'Read audit events (JSON lines as --audit-log-path writes them, EventLists or arrays) from files, ' +
        'directories (walked for *.json, *.jsonl, *.ndjson, *.log) or - (stdin); run the detection rules and ' +
        'correlations over them on event time; print the signals, then the incidents and a summary. ' +
        'Events repeated by (auditID, stage, receive time) are dropped, as the server drops them, and counted in the summary.',
    )
    .usage(usageOf('replay'))
    .argument('<FILE|DIR|-...>', 'audit log files, directories of them, or - for stdin')
    .addOption(
      new Option('--format <F>', 'signals as a table or as JSON lines (default: table on a terminal, json otherwise)')
        .choices(['table', 'json'])
        .argParser(oneOf('--format', 'replay', ['table', 'json'] as const)),
    )
    .option('--follow', 'keep reading the files as they grow (handles rotation and copytruncate); Ctrl-C to stop')
    .addOption(
      new Option('--min-severity <S>', 'print only signals of this severity or above')
        .choices(SEVERITIES)
        .argParser(oneOf('--min-severity', 'replay', SEVERITIES)),
    )
    .option('--rules <PATH>', 'a rule file or directory to load after the shipped packs (repeatable)', collect)
    .option('--no-progress', 'no progress bar on stderr (shown on a terminal for inputs over 8 MiB)')
    .addHelpText('after', RULES_ENV)
    .action(async (inputs: string[], o: { format?: 'table' | 'json'; follow?: boolean; minSeverity?: Severity; rules?: string[]; progress: boolean }) => {
      const { replay } = await import('./replay.js');
      const code = await replay({
        inputs,
        format: o.format ?? (io.stdoutIsTTY ? 'table' : 'json'),
        follow: o.follow === true,
        ...(o.minSeverity ? { minSeverity: o.minSeverity } : {}),
        rulesPaths: rulePaths(io.env, o.rules),
        progress: o.progress && io.stderrIsTTY,
        out: io.out,
        err: io.err,
      });
      done(code);
    });

  const rules = program
    .command('rules')
    .summary('check the detection and correlation rules, and run their tests')
    .description('Check the shipped rule packs and your own (KUBEVIGIL_RULES_DIR, --rules), or run the test files beside them.')
    .usage('lint|test [--rules PATH]… [--no-shipped]')
    .addHelpText('after', RULES_ENV);
  const rulesOptions = (c: Command) =>
    c
      .option('--rules <PATH>', 'a rule file or directory to load after the shipped packs (repeatable)', collect)
      .option('--no-shipped', 'leave out the shipped packs (rules/detections, rules/correlations)')
      .addHelpText('after', RULES_ENV);
  rulesOptions(
    rules
      .command('lint')
      .description('Check every rule file; report every problem at once, as file: rule-id: field: reason. Exits 1 if there is any.')
      .usage(usageOf('rules lint')),
  ).action(async (o: { rules?: string[]; shipped: boolean }) => {
    const { loadRules } = await import('../rules.js');
    const r = loadRules(rulePaths(io.env, o.rules), o.shipped);
    for (const p of r.problems) io.out(formatProblem(p));
    io.out(`${r.rules.length} rule(s) enabled, ${r.disabled.length} disabled, ${r.problems.length} problem(s)`);
    done(r.problems.length ? 1 : 0);
  });
  rulesOptions(
    rules
      .command('test')
      .description('Run the test files beside the rule files (secrets.yaml → secrets.test.yaml). Exits 1 on any failure, problem or untested file.')
      .usage(usageOf('rules test')),
  ).action(async (o: { rules?: string[]; shipped: boolean }) => {
    const { testRules } = await import('../rules.js');
    const r = testRules(rulePaths(io.env, o.rules), o.shipped);
    for (const p of r.problems) io.out(`PROBLEM ${formatProblem(p)}`);
    for (const t of r.results) {
      io.out(`${t.ok ? 'ok  ' : 'FAIL'} ${t.file.replace(/^.*\/rules\//, 'rules/')}: ${t.name}`);
      for (const f of t.failures) io.out(`       ${f}`);
    }
    for (const u of r.untested) io.out(`UNTESTED ${u}: add ${u.replace(/\.ya?ml$/, '.test.yaml')}`);
    const failed = r.results.filter((t) => !t.ok).length;
    io.out(`${r.results.length - failed} passed, ${failed} failed`);
    done(failed || r.problems.length || r.untested.length ? 1 : 0);
  });

  program
    .command('demo')
    .summary('send the seed attack path through a local kubevigil and print the incident')
    .description(
      'Start a kubevigil on a free local port, send it the seed attack path mixed into benign audit events through ' +
        'the real audit webhook, Loki push, Alertmanager webhook and OTLP endpoints, and print the incidents found.',
    )
    .usage(usageOf('demo'))
    .option(
      '--background <N>',
      'benign audit events mixed into the attack',
      integer('--background', 'demo', 0, 1_000_000, 'benign events mixed into the attack'),
      2000,
    )
    .addOption(
      new Option('--format <F>', 'text or json')
        .choices(['text', 'json'])
        .default('text')
        .argParser(oneOf('--format', 'demo', ['text', 'json'] as const)),
    )
    .option('--keep', 'keep that kubevigil running afterwards, on KUBEVIGIL_PORT (default 8080)')
    .action(async (o: { background: number; format: 'text' | 'json'; keep?: boolean }) => {
      const keep = o.keep === true;
      const port = Number(io.env.KUBEVIGIL_PORT ?? '8080');
      const { demo } = await import('./demo.js');
      await demo({ background: o.background, format: o.format, keep, out: io.out }).catch((e: unknown) => {
        throw listenFailure(e, '127.0.0.1', port, { port: 'set KUBEVIGIL_PORT to a free port', host: 'check the loopback interface' }) ?? e;
      });
      done(keep ? RUNNING : 0);
    });

  // A time on the command line: RFC 3339, or a duration before now (30m, 12h, 7d).
  const timeArg = (flag: string) => (v: string) => {
    const ago = /^(\d+)(m|h|d)$/.exec(v);
    const ms = ago ? Date.now() - Number(ago[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[ago[2] as 'm' | 'h' | 'd'] : Date.parse(v);
    if (!Number.isFinite(ms) || (!ago && !/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/.test(v)))
      throw new UsageError(`${flag} ${v} is not a time; use RFC 3339 (2026-11-29T03:12:00Z, or a date) or a duration before now (30m, 12h, 7d)`, 'export');
    return ms;
  };
  program
    .command('export')
    .summary('write incidents and/or signals of a time range from the local store as NDJSON')
    .description(
      'Write the incidents active in a time range and/or the signals whose event time is in it, from the store in the data ' +
        'directory (as serve keeps it), to stdout as JSON lines shaped as the API sends them, each with "type": "incident" or "signal" ' +
        '(signals also name their incidentId). A running kubevigil may keep using the store meanwhile.',
    )
    .usage(usageOf('export'))
    .requiredOption('--since <T>', 'start of the range: RFC 3339, or a duration before now (7d)', timeArg('--since'))
    .option('--until <T>', 'end of the range, excluded (default: now)', timeArg('--until'))
    .addOption(
      new Option('--what <W>', 'what to write')
        .choices(['incidents', 'signals', 'both'])
        .default('both')
        .argParser(oneOf('--what', 'export', ['incidents', 'signals', 'both'] as const)),
    )
    .option('--data-dir <DIR>', 'the data directory (KUBEVIGIL_DATA_DIR; default ./data)')
    .action(async (o: { since: number; until?: number; what: 'incidents' | 'signals' | 'both'; dataDir?: string }) => {
      const until = o.until ?? Date.now();
      if (o.since >= until) throw new UsageError('--since must be before --until', 'export');
      const { exportRecords } = await import('./export.js');
      const n = await exportRecords({ dataDir: o.dataDir ?? (io.env.KUBEVIGIL_DATA_DIR || './data'), since: o.since, until, what: o.what, out: io.out });
      io.err(`exported ${n.incidents} incident(s) and ${n.signals} signal(s)`);
      done(0);
    });
  addSilenceCommand(program, io, done);

  program
    .command('config')
    .summary('list the environment variables kubevigil reads, and their defaults')
    .description('List the environment variables kubevigil reads, with their defaults and meaning.')
    .usage(usageOf('config'))
    .action(() => {
      for (const s of SETTINGS) io.out(`${s.env.padEnd(26)} ${s.default.padEnd(12)} ${s.help}`);
      done(0);
    });

  // Commander's own messages and process.exit give way to one line of ours and an exit code.
  const quiet = (c: Command): void => {
    c.configureOutput({ writeOut: (s) => io.out(s.replace(/\n$/, '')), writeErr: () => {}, outputError: () => {} });
    c.exitOverride((e) => {
      throw toUsageError(e, c);
    });
    c.commands.forEach(quiet);
  };
  quiet(program);
  return program;
}

/** Help and version end well; every other commander error becomes a usage error of the command it came from. */
class Finished extends Error {
  constructor(readonly code: number) {
    super('finished');
  }
}

function toUsageError(e: CommanderError, c: Command): Error {
  const command = pathOf(c);
  if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || (e.code === 'commander.help' && e.exitCode === 0)) return new Finished(0);
  if (e.code === 'commander.help') {
    // A command that has subcommands was given none.
    const subs = c.commands.map((s) => s.name());
    return new UsageError(`${command || 'kubevigil'} needs a command: ${orList(subs)}`, command);
  }
  const [first = '', ...rest] = e.message.replace(/^error: /, '').split('\n');
  const suggestion = /Did you mean (?:one of )?(.*)\?/.exec(rest.join(' '))?.[1];
  const quoted = /'([^']*)'/.exec(first)?.[1] ?? '';
  const also = suggestion ? `; did you mean ${suggestion}?` : '';
  switch (e.code) {
    case 'commander.unknownCommand': {
      const subs = c.commands.map((s) => s.name());
      return new UsageError(`unknown command ${JSON.stringify(quoted)}${command ? ` for ${command}` : ''}${also || `; use ${orList(subs)}`}`, command);
    }
    case 'commander.unknownOption':
      return new UsageError(`unknown option ${quoted}${command ? ` for ${command}` : ''}${also}`, command);
    case 'commander.missingArgument': {
      const arg = c.registeredArguments.find((a) => a.name() === quoted);
      return new UsageError(`${command} needs ${arg?.variadic ? 'at least one ' : ''}${quoted}${arg?.description ? ` (${arg.description})` : ''}`, command);
    }
    case 'commander.optionMissingArgument': {
      const flag = /'(--?[\w-]+)/.exec(first)?.[1] ?? quoted;
      return new UsageError(`${flag} needs a value`, command);
    }
    case 'commander.excessArguments': {
      const extra = c.args.slice(c.registeredArguments.length);
      return new UsageError(
        `${command || 'kubevigil'} takes ${c.registeredArguments.length ? `only ${c.registeredArguments.length} argument(s)` : 'no arguments'}; remove ${extra.map((a) => JSON.stringify(a)).join(' ')}`,
        command,
      );
    }
    default:
      return new UsageError(first.replace(/\.$/, '') + also, command);
  }
}

/** Parses `argv` (without node and the script), runs the command, and says how it ended. */
export async function run(argv: string[], io: Io): Promise<Outcome> {
  let outcome: Outcome = 0;
  const program = buildProgram(io, (o) => (outcome = o));
  try {
    // No command at all: the help, as `kubevigil --help` prints it.
    await program.parseAsync(argv.length ? argv : ['--help'], { from: 'user' });
    return outcome;
  } catch (e) {
    if (e instanceof Finished) return e.code;
    const { code, lines } = explain(e);
    io.err(`kubevigil: ${lines.join('\n')}`);
    return code;
  }
}
