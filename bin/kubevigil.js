#!/usr/bin/env node
// The kubevigil command. kubevigil needs Node.js 22.19 or newer (it uses the built-in node:sqlite);
// when started by an older Node (a machine whose system Node is 20), it runs itself again under the
// Node 24 that `npm ci` installs with the package (the `node` dependency), or says what to install.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const MIN = [22, 19];
const [major, minor] = process.versions.node.split('.').map(Number);
const supported = major > MIN[0] || (major === MIN[0] && minor >= MIN[1]);

if (supported) {
  const compiled = new URL('../dist/services/cli/main.js', import.meta.url);
  if (existsSync(fileURLToPath(compiled))) {
    await import(compiled.href);
  } else {
    // A checkout that was never built (`npm ci` builds it): run the sources through tsx, a development
    // dependency, and say so if it is not there either.
    const tsx = await import('tsx/esm/api').catch(() => undefined);
    if (!tsx) {
      process.stderr.write('kubevigil: dist/ is missing; run `npm run build` (or `npm ci`, which builds it)\n');
      process.exit(1);
    }
    tsx.register();
    await import('../services/cli/main.ts');
  }
} else {
  const packaged = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
  if (!existsSync(packaged) || process.env.KUBEVIGIL_REEXEC === '1') {
    process.stderr.write(
      `kubevigil: Node.js ${process.versions.node} is too old; install Node.js ${MIN.join('.')} or newer (24 LTS), or run \`npm ci\` so the packaged Node 24 is used\n`,
    );
    process.exit(1);
  }
  const forward = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const child = spawn(packaged, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, KUBEVIGIL_REEXEC: '1' },
  });
  // The child is kubevigil: signals sent to this process (SIGTERM from Kubernetes, ^C) go to it.
  for (const sig of forward) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => {
    if (signal) {
      // End the way the child ended, so a caller sees the same signal.
      for (const sig of forward) process.removeAllListeners(sig);
      process.kill(process.pid, signal);
    } else process.exit(code ?? 1);
  });
}
