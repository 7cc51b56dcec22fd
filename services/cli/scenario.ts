/**
 * The seed attack as all four sources see it: the audit events (connectors/k8s-audit/scenario.ts),
 * the database sidecar's Istio access log refusing the compromised pod's plaintext connections (a
 * Loki push), an Alertmanager webhook with an mTLS-failure alert, and OTLP spans of the pod's
 * calls answered 403. Each is in its sender's own wire format, for the four real ingest paths.
 */
import { attackEvents, type AttackScenario } from '../../connectors/k8s-audit/scenario.js';
import type { AuditEvent } from '../../connectors/k8s-audit/parse.js';

/** One request to send: path, content type and body. */
export interface Delivery {
  path: string;
  contentType: string;
  body: string;
}

const iso = (t: number) => new Date(t).toISOString();
const nanos = (t: number) => `${BigInt(t) * 1_000_000n}`;
const hex = (seed: number, n: number) => Array.from({ length: n }, (_, i) => ((seed * 31 + i * 7) % 16).toString(16)).join('');

/** The database sidecar refusing plaintext from the compromised pod's IP (server-side NR filter_chain_not_found). */
export function meshPush(s: AttackScenario): Delivery {
  const dbIP = '10.0.7.21';
  const values = [0, 15_000, 30_000].map((off, i) => {
    const t = s.start + 95_000 + off;
    return [nanos(t), `[${iso(t)}] "- - -" 0 NR filter_chain_not_found - "-" 0 0 0 - "-" "-" "-" "-" "-" - - ${dbIP}:5432 ${s.podIP}:${41000 + i} - -`];
  });
  return {
    path: '/loki/api/v1/push',
    contentType: 'application/json',
    body: JSON.stringify({ streams: [{ stream: { namespace: s.targetNamespace, pod: s.targetPod, container: 'istio-proxy', app: 'postgres' }, values }] }),
  };
}

/** An Alertmanager v4 webhook: Istio mTLS failures from the compromised workload to the database. */
export function alertWebhook(s: AttackScenario): Delivery {
  const startsAt = iso(s.start + 150_000);
  const labels = {
    alertname: 'IstioMTLSFailures',
    severity: 'critical',
    source_workload: s.serviceAccount,
    source_workload_namespace: s.namespace,
    source_principal: `spiffe://cluster.local/ns/${s.namespace}/sa/${s.serviceAccount}`,
    destination_workload: s.targetPod.replace(/-\d+$/, ''),
    destination_workload_namespace: s.targetNamespace,
  };
  return {
    path: '/ingest/alertmanager',
    contentType: 'application/json',
    body: JSON.stringify({
      version: '4',
      groupKey: '{}:{alertname="IstioMTLSFailures"}',
      truncatedAlerts: 0,
      status: 'firing',
      receiver: 'kubevigil',
      groupLabels: { alertname: 'IstioMTLSFailures' },
      commonLabels: labels,
      commonAnnotations: { summary: 'Connections failing mutual TLS' },
      externalURL: 'http://alertmanager.monitoring:9093',
      alerts: [
        {
          status: 'firing',
          labels,
          annotations: { summary: `Plaintext connections from ${s.namespace}/${s.serviceAccount} to ${s.targetNamespace} are refused` },
          startsAt,
          endsAt: '0001-01-01T00:00:00Z',
          generatorURL: 'http://prometheus.monitoring:9090/graph',
          fingerprint: hex(7, 16),
        },
      ],
    }),
  };
}

/** OTLP/HTTP JSON: the compromised pod's calls to the payments API, answered 403. */
export function spans(s: AttackScenario): Delivery {
  const attr = (key: string, v: string | number) => ({ key, value: typeof v === 'number' ? { intValue: String(v) } : { stringValue: v } });
  const spanList = [0, 1, 2].map((i) => {
    const t = s.start + 100_000 + i * 5_000;
    return {
      traceId: hex(11 + i, 32),
      spanId: hex(3 + i, 16),
      name: 'POST /v1/charges',
      kind: 3,
      startTimeUnixNano: nanos(t),
      endTimeUnixNano: nanos(t + 12),
      attributes: [
        attr('http.request.method', 'POST'),
        attr('http.response.status_code', 403),
        attr('server.address', `payments-api.${s.targetNamespace}.svc.cluster.local`),
        attr('url.full', `http://payments-api.${s.targetNamespace}.svc.cluster.local/v1/charges`),
      ],
      status: { code: 2, message: 'Forbidden' },
    };
  });
  return {
    path: '/v1/traces',
    contentType: 'application/json',
    body: JSON.stringify({
      resourceSpans: [
        {
          resource: {
            attributes: [
              attr('service.name', s.serviceAccount),
              attr('k8s.namespace.name', s.namespace),
              attr('k8s.pod.name', s.pod),
              attr('k8s.pod.ip', s.podIP),
            ],
          },
          scopeSpans: [{ scope: { name: 'kubevigil-demo' }, spans: spanList }],
        },
      ],
    }),
  };
}

/** Everything the four sources say about the attack, audit first (the identities are learnt from it). */
export function fourSourceAttack(s: AttackScenario, background: AuditEvent[] = [], seed = 7): Delivery[] {
  const audit = [...attackEvents(s, seed), ...background].sort((a, b) => Date.parse(a.stageTimestamp ?? '') - Date.parse(b.stageTimestamp ?? ''));
  const batches: Delivery[] = [];
  for (let i = 0; i < audit.length; i += 400)
    batches.push({
      path: '/ingest/k8s-audit',
      contentType: 'application/json',
      body: JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items: audit.slice(i, i + 400) }),
    });
  return [...batches, meshPush(s), alertWebhook(s), spans(s)];
}
