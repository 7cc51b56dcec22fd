/**
 * A detection worker thread: compiles the detection rules it is sent (the same files the main
 * thread compiled) and answers audit bodies with {@link detectAuditBody}. Messages are handled in
 * order, so a rule reload sent before a body applies to it.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort, workerData } from 'node:worker_threads';
import { compileRules, type RuleFileInput } from '../../correlator/detection/compile.js';
import { Detector } from '../../correlator/detection/engine.js';
import type { Severity } from '../../correlator/severity.js';
import { SCHEMAS } from '../rules.js';
import { detectAuditBody } from './audit-batch.js';
import type { PoolRequest, PoolAnswer, WorkerRules } from './pool.js';

function build(rules: WorkerRules): Detector {
  const compiled = compileRules(rules.files as RuleFileInput[], SCHEMAS);
  return new Detector(compiled.rules, SCHEMAS, { minSeverity: rules.minSeverity as Severity });
}

/**
 * A worker is idle between bursts, and V8 collects on allocation, not on idleness: the garbage of a
 * large body (and its transferred bytes, held until then) would stay resident until the next body.
 * After a large body, a full collection once the worker has nothing else to do gives it back.
 */
const LARGE_BODY = 1024 * 1024;
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;
let collectTimer: NodeJS.Timeout | undefined;

let detector = build(workerData as WorkerRules);
const port = parentPort!;
port.on('message', (m: PoolRequest) => {
  if (m.type === 'rules') {
    detector = build(m.rules);
    return;
  }
  let answer: PoolAnswer;
  try {
    answer = { id: m.id, result: detectAuditBody(detector, m.body, m.lines, m.observed) };
  } catch (e) {
    answer = { id: m.id, error: (e as Error).stack ?? String(e) };
  }
  // The dedup keys' words move to the event loop instead of being copied.
  port.postMessage(answer, 'result' in answer && 'keys' in answer.result ? [answer.result.keys.words.buffer as ArrayBuffer] : []);
  if (m.body.byteLength >= LARGE_BODY) {
    clearTimeout(collectTimer);
    collectTimer = setTimeout(collect, 50);
    collectTimer.unref();
  }
});
