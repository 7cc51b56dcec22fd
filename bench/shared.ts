/** What several bench cases share: the median of their rounds, and the drain cases' signal stream. */
import { normalizeAuditEvent } from '../connectors/k8s-audit/normalize.js';
import { syntheticAuditEvents } from '../connectors/k8s-audit/synth.js';
import { encodeSignalsMessage } from '../services/bus/topics.js';
import { loadDetector } from '../services/rules.js';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/**
 * The signal messages of the drain cases (bench:kafka's drain, drain-work): `events` audit events,
 * 30% suspicious, from one noisy attacker or `attackers` compromised workloads, detected and
 * encoded as kubevigil's ingest publishes them (evidence last, its position in a header).
 */
export function drainSignalMessages(events: number, attackers: number): { key: string; value: string; headers: Record<string, string> }[] {
  const detector = loadDetector();
  return syntheticAuditEvents(events, { suspiciousShare: 0.3, seed: 22, stepMs: 2, attackers })
    .flatMap((e) => detector.detect(normalizeAuditEvent(e, 0)))
    .map((s) => {
      const { json, headers } = encodeSignalsMessage(s);
      return { key: s.actor.key, value: json, headers: { 'content-type': 'application/json', ...headers } };
    });
}
