/**
 * One audit webhook body, decoded, normalized and run through detection in one go, away from the
 * event loop that serves HTTP (a detection worker thread, services/workers/pool.ts). What comes
 * back is small: the dedup keys, the invalid events, the signals (about 1% of events raise any) and
 * what the ingest stage learns from the events (identity facts, service-account usage), each tagged
 * with the index of its event so the receiver can drop what belongs to re-sent events.
 */
import type { Detector } from '../../correlator/detection/engine.js';
import type { IdentityFact } from '../../correlator/identity.js';
import type { Signal } from '../../correlator/signal.js';
import { identityFacts } from '../../connectors/k8s-audit/identity.js';
import { AuditPayloadError, decodeAuditJson, decodeAuditLines, type DecodedBatch } from '../../connectors/k8s-audit/parse.js';
import { normalizeAuditEvent } from '../../connectors/k8s-audit/normalize.js';
import type { OffloadedAudit } from '../../connectors/k8s-audit/receiver.js';
import { auditKeys } from '../../connectors/k8s-audit/audit-dedup.js';
import { decodeUtf8 } from '../../platform/http.js';
import { usageOf, type UsageKey } from '../usage.js';

/** One permission a body's events used ({@link usageOf}), with the indices of those events. */
export interface UsageBatch extends UsageKey {
  events: number[];
}

/** A body detected off the event loop: {@link OffloadedAudit} plus what the ingest stage publishes and learns. */
export interface DetectedAudit extends OffloadedAudit {
  /** [event index, its signals], only for events that raised any. */
  signals: [number, Signal[]][];
  /** [event index, its identity facts], only for events that teach any. */
  facts: [number, IdentityFact[]][];
  /**
   * Service-account usage (the profiler's counts), one entry per permission the body's final events
   * used: a body's requests mostly repeat a few, so this is a few entries instead of one per event.
   */
  usage: UsageBatch[];
  /** Signals cut to the size budget while detecting this body. */
  cut: number;
  /** Seconds spent decoding and detecting. */
  seconds: number;
}

/** A body that is unusable as a whole: the 400 answer's detail. */
export interface RejectedAudit {
  problem: string;
}

/** Decodes, normalizes and detects one body; the same steps, in the same order, as the in-process receiver and ingest stage. */
export function detectAuditBody(detector: Detector, body: Uint8Array, lines: boolean, observed: number): DetectedAudit | RejectedAudit {
  const t0 = performance.now();
  const text = decodeUtf8(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
  if (text === undefined) return { problem: 'the body is not valid UTF-8; audit events are JSON text' };
  let batch: DecodedBatch;
  try {
    batch = lines ? decodeAuditLines(text) : decodeAuditJson(text);
  } catch (e) {
    if (!(e instanceof AuditPayloadError)) throw e;
    return { problem: e.message };
  }
  const cutBefore = detector.budget.cutSignals;
  // The dedup keys, in the compact form where they have one: a typed array the answer transfers.
  const out: DetectedAudit = { keys: auditKeys(batch.events), invalid: batch.invalid, signals: [], facts: [], usage: [], cut: 0, seconds: 0 };
  const usage = new Map<string, UsageBatch>();
  for (let i = 0; i < batch.events.length; i++) {
    const raw = batch.events[i]!;
    const ev = normalizeAuditEvent(raw, observed);
    const facts = identityFacts(raw, ev.observedTime);
    if (facts.length) out.facts.push([i, facts]);
    const u = ev.final ? usageOf(raw) : undefined;
    if (u) {
      const k = `${u.actor}\u0000${u.key}`;
      const b = usage.get(k);
      if (b) b.events.push(i);
      else usage.set(k, { ...u, events: [i] });
    }
    const found = detector.detect(ev);
    if (found.length) out.signals.push([i, found]);
  }
  out.usage = [...usage.values()];
  out.cut = detector.budget.cutSignals - cutBefore;
  out.seconds = (performance.now() - t0) / 1000;
  return out;
}
