import { describe, expect, it } from 'vitest';
import {
  actorOfAlert,
  alertKey,
  instanceAddress,
  normalizeAlert,
  parseActorConventions,
  targetOfAlert,
  type AlertRecord,
} from '../connectors/alertmanager/normalize.js';
import {
  AlertmanagerPayloadError,
  alertTime,
  decodeAlertmanagerJson,
  decodeAlertmanagerValue,
  emptyGroup,
  labelsFingerprint,
} from '../connectors/alertmanager/parse.js';
import { alertmanagerSource, ALERTMANAGER_SOURCE } from '../connectors/alertmanager/source.js';
import { readReal } from './helpers/fixtures.js';

const capture = readReal('alertmanager/webhook-v4-am0.27-capture.jsonl')
  .trim()
  .split('\n')
  .map((l) => (JSON.parse(l) as { body: unknown }).body);
const firing2019 = readReal('alertmanager/webhook-v4-am-2019-alertmonitor-firing.json');
const resolved2019 = readReal('alertmanager/webhook-v4-am-2019-alertmonitor-resolved.json');

const alert = (labels: Record<string, string>, extra: Record<string, unknown> = {}) => ({
  status: 'firing',
  labels,
  annotations: {},
  startsAt: '2025-03-01T10:00:00Z',
  ...extra,
});

describe('Alertmanager payload decoding', () => {
  it('reads every delivery captured from Alertmanager 0.27 with all version 4 fields', () => {
    expect(capture).toHaveLength(8);
    for (const body of capture) {
      const p = decodeAlertmanagerValue(body);
      expect(p.invalid).toEqual([]);
      expect(p.warnings).toEqual([]);
      expect(p.alerts).toHaveLength(1);
      expect(p.group).toMatchObject({ receiver: 'faultline', version: '4', truncatedAlerts: 0, externalURL: 'http://1a9e6cfeb2bd:9093' });
      expect(p.group.groupKey).toMatch(/^\{\}:\{alertname="ServiceHighErrorRate", service_name="[a-z]+"\}$/);
      expect(p.group.groupLabels.alertname).toBe('ServiceHighErrorRate');
      expect(p.group.commonAnnotations.summary).toMatch(/error rate above 5%/);
      const a = p.alerts[0]!;
      expect(a.status).toBe(p.group.status);
      expect(a.generatorURL).toMatch(/^http:\/\/0345b24dba28:9090\/graph\?g0\.expr=/);
      expect(a.annotations.description).toMatch(/is failing/);
    }
  });

  it("computes Alertmanager's own fingerprint: equal to what 0.27 sent for each label set", () => {
    for (const body of capture) {
      const a = (body as { alerts: { labels: Record<string, string>; fingerprint: string }[] }).alerts[0]!;
      expect(labelsFingerprint(a.labels)).toBe(a.fingerprint);
    }
    expect(labelsFingerprint({})).toBe('cbf29ce484222325');
    expect(labelsFingerprint({ b: '2', a: '1' })).toBe(labelsFingerprint({ a: '1', b: '2' }));
    expect(labelsFingerprint({ a: 'é' })).not.toBe(labelsFingerprint({ a: 'e' }));
  });

  it('reads the 2019 samples (no fingerprint, no truncatedAlerts) and fingerprints them from their labels', () => {
    const f = decodeAlertmanagerJson(firing2019);
    const r = decodeAlertmanagerJson(resolved2019);
    expect(f.alerts.map((a) => a.labels.instance)).toEqual(['172.29.254.30', '172.29.254.50', '172.29.254.66']);
    expect(f.group).toMatchObject({ receiver: 'alertmonitor_swarm', status: 'firing', version: '4', truncatedAlerts: 0, externalURL: 'http://:9093' });
    expect(f.alerts.map((a) => a.fingerprint)).toEqual(r.alerts.map((a) => a.fingerprint));
    for (const a of f.alerts) expect(a.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    // The resolution of an alert is a new delivery, not a duplicate of the firing one.
    expect(f.alerts.map(alertKey)).not.toEqual(r.alerts.map(alertKey));
    expect(r.alerts.every((a) => a.status === 'resolved')).toBe(true);
  });

  it('keeps the good alerts beside bad ones and says what is wrong with each', () => {
    const p = decodeAlertmanagerValue({
      version: '4',
      status: 'firing',
      alerts: [
        alert({ alertname: 'Good1' }),
        42,
        alert({ alertname: 'BadStatus' }, { status: 'pending' }),
        { status: 'firing', startsAt: '2025-03-01T10:00:00Z' },
        alert({ alertname: 'BadLabel', severity: 3 as unknown as string }, { fingerprint: 'abc' }),
        alert({ alertname: 'BadAnnotations' }, { annotations: ['x'] }),
        alert({ alertname: 'BadStart' }, { startsAt: 'yesterday' }),
        alert({ alertname: 'BadEnd' }, { endsAt: 12 }),
        alert({ alertname: 'BadURL' }, { generatorURL: {} }),
        alert({ alertname: 'Good2' }, { annotations: null, endsAt: null, generatorURL: null, extra: 'ignored' }),
      ],
    });
    expect(p.alerts.map((a) => a.labels.alertname)).toEqual(['Good1', 'Good2']);
    expect(p.alerts[1]).toMatchObject({ annotations: {}, endsAt: '0001-01-01T00:00:00Z', generatorURL: '' });
    expect(p.alerts[1]).not.toHaveProperty('extra');
    expect(p.invalid).toEqual([
      { index: 1, reason: 'expected an alert object, got number' },
      { index: 2, alertname: 'BadStatus', reason: 'status must be "firing" or "resolved" (got "pending")' },
      { index: 3, reason: 'labels is required: an object of strings with at least alertname' },
      { index: 4, alertname: 'BadLabel', fingerprint: 'abc', reason: 'labels.severity must be a string, got number' },
      { index: 5, alertname: 'BadAnnotations', reason: 'annotations must be an object of strings, got an array' },
      { index: 6, alertname: 'BadStart', reason: 'startsAt must be an RFC 3339 time string (got "yesterday")' },
      { index: 7, alertname: 'BadEnd', reason: 'endsAt must be an RFC 3339 time string (got 12)' },
      { index: 8, alertname: 'BadURL', reason: 'generatorURL must be a string (got object)' },
    ]);
  });

  it('refuses bodies that are not webhook payloads, naming the field', () => {
    const err = (v: unknown) => {
      try {
        decodeAlertmanagerValue(v);
      } catch (e) {
        expect(e).toBeInstanceOf(AlertmanagerPayloadError);
        return { field: (e as AlertmanagerPayloadError).field, message: (e as Error).message };
      }
      throw new Error('no error');
    };
    expect(err([alert({ alertname: 'A' })])).toMatchObject({ field: '(body)', message: expect.stringContaining('got an array') });
    expect(err('text')).toMatchObject({ field: '(body)', message: expect.stringContaining('got string') });
    expect(err(null)).toMatchObject({ field: '(body)' });
    expect(err({})).toMatchObject({ field: 'alerts', message: expect.stringContaining('alerts is missing') });
    expect(err({ alerts: { 0: alert({ alertname: 'A' }) } })).toMatchObject({ field: 'alerts', message: 'alerts must be a list of alerts, got object' });
    expect(() => decodeAlertmanagerJson('{"alerts": [')).toThrow(/not valid JSON/);
  });

  it('ignores group fields of the wrong type and reports them, and reports truncation and unknown versions', () => {
    const p = decodeAlertmanagerValue({
      receiver: 7,
      status: 'firing',
      version: '5',
      groupKey: ['x'],
      groupLabels: { alertname: 1 },
      commonLabels: 'x',
      commonAnnotations: { summary: 's' },
      truncatedAlerts: 3,
      alerts: [alert({ alertname: 'A' })],
    });
    expect(p.alerts).toHaveLength(1);
    expect(p.group).toMatchObject({
      receiver: '',
      groupKey: '',
      groupLabels: {},
      commonLabels: {},
      commonAnnotations: { summary: 's' },
      truncatedAlerts: 3,
      version: '5',
    });
    expect(p.warnings).toEqual([
      'receiver must be a string (got number); ignored',
      'groupKey must be a string (got an array); ignored',
      'version "5" is not one kubevigil knows (4 from Alertmanager, 1 from Grafana); alerts were read as version 4',
      'groupLabels.alertname must be a string, got number; ignored',
      'commonLabels must be an object of strings, got string; ignored',
      'Alertmanager left out 3 alert(s) of this group (max_alerts of the webhook receiver); raise or remove max_alerts so kubevigil sees them',
    ]);
    expect(decodeAlertmanagerValue({ version: 4, alerts: [] }).group.version).toBe('4');
    expect(decodeAlertmanagerValue({ version: '1', orgId: 1, title: 't', state: 'alerting', alerts: [] }).warnings).toEqual([]);
  });

  it("treats Go's zero time as unset", () => {
    expect(alertTime('0001-01-01T00:00:00Z')).toBeUndefined();
    expect(alertTime('')).toBeUndefined();
    expect(alertTime('2019-09-27T16:27:56.612666101Z')).toBe(Date.UTC(2019, 8, 27, 16, 27, 56, 612));
  });
});

describe('Alert normalization', () => {
  it('names the actor by the first convention whose labels are present, in the configured order', () => {
    const istio = {
      alertname: 'A',
      source_principal: 'spiffe://td/ns/web/sa/web-sa',
      source_workload: 'web',
      source_workload_namespace: 'web',
      namespace: 'web',
      pod: 'web-1',
      instance: '10.1.2.3:15090',
    };
    expect(actorOfAlert(istio)).toMatchObject({ actor: { key: 'sa:web/web-sa', type: 'serviceaccount' }, labels: ['source_principal'] });
    expect(actorOfAlert({ ...istio, source_principal: 'unknown' })).toMatchObject({
      actor: { key: 'pod:web/web', type: 'pod' },
      labels: ['source_workload', 'source_workload_namespace'],
    });
    expect(actorOfAlert(istio, ['pod', 'istio-source'])).toMatchObject({ actor: { key: 'pod:web/web-1' }, labels: ['namespace', 'pod'] });
    expect(actorOfAlert(istio, ['instance'])).toMatchObject({ actor: { key: 'ip:10.1.2.3', type: 'ip' }, labels: ['instance'] });
    expect(actorOfAlert({ alertname: 'A', exported_namespace: 'shop', exported_pod: 'cart-0' })).toMatchObject({ actor: { key: 'pod:shop/cart-0' } });
    expect(actorOfAlert({ alertname: 'A', service_account: 'builder', namespace: 'ci' })).toMatchObject({
      actor: { key: 'sa:ci/builder', name: 'system:serviceaccount:ci:builder' },
    });
    expect(actorOfAlert({ alertname: 'A', serviceaccount: 'system:serviceaccount:ci:deployer' })).toMatchObject({
      actor: { key: 'sa:ci/deployer' },
      labels: ['serviceaccount'],
    });
    expect(actorOfAlert({ alertname: 'NodeDown', instance: 'node-1.example.com:9100' })).toMatchObject({
      actor: { key: 'user:alertmanager/NodeDown', type: 'user' },
      labels: [],
    });
    expect(actorOfAlert({})).toMatchObject({ actor: { key: 'user:alertmanager/unnamed' } });
    // A workload without a pod (Linkerd's and kube-state-metrics' `deployment` label): the pod-style
    // key that the cluster inventory resolves to the workload's service account.
    expect(actorOfAlert({ alertname: 'A', namespace: 'shop', deployment: 'cart' })).toMatchObject({
      actor: { key: 'pod:shop/cart', type: 'pod' },
      labels: ['namespace', 'deployment'],
    });
    expect(actorOfAlert({ alertname: 'A', namespace: 'shop', pod: 'cart-7d9c-x', deployment: 'cart' })).toMatchObject({
      actor: { key: 'pod:shop/cart-7d9c-x' },
    });
  });

  it('parses a configured convention list and names the bad entries', () => {
    expect(parseActorConventions('pod, istio-source,pod')).toEqual({ conventions: ['pod', 'istio-source'], problems: [] });
    expect(parseActorConventions('pod,spiffe').problems).toEqual([
      'unknown actor convention "spiffe"; use a comma-separated list of istio-source, pod, service-account, instance',
    ]);
    expect(parseActorConventions(' ').problems).toHaveLength(1);
  });

  it('reads addresses out of instance labels, and only addresses', () => {
    expect(instanceAddress('10.0.0.1:9100')).toBe('10.0.0.1');
    expect(instanceAddress('10.0.0.1')).toBe('10.0.0.1');
    expect(instanceAddress('[fd00::1]:9100')).toBe('fd00::1');
    expect(instanceAddress('fd00::1')).toBe('fd00::1');
    expect(instanceAddress('node-1:9100')).toBeUndefined();
    expect(instanceAddress('[node]:1')).toBeUndefined();
  });

  it('takes the target from the destination workload, else the pod, else the namespace', () => {
    expect(targetOfAlert({ destination_workload: 'db', destination_workload_namespace: 'pay', namespace: 'x', pod: 'y' })).toEqual({
      namespace: 'pay',
      resource: 'workloads',
      name: 'db',
    });
    expect(targetOfAlert({ destination_workload: 'unknown', destination_workload_namespace: 'unknown', namespace: 'x', pod: 'y' })).toEqual({
      namespace: 'x',
      resource: 'pods',
      name: 'y',
    });
    expect(targetOfAlert({ namespace: 'x' })).toEqual({ namespace: 'x' });
    expect(targetOfAlert({})).toEqual({});
  });

  it('builds details: time from startsAt (endsAt once resolved), entities, attributes and a redacted excerpt', () => {
    const { alerts, group } = decodeAlertmanagerValue({
      receiver: 'kubevigil',
      groupKey: 'g',
      alerts: [
        alert(
          {
            alertname: 'IstioMTLSFailures',
            severity: 'Critical',
            source_workload: 'web',
            source_workload_namespace: 'web',
            destination_workload: 'db',
            destination_workload_namespace: 'pay',
            namespace: 'web',
            pod: 'web-1',
            instance: '10.1.2.3:15090',
          },
          { annotations: { summary: 'token=abcdefghijklmnop leaked' }, fingerprint: 'f00d', generatorURL: 'http://prom/graph' },
        ),
        alert({ alertname: 'X' }, { status: 'resolved', endsAt: '2025-03-01T10:30:00Z' }),
        alert({ alertname: 'X' }, { status: 'resolved' }),
      ],
    });
    const ev = normalizeAlert(alerts[0]!, group, 99);
    expect(ev.key).toBe('f00d/2025-03-01T10:00:00Z/firing');
    expect(ev.final).toBe(true);
    expect(ev.derived).toMatchObject({ alertname: 'IstioMTLSFailures', firing: true, alertSeverity: 'critical', targetText: 'pay/db' });
    const d = ev.details();
    expect(d.time).toBe(Date.parse('2025-03-01T10:00:00Z'));
    expect(d.actor.key).toBe('pod:web/web');
    expect(d.outcome).toBe('denied');
    expect(d.entities.sort()).toEqual(['ip:10.1.2.3', 'ns:pay', 'ns:web', 'pod:web/web-1']);
    expect(d.attributes).toEqual({
      alertname: 'IstioMTLSFailures',
      fingerprint: 'f00d',
      status: 'firing',
      alertSeverity: 'critical',
      startsAt: '2025-03-01T10:00:00Z',
      destinationNamespace: 'pay',
      destinationWorkload: 'db',
      sourceWorkload: 'web',
      sourceNamespace: 'web',
      actorLabels: 'source_workload,source_workload_namespace',
      receiver: 'kubevigil',
      generatorURL: 'http://prom/graph',
    });
    expect(JSON.stringify(d.excerpt)).not.toContain('abcdefghijklmnop');
    expect(d.excerpt).toMatchObject({ receiver: 'kubevigil', groupKey: 'g', fingerprint: 'f00d' });
    expect(ev.details()).toBe(d);

    const resolved = normalizeAlert(alerts[1]!, group, 99).details();
    expect(resolved).toMatchObject({
      time: Date.parse('2025-03-01T10:30:00Z'),
      outcome: 'unknown',
      attributes: { status: 'resolved', endsAt: '2025-03-01T10:30:00Z' },
    });
    expect(normalizeAlert(alerts[2]!, group, 99).details().time).toBe(Date.parse('2025-03-01T10:00:00Z'));
  });
});

describe('ALERTMANAGER_SOURCE.decode', () => {
  it('decodes payloads, bare alerts (as rule tests write them) and arrays of either', () => {
    const r = ALERTMANAGER_SOURCE.decode([capture[0], alert({ alertname: 'Bare' }), { status: 'firing' }, { alerts: 'no' }], 5);
    expect(r.events.map((e) => (e.raw as AlertRecord).labels.alertname)).toEqual(['ServiceHighErrorRate', 'Bare']);
    expect(r.events.every((e) => e.source === 'alertmanager' && e.observedTime === 5)).toBe(true);
    expect((r.events[1]!.raw as AlertRecord).group).toEqual(emptyGroup('firing'));
    expect(r.invalid).toEqual(['labels is required: an object of strings with at least alertname', 'alerts must be a list of alerts, got string']);
    expect(ALERTMANAGER_SOURCE.decode({ alerts: [1] }, 0).invalid).toEqual(['alerts[0]: expected an alert object, got number']);
    expect(ALERTMANAGER_SOURCE.schema).toMatchObject({ name: 'alertmanager', indexField: 'status' });
  });

  it('follows the configured actor conventions', () => {
    const labels = { alertname: 'A', namespace: 'web', pod: 'web-1', instance: '10.1.2.3:9100' };
    expect(ALERTMANAGER_SOURCE.decode(alert(labels), 0).events[0]!.details().actor.key).toBe('pod:web/web-1');
    expect(
      alertmanagerSource({ actorConventions: ['instance'] })
        .decode(alert(labels), 0)
        .events[0]!.details().actor.key,
    ).toBe('ip:10.1.2.3');
  });
});
