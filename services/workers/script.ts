/** Where a worker thread's script is: compiled JavaScript (dist), or the TypeScript source under tsx (tests, benches). */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** A worker script and the Node.js options it needs. */
export interface WorkerScript {
  url: URL;
  execArgv?: string[];
}

/** The script at `base` (a URL without extension): `base.js` when it exists, else `base.ts` loaded through tsx. */
export function workerScript(base: URL): WorkerScript {
  const js = new URL(`${base.href}.js`);
  if (existsSync(fileURLToPath(js))) return { url: js };
  return { url: new URL(`${base.href}.ts`), execArgv: ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href] };
}
