/**
 * The correlation worker, except that the first one of a data directory dies (exit code 1) when it
 * is asked for its twelfth checkpoint (every partition has one by then): the batches it applied since the last one are lost with it,
 * as in a crash mid-stream.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';

const marker = join((workerData as { config: { dataDir: string } }).config.dataDir, 'correlate-worker-crashed');
if (!existsSync(marker)) {
  let flushes = 0;
  // Registered before the worker's own listener: the twelfth checkpoint is never written.
  parentPort!.on('message', (m: { type?: string }) => {
    if (m.type === 'flush' && ++flushes === 12) {
      writeFileSync(marker, '');
      process.exit(1);
    }
  });
}
await import('../../services/workers/correlate-worker.js');
