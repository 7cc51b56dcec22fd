/**
 * The embedded kubevigil of the "admission" bench case, in a process of its own so the load
 * generator's work does not share its event loop. Started with `fork`: it sends `{ url }` once
 * listening, answers "drain" with "drained" once the bus is empty, and stops on "stop".
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../services/config.js';
import { createLogger } from '../services/logging.js';
import { serve } from '../services/main.js';

const dir = mkdtempSync(join(tmpdir(), 'kv-bench-'));
const kv = await serve(
  loadConfig({ ...process.env, KUBEVIGIL_PORT: '0', KUBEVIGIL_DATA_DIR: dir, KUBEVIGIL_DEDUP_ENTRIES: '1000000' }),
  createLogger('silent'),
  { processMetrics: false, sweepSchedule: false },
);
process.on('message', (m) => {
  if (m === 'drain') void kv.drained().then(() => process.send?.('drained'));
  if (m === 'stop')
    void kv.stop().then(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    });
});
process.send?.({ url: kv.url });
