/**
 * The real sender: Prometheus (scraping a gauge the test controls, evaluating a rule every second)
 * and Alertmanager (routing to kubevigil's receiver, running in-process) from Debian's packages.
 * Skipped, saying why, when the binaries are missing (`bash scripts/prometheus.sh install`).
 */
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertmanagerReceiver } from '../connectors/alertmanager/receiver.js';
import { ALERTMANAGER_SOURCE } from '../connectors/alertmanager/source.js';
import type { AlertRecord } from '../connectors/alertmanager/normalize.js';
import { labelsFingerprint } from '../connectors/alertmanager/parse.js';
import { compileRules } from '../correlator/detection/compile.js';
import { Detector } from '../correlator/detection/engine.js';
import type { SourceEvent } from '../correlator/detection/source-event.js';
import { BackpressureError } from '../correlator/errors.js';
import type { IngestSink } from '../correlator/ports.js';
import type { Signal } from '../correlator/signal.js';
import { readYaml, SHIPPED_DETECTIONS } from '../services/rules.js';
import { listen, type Listening } from './helpers/http.js';
import { GaugeEndpoint, missingBinaries, startPrometheusStack, waitFor, type PrometheusStack } from './helpers/prometheus.js';

const missing = missingBinaries();
if (missing.length) console.warn(`alertmanager-real: skipped, ${missing.join(' and ')} missing; run: bash scripts/prometheus.sh install`);

function alertmanagerDetector(): Detector {
  const file = `${SHIPPED_DETECTIONS}/alertmanager.yaml`;
  const { rules, problems } = compileRules([{ file, doc: readYaml(file, []) }], [ALERTMANAGER_SOURCE.schema]);
  if (problems.length) throw new Error(`alertmanager.yaml: ${JSON.stringify(problems)}`);
  return new Detector(rules, [ALERTMANAGER_SOURCE.schema]);
}

/** Records what the receiver hands on and the signals detection finds; refuses named alerts a number of times, like a full bus. */
class RecordingSink implements IngestSink {
  events: SourceEvent[] = [];
  signals: Signal[] = [];
  refusals = new Map<string, number>();
  constructor(private readonly detector: Detector) {}
  async ingest(events: readonly SourceEvent[]) {
    for (const ev of events) {
      const name = (ev.raw as AlertRecord).labels.alertname ?? '';
      const left = this.refusals.get(name) ?? 0;
      if (left > 0) {
        this.refusals.set(name, left - 1);
        throw new BackpressureError('test bus', 1, 1);
      }
    }
    this.events.push(...events);
    const found = events.flatMap((e) => this.detector.detect(e));
    this.signals.push(...found);
    return { signals: found.length };
  }
  alerts(alertname: string, status?: string): AlertRecord[] {
    return this.events.map((e) => e.raw as AlertRecord).filter((a) => a.labels.alertname === alertname && (!status || a.status === status));
  }
}

const RULES = `groups:
  - name: kubevigil-test
    interval: 1s
    rules:
      - alert: IstioMTLSFailures
        expr: kv_test_mtls_failures > 0
        for: 0s
        labels: { severity: critical, team: mesh }
        annotations:
          summary: "{{ $labels.source_workload }} fails mTLS to {{ $labels.destination_workload_namespace }}/{{ $labels.destination_workload }}"
      - alert: APIServerUnauthorizedSpike
        expr: kv_test_apiserver_unauthorized > 0
        for: 0s
        labels: { severity: warning }
`;

const MTLS_SERIES = {
  source_principal: 'spiffe://cluster.local/ns/frontend/sa/frontend',
  source_workload: 'frontend',
  source_workload_namespace: 'frontend',
  destination_workload: 'postgres',
  destination_workload_namespace: 'payments',
  connection_security_policy: 'none',
};

describe.skipIf(missing.length > 0)('Alertmanager webhook from the real Prometheus and Alertmanager', () => {
  const gauges = new GaugeEndpoint();
  let sink: RecordingSink;
  let receiver: Listening;
  let stack: PrometheusStack | undefined;
  const statuses: number[] = [];
  const userAgents = new Set<string>();
  let duplicates = 0;

  beforeAll(async () => {
    gauges.set('kv_test_mtls_failures', MTLS_SERIES, 0);
    gauges.set('kv_test_apiserver_unauthorized', { code: '401' }, 0);
    await gauges.start();
    sink = new RecordingSink(alertmanagerDetector());
    const app = express();
    app.use((req, _res, next) => {
      userAgents.add(String(req.headers['user-agent']));
      next();
    });
    app.use(
      alertmanagerReceiver({
        sink,
        maxBodyBytes: 1024 * 1024,
        dedupEntries: 1000,
        stats: { events: (outcome, n) => void (outcome === 'duplicate' && (duplicates += n)), request: (s) => void statuses.push(s) },
      }),
    );
    receiver = await listen(app);
    stack = await startPrometheusStack({ scrapeTarget: gauges.url, rules: RULES, webhookUrl: `${receiver.url}/ingest/alertmanager` });
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    await receiver?.close();
    await gauges.close();
  });

  const logs = () => `\n--- alertmanager ---\n${stack?.alertmanager.logTail(15)}\n--- prometheus ---\n${stack?.prometheus.logTail(10)}`;
  const wait = <T>(what: string, probe: () => T | undefined) =>
    waitFor(what, probe, 40_000).catch((e: Error) => {
      throw new Error(`${e.message}${logs()}`);
    });

  it('delivers a firing alert with its labels, annotations, fingerprint and group context, and it raises the mTLS signal', async () => {
    gauges.set('kv_test_mtls_failures', MTLS_SERIES, 3);
    const alert = await wait('the firing IstioMTLSFailures webhook', () => sink.alerts('IstioMTLSFailures', 'firing')[0]);
    expect(alert.labels).toMatchObject({
      alertname: 'IstioMTLSFailures',
      severity: 'critical',
      team: 'mesh',
      job: 'kubevigil-test',
      instance: gauges.url,
      ...MTLS_SERIES,
    });
    expect(alert.annotations.summary).toBe('frontend fails mTLS to payments/postgres');
    expect(alert.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(alert.fingerprint).toBe(labelsFingerprint(alert.labels));
    expect(alert.endsAt).toBe('0001-01-01T00:00:00Z');
    expect(alert.generatorURL).toContain(`:${new URL(stack!.prometheus.url).port}/graph?g0.expr=kv_test_mtls_failures`);
    expect(alert.group).toMatchObject({
      receiver: 'kubevigil',
      status: 'firing',
      version: '4',
      groupLabels: { alertname: 'IstioMTLSFailures' },
      truncatedAlerts: 0,
    });
    expect(alert.group.groupKey).toContain('alertname="IstioMTLSFailures"');
    expect([...userAgents].some((ua) => /^Alertmanager\/0\.\d+/.test(ua))).toBe(true);

    const signal = sink.signals.find((s) => s.rule.id === 'alertmanager-mtls-failures');
    expect(signal).toMatchObject({
      kind: 'mtls.failed',
      severity: 'high',
      source: 'alertmanager',
      actor: { key: 'sa:frontend/frontend' },
      target: { namespace: 'payments', name: 'postgres' },
    });
    expect(signal!.attributes).toMatchObject({
      alertname: 'IstioMTLSFailures',
      fingerprint: alert.fingerprint,
      status: 'firing',
      destinationNamespace: 'payments',
      destinationWorkload: 'postgres',
    });
  }, 60_000);

  it('deduplicates the repeat deliveries of the firing alert (repeat_interval)', async () => {
    await wait('a repeat delivery counted as duplicate', () => (duplicates > 0 ? true : undefined));
    expect(sink.alerts('IstioMTLSFailures', 'firing')).toHaveLength(1);
    expect(sink.signals.filter((s) => s.rule.id === 'alertmanager-mtls-failures')).toHaveLength(1);
    expect(statuses.every((s) => s === 200)).toBe(true);
  }, 60_000);

  it('delivers the resolution after the gauge drops: same fingerprint and startsAt, an endsAt, its own key and an info signal', async () => {
    const [firing] = sink.alerts('IstioMTLSFailures', 'firing');
    gauges.set('kv_test_mtls_failures', MTLS_SERIES, 0);
    const resolved = await wait('the resolved IstioMTLSFailures webhook', () => sink.alerts('IstioMTLSFailures', 'resolved')[0]);
    expect(resolved.fingerprint).toBe(firing!.fingerprint);
    expect(resolved.startsAt).toBe(firing!.startsAt);
    expect(Date.parse(resolved.endsAt)).toBeGreaterThanOrEqual(Date.parse(resolved.startsAt));
    expect(resolved.group.status).toBe('resolved');
    const keys = sink.events.filter((e) => (e.raw as AlertRecord).labels.alertname === 'IstioMTLSFailures').map((e) => e.key);
    expect(new Set(keys).size).toBe(2);
    const info = sink.signals.filter((s) => s.attributes.status === 'resolved');
    expect(info.map((s) => [s.rule.id, s.severity, s.kind, s.actor.key])).toEqual([
      ['alertmanager-alert-resolved', 'info', 'alert.security', 'sa:frontend/frontend'],
    ]);
  }, 60_000);

  it('answers 503 while the bus refuses, and Alertmanager retries until the alert is taken, once', async () => {
    sink.refusals.set('APIServerUnauthorizedSpike', 2);
    gauges.set('kv_test_apiserver_unauthorized', { code: '401' }, 5);
    const alert = await wait('the APIServerUnauthorizedSpike webhook after two refusals', () => sink.alerts('APIServerUnauthorizedSpike', 'firing')[0]);
    expect(sink.refusals.get('APIServerUnauthorizedSpike')).toBe(0);
    expect(statuses.filter((s) => s === 503).length).toBeGreaterThanOrEqual(2);
    expect(alert.labels).toMatchObject({ code: '401', severity: 'warning' });
    const before = duplicates;
    await wait('a repeat delivery of the accepted alert', () => (duplicates > before ? true : undefined));
    expect(sink.alerts('APIServerUnauthorizedSpike', 'firing')).toHaveLength(1);
    expect(sink.signals.filter((s) => s.rule.id === 'alertmanager-api-auth-spike-warning').map((s) => s.actor.key)).toEqual([`ip:127.0.0.1`]);
  }, 60_000);
});
