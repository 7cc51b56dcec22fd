/**
 * `npm run bench`: throughput figures, each reported as a ratio to a baseline measured in the same
 * run on the same bytes, because these machines are shared and noisy.
 *
 * Case "detection": realistic audit JSON lines → parse + validate + normalize + detect, against plain
 * JSON.parse of the same lines.
 */
import { decodeAuditLines } from '../connectors/k8s-audit/parse.js';
import { normalizeAuditEvent } from '../connectors/k8s-audit/normalize.js';
import { syntheticAuditEvents } from '../connectors/k8s-audit/synth.js';
import { loadDetector } from '../services/rules.js';

const N = Number(process.env.BENCH_EVENTS ?? 50_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function timeIt(fn: () => number): { seconds: number; result: number } {
  const t0 = process.hrtime.bigint();
  const result = fn();
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, result };
}

function detectionCase(): void {
  const detector = loadDetector();
  const events = syntheticAuditEvents(N, { suspiciousShare: 0.01 });
  const lines = events.map((e) => JSON.stringify(e));
  const bytes = lines.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
  // Batches of 400 lines, as the apiserver webhook batches them.
  const batches: string[] = [];
  for (let i = 0; i < lines.length; i += 400) batches.push(lines.slice(i, i + 400).join('\n'));

  const baseline = () => {
    let n = 0;
    for (const b of batches) for (const l of b.split('\n')) if (JSON.parse(l)) n++;
    return n;
  };
  let signals = 0;
  const ours = () => {
    let n = 0;
    signals = 0;
    for (const b of batches) {
      const batch = decodeAuditLines(b);
      for (const ev of batch.events) {
        signals += detector.detect(normalizeAuditEvent(ev, 0)).length;
        n++;
      }
    }
    return n;
  };
  // Warm up both paths so the JIT has compiled them before measuring.
  baseline();
  ours();
  const base: number[] = [];
  const mine: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    // Interleave rounds so background noise hits both sides alike.
    base.push(timeIt(baseline).seconds);
    mine.push(timeIt(ours).seconds);
  }
  const baseRate = N / median(base);
  const ourRate = N / median(mine);
  console.log(`detection: ${N} audit events, ${(bytes / N).toFixed(0)} B/event on average, ${detector.rules.length} rules, ${signals} signals`);
  console.log(`  JSON.parse only           ${Math.round(baseRate).toLocaleString('en-US').padStart(12)} events/s  (${((bytes / median(base)) / 1e6).toFixed(1)} MB/s)`);
  console.log(`  parse+validate+detect     ${Math.round(ourRate).toLocaleString('en-US').padStart(12)} events/s  (${((bytes / median(mine)) / 1e6).toFixed(1)} MB/s)`);
  console.log(`  ratio (ours / JSON.parse) ${(ourRate / baseRate).toFixed(2).padStart(12)}   target ≥ 0.50`);
}

detectionCase();
