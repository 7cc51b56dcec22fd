/**
 * The correlation worker, except that once the test creates `crash-correlate-worker` in the data
 * directory, the worker dies (exit code 1) when it is next asked for a checkpoint of a partition it
 * checkpointed before: the batches it applied since are lost with it, as in a crash mid-stream
 * (a partition without any checkpoint would be rebuilt from the topic instead). Only the first
 * worker of a data directory dies (it leaves `correlate-worker-crashed` behind).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';

const dir = (workerData as { config: { dataDir: string } }).config.dataDir;
const marker = join(dir, 'correlate-worker-crashed');
if (!existsSync(marker)) {
  const checkpointed = new Set<number>();
  // Registered before the worker's own listener: this checkpoint is never written.
  parentPort!.on('message', (m: { type?: string; partition?: number }) => {
    if (m.type !== 'flush') return;
    if (checkpointed.has(m.partition!) && existsSync(join(dir, 'crash-correlate-worker'))) {
      writeFileSync(marker, '');
      process.exit(1);
    }
    checkpointed.add(m.partition!);
  });
}
await import('../../services/workers/correlate-worker.js');
