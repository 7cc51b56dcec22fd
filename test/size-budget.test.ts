import { describe, expect, it } from 'vitest';
import { attackEvents } from '../connectors/k8s-audit/scenario.js';
import { normalizeAuditEvent } from '../connectors/k8s-audit/normalize.js';
import { boundExcerpt, boundSignal, cut, SIGNAL_BUDGET } from '../correlator/budget.js';
import type { Signal } from '../correlator/signal.js';
import { Received, testPrefix } from '../services/bus/bus.contract.js';
import { createKafkaBus } from '../services/bus/kafka.js';
import type { SignalsMessage } from '../services/bus/topics.js';
import { busPublisher, IngestPipeline } from '../services/ingest.js';
import { createLogger, LOG_BOUNDS } from '../services/logging.js';
import { loadDetector, loadRules } from '../services/rules.js';
import { CorrelationEngine } from '../correlator/correlation/engine.js';
import { IncidentManager } from '../correlator/incidents.js';

const MB = 1024 * 1024;
const bytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v), 'utf8');

describe('cut', () => {
  it('leaves short strings alone and marks a cut with its length and a digest of the whole', () => {
    expect(cut('frontend', 256)).toBe('frontend');
    const long = 'a'.repeat(1000);
    const c = cut(long, 256);
    expect(c.startsWith('a'.repeat(256) + '…[+744 chars ')).toBe(true);
    expect(c.length).toBeLessThan(300);
    // Two long names with the same prefix stay two names (an actor key is a merge key).
    expect(cut(`${long}x`, 256)).not.toBe(cut(`${long}y`, 256));
  });
});

describe('boundExcerpt', () => {
  it('copies a wide excerpt again with tighter bounds until it fits the byte budget, and says so', () => {
    const wide: Record<string, unknown> = {};
    for (let i = 0; i < 30; i++) wide[`k${i}`] = Array.from({ length: 16 }, () => 'x'.repeat(500));
    expect(bytes(wide)).toBeGreaterThan(SIGNAL_BUDGET.excerptBytes);
    const b = boundExcerpt(wide);
    expect(bytes(b)).toBeLessThanOrEqual(SIGNAL_BUDGET.excerptBytes);
    expect(String(b['…excerpt'])).toMatch(/cut from \d+ bytes/);
    expect(Object.keys(b).some((k) => k.startsWith('k'))).toBe(true);
  });
  it('returns a small excerpt unchanged (same object)', () => {
    const small = { verb: 'get' };
    expect(boundExcerpt(small)).toBe(small);
  });
});

describe('signals from attacker-sized input', () => {
  const detector = loadDetector();
  const signalsOf = (mutate: (e: Record<string, unknown>) => void): Signal[] => {
    const out: Signal[] = [];
    for (const e of attackEvents()) {
      const ev = structuredClone(e) as unknown as Record<string, unknown>;
      mutate(ev);
      const n = normalizeAuditEvent(ev as never, Date.now());
      out.push(...detector.detect(n));
    }
    return out;
  };

  it('an 11 MB username and a 1 MB request URI give signals of a few kilobytes, each still naming its actor apart', () => {
    const names = ['A', 'B'].map((c) => `system:serviceaccount:frontend:${c}${'z'.repeat(11 * MB)}`);
    const perName = names.map((name) =>
      signalsOf((ev) => {
        (ev.user as Record<string, unknown>).username = name;
        ev.requestURI = `/api/v1/namespaces/payments/secrets?q=${'u'.repeat(MB)}`;
      }),
    );
    for (const signals of perName) {
      expect(signals.length).toBeGreaterThan(5);
      for (const s of signals) {
        expect(bytes(s)).toBeLessThanOrEqual(SIGNAL_BUDGET.signalBytes);
        expect(s.actor.name.length).toBeLessThan(SIGNAL_BUDGET.name + 40);
        expect(s.actor.key).toMatch(/…\[\+\d+ chars [0-9a-f]{12}\]$/);
      }
    }
    expect(perName[0]![0]!.actor.key).not.toBe(perName[1]![0]!.actor.key);
    // The incident they make stays small too (one 11 MB username once made a 92 MB incident).
    const m = new IncidentManager(new CorrelationEngine(loadRules().correlations), { now: () => Date.now() });
    const incidents = m.process(perName[0]!).incidents;
    expect(incidents).toHaveLength(1);
    expect(bytes(incidents[0])).toBeLessThan(256 * 1024);
  });

  it('a signal that is within budget is passed through as it is (no copy on the hot path)', () => {
    const [s] = signalsOf(() => undefined);
    expect(boundSignal(s!)).toBe(s);
  });

  it('bounds every part: entities, attributes, target, matched', () => {
    const [s] = signalsOf(() => undefined);
    const big: Signal = {
      ...s!,
      entities: Array.from({ length: 500 }, (_, i) => `pod:ns/${i}-${'p'.repeat(2000)}`),
      attributes: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`a${i}`, 'v'.repeat(5000)])),
      target: { namespace: 'n'.repeat(5000), name: 'm'.repeat(5000) },
      excerpt: { requestURI: 'r'.repeat(SIGNAL_BUDGET.signalBytes * 4) },
    };
    const stats = { cutSignals: 0 };
    const b = boundSignal(big, stats);
    expect(stats.cutSignals).toBe(1);
    const onlyAttributes = boundSignal({ ...s!, attributes: big.attributes });
    expect(Object.keys(onlyAttributes.attributes).length).toBe(SIGNAL_BUDGET.attributes);
    expect(Object.values(onlyAttributes.attributes).every((v) => v.length < SIGNAL_BUDGET.attributeValue + 40)).toBe(true);
    // At their limits together the lists would pass the signal budget: their tails went too.
    expect(b.entities.length).toBeGreaterThan(0);
    expect(b.entities.length).toBeLessThanOrEqual(SIGNAL_BUDGET.entities);
    expect(Object.keys(b.attributes).length).toBeLessThanOrEqual(SIGNAL_BUDGET.attributes);
    expect(b.excerpt['…excerpt']).toMatch(/cut from|omitted/);
    expect(b.target.namespace!.length).toBeLessThan(SIGNAL_BUDGET.name + 40);
    expect(bytes(b)).toBeLessThanOrEqual(SIGNAL_BUDGET.signalBytes);
  });
});

const brokers = process.env.KAFKA_BROKERS?.split(',').filter(Boolean) ?? [];

describe.skipIf(brokers.length === 0)('a 1 MB request line on Kafka (needs KAFKA_BROKERS)', () => {
  it('the whole audit batch is published: the long request is cut, not the batch refused', async () => {
    const bus = createKafkaBus({ brokers, clientId: 'kubevigil-test', topicPrefix: testPrefix('one-mb'), partitions: 2 });
    await bus.start();
    try {
      const events = attackEvents();
      // The apiserver accepts request lines up to 1 MB; one of them, in the middle of the batch.
      const long = events[Math.floor(events.length / 2)] as unknown as Record<string, unknown>;
      long.requestURI = `/api/v1/namespaces/payments/secrets?labelSelector=${'x'.repeat(MB - 100)}`;
      const pipeline = new IngestPipeline(loadDetector(), busPublisher(bus, bus.topics.signals));
      const out = await pipeline.ingest(events.map((e) => normalizeAuditEvent(e, Date.now())));
      expect(out.signals).toBeGreaterThan(10);
      const got = new Received<SignalsMessage>();
      bus.subscribe(bus.topics.signals, 'one-mb', got.handler);
      await got.until((r) => r.messages.length >= out.signals, `${out.signals} signals`);
      expect(got.messages.length).toBe(out.signals);
      for (const m of got.messages) expect(bytes(m.value)).toBeLessThanOrEqual(SIGNAL_BUDGET.signalBytes);
    } finally {
      await bus.close();
    }
  });
});

describe('log lines', () => {
  it('cut attacker-sized strings, error messages and lists, and still redact secrets', () => {
    const lines: string[] = [];
    const log = createLogger('info', { write: (l: string) => void lines.push(l) });
    log.warn(
      {
        err: new Error(`invalid event from ${'u'.repeat(11 * MB)}`),
        attacker: { username: 'u'.repeat(11 * MB) },
        ids: Array.from({ length: 1000 }, (_, i) => i),
        token: 'abc',
      },
      'request refused',
    );
    expect(lines).toHaveLength(1);
    expect(lines[0]!.length).toBeLessThan(20_000);
    const o = JSON.parse(lines[0]!) as { err: { type: string; message: string }; attacker: { username: string }; ids: unknown[]; token: string };
    expect(o.err.type).toBe('Error');
    expect(o.err.message).toMatch(/…\[\+\d+ chars [0-9a-f]{12}\]$/);
    expect(o.attacker.username.length).toBeLessThan(LOG_BOUNDS.string + 40);
    expect(o.ids).toHaveLength(LOG_BOUNDS.items + 1);
    expect(o.token).toBe('[REDACTED]');
  });
});
