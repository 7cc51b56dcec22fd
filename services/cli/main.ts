/**
 * The `kubevigil` command (bin/kubevigil.js runs this file): serve, replay, rules lint, rules test,
 * demo, config. The commands and their options are in program.ts; this is the only place that
 * touches the process's streams and exit code. Everything else logs through pino.
 */
import { run, RUNNING } from './program.js';

const outcome = await run(process.argv.slice(2), {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
  stdoutIsTTY: process.stdout.isTTY === true,
  stderrIsTTY: process.stderr.isTTY === true,
});
// A failed command ends now, whatever it left behind (a half-started server, a follower); a
// successful one ends when its work is done, so that its output is flushed.
if (outcome !== RUNNING) {
  if (outcome === 0) process.exitCode = 0;
  else process.exit(outcome);
}
