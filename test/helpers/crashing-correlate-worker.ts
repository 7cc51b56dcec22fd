/**
 * The correlation worker, except that the first one of a data directory dies (exit code 1) when it
 * is asked for a checkpoint once every partition of the test's topic (4) has one: the batches it
 * applied since are lost with it, as in a crash mid-stream.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';

const marker = join((workerData as { config: { dataDir: string } }).config.dataDir, 'correlate-worker-crashed');
if (!existsSync(marker)) {
  const checkpointed = new Set<number>();
  // Registered before the worker's own listener: this checkpoint is never written.
  parentPort!.on('message', (m: { type?: string; partition?: number }) => {
    if (m.type !== 'flush') return;
    if (checkpointed.size === 4) {
      writeFileSync(marker, '');
      process.exit(1);
    }
    checkpointed.add(m.partition!);
  });
}
await import('../../services/workers/correlate-worker.js');
