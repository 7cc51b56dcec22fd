/**
 * The `kubevigil` command: serve, replay, rules lint, rules test. The only place that writes to the
 * console directly; everything else logs through pino.
 */
/* eslint-disable no-console */
import { parseArgs } from 'node:util';
import { formatProblem, RuleSetError } from '../../correlator/detection/problems.js';
import { KubevigilError } from '../../correlator/errors.js';
import { loadConfig, SETTINGS } from '../config.js';
import { createLogger } from '../logging.js';
import { serve } from '../main.js';
import { loadRules, testRules } from '../rules.js';
import { demo } from './demo.js';
import { replay } from './replay.js';

const USAGE = `kubevigil — security event correlation for Kubernetes

Usage:
  kubevigil serve [--host H] [--port P] [--insecure] [--role ingest,correlator,notifier,api]
        Run every role in one process on the embedded defaults; with KAFKA_BROKERS and REDIS_URL,
        run the given roles of a distributed deployment.
  kubevigil replay FILE|DIR|- … [--format table|json] [--follow] [--min-severity S] [--rules PATH]…
        Run detection offline over audit logs (JSON lines or EventLists) and print the signals.
  kubevigil rules lint [--rules PATH]…     Check every rule file; report every problem at once.
  kubevigil rules test [--rules PATH]…     Run the rule test files beside the rule files.
  kubevigil demo [--background N] [--format text|json] [--keep]
        Send the seed attack path with benign traffic through a local kubevigil; print the incident.
  kubevigil config                          List the environment variables and their defaults.

Docs: README.md (configuration, rule-writing guide).`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'serve': {
      const { values } = parseArgs({ args: rest, options: { host: { type: 'string' }, port: { type: 'string' }, insecure: { type: 'boolean' }, role: { type: 'string' } } });
      const config = loadConfig(process.env, values);
      const logger = createLogger(config.logLevel);
      const running = await serve(config, logger);
      const shutdown = (signal: string) => {
        logger.info({ signal }, 'shutting down');
        running.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            logger.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
      return -1; // keep running
    }
    case 'replay': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          format: { type: 'string', default: process.stdout.isTTY ? 'table' : 'json' },
          follow: { type: 'boolean', default: false },
          'min-severity': { type: 'string' },
          rules: { type: 'string', multiple: true, default: [] },
          'no-progress': { type: 'boolean', default: false },
        },
      });
      if (positionals.length === 0) {
        console.error('replay needs at least one FILE, DIR or - (stdin)\n\n' + USAGE);
        return 2;
      }
      if (values.format !== 'table' && values.format !== 'json') {
        console.error(`--format ${values.format} is not known; use table or json`);
        return 2;
      }
      return replay({
        inputs: positionals,
        format: values.format,
        follow: values.follow,
        minSeverity: values['min-severity'],
        rulesPaths: [...(process.env.KUBEVIGIL_RULES_DIR ?? '').split(':').filter(Boolean), ...values.rules],
        progress: !values['no-progress'] && process.stderr.isTTY === true,
      });
    }
    case 'rules': {
      const [sub, ...more] = rest;
      const { values } = parseArgs({ args: more, options: { rules: { type: 'string', multiple: true, default: [] }, 'no-shipped': { type: 'boolean', default: false } } });
      const paths = [...(process.env.KUBEVIGIL_RULES_DIR ?? '').split(':').filter(Boolean), ...values.rules];
      if (sub === 'lint') {
        const r = loadRules(paths, !values['no-shipped']);
        for (const p of r.problems) console.log(formatProblem(p));
        console.log(`${r.rules.length} rule(s) enabled, ${r.disabled.length} disabled, ${r.problems.length} problem(s)`);
        return r.problems.length ? 1 : 0;
      }
      if (sub === 'test') {
        const r = testRules(paths, !values['no-shipped']);
        for (const p of r.problems) console.log(`PROBLEM ${formatProblem(p)}`);
        for (const t of r.results) {
          console.log(`${t.ok ? 'ok  ' : 'FAIL'} ${t.file.replace(/^.*\/rules\//, 'rules/')}: ${t.name}`);
          for (const f of t.failures) console.log(`       ${f}`);
        }
        for (const u of r.untested) console.log(`UNTESTED ${u}: add ${u.replace(/\.ya?ml$/, '.test.yaml')}`);
        const failed = r.results.filter((t) => !t.ok).length;
        console.log(`${r.results.length - failed} passed, ${failed} failed`);
        return failed || r.problems.length || r.untested.length ? 1 : 0;
      }
      console.error(`unknown rules command ${JSON.stringify(sub)}; use lint or test`);
      return 2;
    }
    case 'demo': {
      const { values } = parseArgs({ args: rest, options: { background: { type: 'string', default: '2000' }, format: { type: 'string', default: 'text' }, keep: { type: 'boolean', default: false } } });
      const background = Number(values.background);
      if (!Number.isInteger(background) || background < 0 || background > 1_000_000) {
        console.error('--background must be an integer from 0 to 1000000 (benign events mixed into the attack)');
        return 2;
      }
      if (values.format !== 'text' && values.format !== 'json') {
        console.error(`--format ${values.format} is not known; use text or json`);
        return 2;
      }
      await demo({ background, format: values.format, keep: values.keep, out: (s) => console.log(s) });
      return values.keep ? -1 : 0;
    }
    case 'config':
      for (const s of SETTINGS) console.log(`${s.env.padEnd(26)} ${s.default.padEnd(12)} ${s.help}`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return 0;
    default:
      console.error(`unknown command ${JSON.stringify(cmd)}\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof RuleSetError || err instanceof KubevigilError) console.error(err.message);
    else if (err instanceof Error && 'code' in err && typeof (err as { code: unknown }).code === 'string' && (err as { code: string }).code.startsWith('ERR_PARSE_ARGS'))
      console.error(`${err.message}\n\n${USAGE}`);
    else console.error(err);
    process.exitCode = 1;
  },
);
