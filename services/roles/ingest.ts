/**
 * The ingest role: the sink behind the receivers (detection → signals topic) and the pollers that
 * feed it (each source's own, from the registry: Loki LogQL, Tempo TraceQL). The serious signals
 * are logged once, by the process that detected them, after the bus acknowledged them.
 */
import type { CompiledRule, RuleFileInput } from '../../correlator/detection/compile.js';
import { Detector } from '../../correlator/detection/engine.js';
import type { Severity } from '../../correlator/severity.js';
import { IdentityResolver } from '../../correlator/identity.js';
import type { SignalPublisher } from '../../correlator/ports.js';
import { busPublisher, IngestPipeline } from '../ingest.js';
import { DetectionPool } from '../workers/pool.js';
import { SCHEMAS } from '../rules.js';
import { SOURCE_LIST, type Poller } from '../sources.js';
import type { Component } from './lifecycle.js';
import type { Stage } from './stage.js';

/** Detection and publication of signals, and the pollers. */
export class IngestRole implements Component {
  readonly name = 'ingest';
  /** Where receivers and pollers hand their events. */
  readonly sink: IngestPipeline;
  private readonly pollers: Poller[] = [];
  private readonly started: Poller[] = [];
  private detector: Detector;
  /** KUBEVIGIL_WORKERS > 0: audit bodies are decoded and detected on these worker threads. */
  readonly pool?: DetectionPool;
  /** Signals cut by detectors replaced in a reload, so the counter never goes back. */
  private cutBefore = 0;

  constructor(s: Stage) {
    const { config, logger, metrics } = s;
    const detector = new Detector(s.rules.rules, SCHEMAS, { minSeverity: config.minSeverity });
    this.detector = detector;
    const identity = new IdentityResolver(s.clock, {}, s.inventory);
    metrics.trackDrops('identity', 'evicted', () => identity.stats.evicted);
    // Not dropped, cut: signals whose attacker-sized strings or excerpt were cut to the size budget.
    metrics.trackDrops('detection', 'signal_cut', () => this.cutBefore + this.detector.budget.cutSignals + (this.pool?.cutSignals ?? 0));
    const toBus = busPublisher(s.bus, s.topics.signals);
    const publisher: SignalPublisher = {
      publish: async (signals) => {
        await toBus.publish(signals);
        for (const sig of signals)
          if (sig.severity === 'high' || sig.severity === 'critical')
            logger.warn(
              { signal: { id: sig.id, kind: sig.kind, severity: sig.severity, rule: sig.rule.id, actor: sig.actor.key }, attacker: { title: sig.title } },
              'signal',
            );
      },
    };
    const sink = new IngestPipeline(detector, publisher, metrics, s.usage, identity, config.clusterName);
    this.sink = sink;
    if (config.workers > 0 && s.rules.detectionFiles) {
      const pool = new DetectionPool(config.workers, { files: s.rules.detectionFiles, minSeverity: config.minSeverity }, sink, {
        onCrash: (err) => logger.error({ err }, 'a detection worker stopped; it is replaced, and its batches were answered 503'),
        maxQueueDelayMs: config.ingestMaxQueueDelayMs,
        onQueueDelayRefusal: () => metrics.ingestRejected.inc({ source: 'k8s-audit', reason: 'queue_delay' }),
      });
      this.pool = pool;
    }
    // Pollers keep where they got to in the store's state.
    const state = { get: (k: string) => s.store.getState(k), set: (k: string, v: string) => s.store.setState(k, v) };

    // Every source that polls, from the registry.
    for (const source of SOURCE_LIST) {
      const poller = source.poller?.({ config, sink, state, metrics, logger });
      if (poller) this.pollers.push(poller);
    }
  }

  /** A rule reload: a new detector (detection is stateless), swapped in between two batches, here and on the workers. */
  setRules(rules: readonly CompiledRule[], minSeverity: Severity, files?: RuleFileInput[]): void {
    if (this.pool && files) this.pool.setRules({ files, minSeverity });
    const next = new Detector(rules, SCHEMAS, { minSeverity });
    this.cutBefore += this.detector.budget.cutSignals;
    this.detector = next;
    this.sink.setDetector(next);
  }

  start(): void {
    this.pool?.start();
    for (const p of this.pollers) {
      p.start();
      this.started.push(p);
    }
  }

  /** Stops the pollers, last started first, each waiting for its poll in progress; then the workers. */
  async stop(): Promise<void> {
    for (const p of this.started.splice(0).reverse()) await p.stop();
    await this.pool?.stop();
  }
}
