/**
 * The ingest stage: detection over a batch of normalized source events, then publication of the
 * resulting signals to the bus. Receivers call it and answer their sender only after it resolves.
 */
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Detector } from '../correlator/detection/engine.js';
import type { SourceEvent } from '../correlator/detection/source-event.js';
import { KubevigilError } from '../correlator/errors.js';
import type { IngestOutcome, IngestSink, SignalPublisher } from '../correlator/ports.js';
import type { Signal } from '../correlator/signal.js';
import type { Bus } from './bus/bus.js';
import type { SignalsMessage, Topic } from './bus/topics.js';
import type { Metrics } from './metrics.js';
import type { UsageCount, UsageProfiler } from './usage.js';
import type { IdentityFact, IdentityResolver } from '../correlator/identity.js';
import { learnFrom, SOURCE_REGISTRY } from './sources.js';

const tracer = trace.getTracer('kubevigil');
const MAX_CLOCK_SKEW_MS = 5 * 60_000;

/** Publishes signals on a bus topic, keyed by actor so one actor's signals stay in order. */
export function busPublisher(bus: Bus, topic: Topic<SignalsMessage>): SignalPublisher {
  return {
    publish: (signals) =>
      bus.publish(
        topic,
        signals.map((s) => ({ key: s.actor.key, value: s })),
      ),
  };
}

/** {@link IngestSink} over a detector and a publisher, counting what passes. */
export class IngestPipeline implements IngestSink {
  constructor(
    private detector: Detector,
    private readonly publisher: SignalPublisher,
    private readonly metrics?: Metrics,
    private readonly usage?: UsageProfiler,
    private readonly identity?: IdentityResolver,
    /** KUBEVIGIL_CLUSTER_NAME: stamped on every signal, so incidents and notifications say where. */
    private readonly cluster?: string,
  ) {}

  /** A rule reload: batches from now on use this detector (a batch in progress finishes with the one it started with). */
  setDetector(detector: Detector): void {
    this.detector = detector;
  }

  /** Detects over all events, then publishes every signal of the batch in one call (in a span per batch). */
  ingest(events: readonly SourceEvent[]): Promise<IngestOutcome> {
    const source = events[0]?.source ?? 'unknown';
    return this.traced(source, events.length, {}, () => this.run(source, events));
  }

  /** Runs one batch's work in a `kubevigil.ingest` span that records its signal count, or its error. */
  private traced(source: string, count: number, attributes: Record<string, boolean>, work: () => Promise<IngestOutcome>): Promise<IngestOutcome> {
    return tracer.startActiveSpan(
      'kubevigil.ingest',
      { kind: SpanKind.SERVER, attributes: { 'kubevigil.source': source, 'kubevigil.events': count, ...attributes } },
      async (span) => {
        try {
          const out = await work();
          span.setAttribute('kubevigil.signals', out.signals);
          return out;
        } catch (e) {
          span.recordException(e as Error);
          span.setStatus({ code: SpanStatusCode.ERROR, message: (e as Error).message });
          throw e;
        } finally {
          span.end();
        }
      },
    );
  }

  private async run(source: string, events: readonly SourceEvent[]): Promise<IngestOutcome> {
    const end = this.metrics?.detectSeconds.startTimer({ source });
    const signals: Signal[] = [];
    const learning = this.identity ? { identity: this.identity } : undefined;
    const detector = this.detector;
    for (const ev of events) {
      // What the source teaches (identity facts) must be known before the next event's signals are resolved.
      if (learning) SOURCE_REGISTRY.get(ev.source)?.learn?.(ev, learning);
      const found = detector.detect(ev);
      for (const s of found) signals.push(s);
    }
    end?.();
    if (this.usage) learnFrom(events, { usage: this.usage });
    return this.finish(source, events.length, signals);
  }

  /**
   * Publishes signals detected elsewhere (a detection worker thread) for `count` events of `source`,
   * after what those events taught (identity facts, service-account usage) was learnt here, where
   * the other sources' signals are resolved; the same steps as {@link ingest} after detection.
   */
  publishDetected(
    source: string,
    count: number,
    detected: { signals: readonly Signal[]; facts: readonly IdentityFact[]; usage: readonly UsageCount[]; seconds: number },
  ): Promise<IngestOutcome> {
    return this.traced(source, count, { 'kubevigil.offloaded': true }, () => {
      this.metrics?.detectSeconds.observe({ source }, detected.seconds);
      if (this.identity) for (const f of detected.facts) this.identity.learn(f);
      if (this.usage) for (const u of detected.usage) this.usage.record(u, u.count);
      return this.finish(source, count, [...detected.signals]);
    });
  }

  /** Clock skew, identity resolution, cluster name, then one publish for the batch. */
  private async finish(source: string, count: number, signals: Signal[]): Promise<IngestOutcome> {
    // A sender's clock far in the future would push correlation windows ahead and make every later
    // signal of that actor "late": such times are replaced by the receive time, and the fact kept.
    for (const s of signals)
      if (s.eventTime > s.observedTime + MAX_CLOCK_SKEW_MS) {
        s.attributes = { ...s.attributes, reportedEventTime: String(s.eventTime) };
        s.eventTime = s.observedTime;
      }
    // Other sources name workloads by IP, pod or workload name: resolve them to the service account
    // (the cluster inventory first, else what the audit log taught); the evidence says which.
    if (this.identity)
      for (const s of signals) {
        const r = SOURCE_REGISTRY.get(s.source)?.authenticatesActors ? undefined : this.identity.resolve(s.actor, s.eventTime);
        if (r) {
          s.entities = [...new Set([...s.entities, ...r.via])];
          s.attributes = { ...s.attributes, identityFrom: r.resolvedBy, identityWas: s.actor.key };
          s.actor = r.actor;
        }
      }
    if (this.cluster) for (const s of signals) s.cluster = this.cluster;
    this.metrics?.ingestBatchSize.observe({ source }, count);
    if (signals.length) {
      try {
        // The bus carries this span's context (Kafka headers), so correlation continues the trace.
        await tracer.startActiveSpan('kubevigil.publish', { kind: SpanKind.PRODUCER, attributes: { 'kubevigil.signals': signals.length } }, (span) =>
          this.publisher.publish(signals).finally(() => span.end()),
        );
      } catch (e) {
        this.metrics?.publishFailures.inc({ topic: 'signals', reason: e instanceof KubevigilError ? e.code : 'error' });
        throw e;
      }
      if (this.metrics) for (const s of signals) this.metrics.signals.inc({ source: s.source, kind: s.kind, severity: s.severity });
    }
    return { signals: signals.length };
  }
}
