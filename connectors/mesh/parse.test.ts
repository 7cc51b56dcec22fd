import { describe, expect, it } from 'vitest';
import { readReal } from '../../test/helpers/fixtures.js';
import { emitterFromLabels, peerFromHost, serviceAccountOf, splitHostPort, workloadFromPod } from './identity.js';
import { parseLogLine, type ParsedLine } from './parse.js';
import type { AccessLogRecord } from './record.js';

const lines = (rel: string) =>
  readReal(rel)
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'));

const server = { namespace: 'payments', pod: 'postgres-0', container: 'istio-proxy', app: 'postgres' };
const client = { namespace: 'frontend', pod: 'frontend-7d9c4b5f6-xk2pq', container: 'istio-proxy' };

function mesh(line: string, labels: Record<string, string> = server): AccessLogRecord {
  const p = parseLogLine(line, labels);
  if (!p || !('mesh' in p)) throw new Error(`not a mesh line: ${line.slice(0, 80)}`);
  return p.mesh;
}

describe('Istio TEXT access log (every sample in mesh/istio-access-log-text-samples.log)', () => {
  const ist = lines('mesh/istio-access-log-text-samples.log');

  it('has the 14 sample lines this suite asserts', () => expect(ist).toHaveLength(14));

  it('reads a normal request, client side: caller is the emitting pod, callee from the cluster name', () => {
    expect(mesh(ist[0]!, client)).toMatchObject({
      kind: 'istio',
      format: 'text',
      reporter: 'source',
      direction: 'outbound',
      tcp: false,
      startTime: Date.parse('2020-11-25T21:26:18.409Z'),
      method: 'GET',
      path: '/status/418',
      protocol: 'HTTP/1.1',
      responseCode: 418,
      responseFlags: [],
      responseCodeDetails: 'via_upstream',
      authority: 'httpbin:8000',
      userAgent: 'curl/7.73.0-DEV',
      requestId: '84961386-6d84-929d-98bd-c5aee93b5c88',
      upstreamCluster: 'outbound|8000||httpbin.foo.svc.cluster.local',
      mtlsFailure: false,
      authzDenied: false,
      authFailed: false,
      source: { namespace: 'frontend', pod: 'frontend-7d9c4b5f6-xk2pq', workload: 'frontend', ip: '10.44.1.23', port: 46520 },
      destination: { ip: '10.44.1.27', port: 80, workload: 'httpbin', namespace: 'foo' },
    });
  });

  it('reads the same request server side: callee is the emitting pod, caller from the downstream address', () => {
    const r = mesh(ist[1]!);
    expect(r).toMatchObject({ reporter: 'destination', direction: 'inbound', responseCode: 418, upstreamCluster: 'inbound|8000||' });
    expect(r.source).toEqual({ ip: '10.44.1.23', port: 37652 });
    expect(r.destination).toEqual({ namespace: 'payments', pod: 'postgres-0', workload: 'postgres', ip: '10.44.1.27', port: 80 });
  });

  it('reads AuthorizationPolicy denials with the policy, rule and [none]', () => {
    expect(mesh(ist[2]!)).toMatchObject({
      responseCode: 403,
      authzDenied: true,
      authzEngine: 'rbac',
      policy: 'starfleet/probe-deny-status',
      policyRule: 0,
      authFailed: false,
      source: { ip: '10.244.0.12' },
      destination: { ip: '10.244.0.14', port: 8080, namespace: 'payments' },
    });
    const none = mesh(ist[3]!);
    expect(none).toMatchObject({ authzDenied: true, policy: 'none', forwardedFor: ['10.244.1.1'], source: { ip: '10.244.1.1', port: 0 } });
    expect(none.policyRule).toBeUndefined();
  });

  it('reads a gateway denial: the caller is the downstream client, never the X-Forwarded-For chain', () => {
    const gw = { namespace: 'istio-ingress', pod: 'istio-ingressgateway-6b7d5c4f8-abcde', istio: 'ingressgateway' };
    expect(mesh(ist[4]!, gw)).toMatchObject({
      reporter: 'gateway',
      direction: 'outbound',
      policy: 'istio-ingress/gateway-api-office-only',
      forwardedFor: ['10.1.2.3', '10.244.0.18'],
      source: { ip: '10.1.2.3', port: 0 },
      destination: { workload: 'bridge', namespace: 'starfleet' },
    });
  });

  it('reads an ext_authz (CUSTOM) denial', () => {
    expect(mesh(ist[5]!)).toMatchObject({
      responseCode: 403,
      responseFlags: ['UAEX'],
      responseCodeDetails: 'ext_authz_denied',
      authzDenied: true,
      authzEngine: 'ext_authz',
      source: { ip: '10.244.0.30' },
    });
  });

  it('reads server-side NR filter_chain_not_found as an mTLS failure on a TCP connection (also the 21-field variant)', () => {
    for (const [i, src, dst] of [
      [6, '10.10.0.14', '10.10.0.13'],
      [7, '10.124.9.15', '10.124.9.14'],
      [9, '10.244.0.9', '10.244.0.8'],
    ] as const) {
      expect(mesh(ist[i]!)).toMatchObject({
        tcp: true,
        responseCode: 0,
        responseFlags: ['NR'],
        mtlsFailure: true,
        tlsSide: 'server',
        tlsReason: 'filter_chain_not_found',
        reporter: 'destination',
        source: { ip: src },
        destination: { ip: dst, namespace: 'payments', pod: 'postgres-0' },
      });
    }
  });

  it('does not call a plain UC reset an mTLS failure', () => {
    expect(mesh(ist[8]!, client)).toMatchObject({
      responseCode: 503,
      responseFlags: ['UC'],
      mtlsFailure: false,
      destination: { workload: 'notification-service', namespace: 'mtlsfail-demo', ip: '10.244.0.8' },
    });
  });

  it('reads URX,UF with CERTIFICATE_VERIFY_FAILED as a client-side TLS failure', () => {
    expect(mesh(ist[10]!, client)).toMatchObject({
      responseCode: 503,
      responseFlags: ['URX', 'UF'],
      mtlsFailure: true,
      tlsSide: 'client',
      tlsReason: 'CERTIFICATE_VERIFY_FAILED',
      upstreamTransportFailureReason: expect.stringContaining('CERTIFICATE_VERIFY_FAILED'),
      destination: { ip: '32.194.118.12', port: 443, host: 'httpbin.org' },
    });
  });

  it('reads UH, URX and the VM denial', () => {
    expect(mesh(ist[11]!, client)).toMatchObject({
      responseCode: 503,
      responseFlags: ['UH'],
      responseCodeDetails: 'no_healthy_upstream',
      mtlsFailure: false,
      authzDenied: false,
    });
    expect(mesh(ist[12]!, client)).toMatchObject({
      responseCode: 500,
      responseFlags: ['URX'],
      destination: { workload: 'booking-service', namespace: 'default' },
    });
    expect(mesh(ist[13]!)).toMatchObject({
      authzDenied: true,
      policy: 'none',
      userAgent: expect.stringMatching(/^Mozilla\/5\.0 \(Macintosh/),
      source: { ip: '172.17.0.1' },
    });
  });
});

describe('Istio JSON access log (mesh/istio-access-log-json-samples.jsonl)', () => {
  const js = lines('mesh/istio-access-log-json-samples.jsonl');

  it('reads null as unset and numbers as numbers', () => {
    const r = mesh(js[0]!);
    expect(r).toMatchObject({
      kind: 'istio',
      format: 'json',
      reporter: 'destination',
      responseCode: 200,
      responseFlags: [],
      method: 'GET',
      path: '/',
      source: { ip: '10.138.15.205', port: 23950 },
      destination: { ip: '10.44.0.21', port: 80 },
    });
    expect(r.upstreamTransportFailureReason).toBeUndefined();
    expect(r.forwardedFor).toBeUndefined();
    expect(mesh(js[1]!, client)).toMatchObject({
      reporter: 'source',
      destination: { ip: '10.1.0.227', port: 9080, workload: 'reviews', namespace: 'default' },
      startTime: Date.parse('2021-08-29T10:19:39.660Z'),
    });
  });

  it('reads a trimmed entry (keys missing) without inventing peers', () => {
    const r = mesh(js[2]!);
    expect(r).toMatchObject({
      responseCode: 503,
      responseFlags: ['UC'],
      protocol: 'HTTP/2',
      method: 'PUT',
      reporter: 'proxy',
      direction: 'unknown',
      mtlsFailure: false,
    });
    expect(r.source).toEqual({});
  });

  it('takes SPIFFE principals from custom keys, only when they name a service account', () => {
    const base = JSON.parse(js[0]!) as Record<string, unknown>;
    const r = mesh(JSON.stringify({ ...base, downstream_peer_uri_san: 'spiffe://cluster.local/ns/frontend/sa/frontend' }));
    expect(r.source).toMatchObject({
      principal: 'spiffe://cluster.local/ns/frontend/sa/frontend',
      serviceAccount: { namespace: 'frontend', name: 'frontend' },
      namespace: 'frontend',
    });
    expect(mesh(JSON.stringify({ ...base, downstream_peer_uri_san: 'spiffe://x/not-a-workload' })).source.principal).toBeUndefined();
  });
});

describe('plain Envoy access log (mesh/envoy-plain-response-flag-samples.log)', () => {
  const env = lines('mesh/envoy-plain-response-flag-samples.log');
  it('skips the docker compose prefix and reads code, flags and details of each line', () => {
    expect(
      env.map((l) => mesh(l, {})).map((r) => [r.kind, r.reporter, r.responseCode, r.responseFlags.join(','), r.responseCodeDetails, r.destination.ip ?? '-']),
    ).toEqual([
      ['envoy', 'proxy', 504, 'UT', 'response_timeout', '172.27.0.2'],
      ['envoy', 'proxy', 503, 'UH', 'no_healthy_upstream', '-'],
      ['envoy', 'proxy', 503, 'UF', 'upstream_reset_before_response_started{connection_failure,delayed_connect_error:_111}', '172.28.0.2'],
      ['envoy', 'proxy', 200, 'UPE', 'upstream_reset_after_response_started{protocol_error}', '192.168.5.2'],
      ['envoy', 'proxy', 503, 'UO', 'upstream_reset_before_response_started{overflow}', '172.31.0.3'],
      ['envoy', 'proxy', 503, 'NC', 'cluster_not_found', '-'],
      ['envoy', 'proxy', 500, 'URX', 'via_upstream', '192.168.48.2'],
    ]);
    expect(env.map((l) => mesh(l, {})).some((r) => r.mtlsFailure || r.authzDenied)).toBe(false);
  });

  it('reads the default format without details (the Envoy docs example)', () => {
    const line = readReal('mesh/formats.txt')
      .split('\n')
      .find((l) => l.startsWith('[2016-04-15'))!;
    expect(mesh(line, {})).toMatchObject({
      kind: 'envoy',
      method: 'POST',
      path: '/api/v1/locations',
      protocol: 'HTTP/2',
      responseCode: 204,
      responseFlags: [],
      forwardedFor: ['10.0.35.28'],
      userAgent: 'nsq2http',
    });
  });
});

describe('Linkerd proxy log (mesh/linkerd-proxy-log-samples.log)', () => {
  const ld = lines('mesh/linkerd-proxy-log-samples.log');
  const web = { namespace: 'emojivoto', pod: 'web-5f86686c4d-58p7k', container: 'linkerd-proxy' };

  it('reads policy denials with the server name and the client address or identity', () => {
    expect(mesh(ld[0]!, web)).toMatchObject({
      kind: 'linkerd',
      level: 'INFO',
      message: 'Request denied',
      authzDenied: true,
      authzEngine: 'linkerd',
      policy: 'ops-rapid-testing-onboarding-linkerd',
      responseCode: 403,
      direction: 'inbound',
      source: { ip: '10.0.3.252' },
      destination: { namespace: 'emojivoto', pod: 'web-5f86686c4d-58p7k', workload: 'web' },
    });
    expect(mesh(ld[2]!, web)).toMatchObject({
      authzDenied: true,
      policy: 'metrics-api',
      source: { ip: '192.168.1.253', port: 39024 },
      destination: { port: 8085 },
    });
    expect(mesh(ld[4]!, web)).toMatchObject({
      tcp: true,
      authzDenied: true,
      policy: 'prometheus-admin',
      source: {
        ip: '10.2.76.70',
        port: 52118,
        principal: 'metrics-api.linkerd-viz.serviceaccount.identity.linkerd.cluster.local',
        serviceAccount: { namespace: 'linkerd-viz', name: 'metrics-api' },
      },
      destination: { port: 9090 },
    });
  });

  it('reads the echo of a denial as an error, not as a second denial', () => {
    for (const i of [1, 3, 5])
      expect(mesh(ld[i]!, web)).toMatchObject({ authzDenied: false, mtlsFailure: false, error: expect.stringMatching(/^unauthorized/) });
    expect(mesh(ld[1]!, web).source).toEqual({ ip: '10.0.3.252', port: 52222 });
  });

  it('reads TLS failures towards the identity service, and a connect timeout as neither', () => {
    expect(mesh(ld[6]!, web)).toMatchObject({
      level: 'WARN',
      mtlsFailure: true,
      tlsReason: 'UnknownIssuer',
      tlsSide: 'client',
      direction: 'outbound',
      destination: { ip: '10.129.192.22', port: 8080, workload: 'linkerd-identity-headless', namespace: 'linkerd' },
      source: { namespace: 'emojivoto' },
    });
    expect(mesh(ld[7]!, web)).toMatchObject({ mtlsFailure: true, tlsReason: 'BadCertificate', message: 'Sending fatal alert BadCertificate' });
    expect(mesh(ld[8]!, web)).toMatchObject({
      mtlsFailure: false,
      authzDenied: false,
      startTime: Date.parse('2023-01-12T15:31:48+04:00'),
      error: 'error trying to connect: connect timed out after 10s',
      destination: { ip: '10.131.149.70', port: 14268 },
    });
  });
});

describe('Gatekeeper --log-denies (admission/gatekeeper-controller-log-denies.jsonl)', () => {
  it('reads constraint, resource, user, message and time of each line', () => {
    const got = lines('admission/gatekeeper-controller-log-denies.jsonl').map((l) => parseLogLine(l));
    expect(got.map((p) => p?.format)).toEqual(['gatekeeper', 'gatekeeper', 'gatekeeper']);
    const first = got[0] as Extract<ParsedLine, { format: 'gatekeeper' }>;
    expect(first.gatekeeper).toEqual({
      process: 'admission',
      action: 'deny',
      denied: true,
      constraint: {
        name: 'azurepolicy-k8sazurev2noprivilege-686dd8b209a774ba977c',
        kind: 'K8sAzureV2NoPrivilege',
        group: 'constraints.gatekeeper.sh',
        apiVersion: 'v1beta1',
      },
      resource: { group: '', apiVersion: 'v1', kind: 'Pod', namespace: 'acstor', name: 'azurecontainerstorage-prereq-gt58x' },
      username: 'system:serviceaccount:kube-system:daemon-set-controller',
      message: 'Privileged container is not allowed: prereq, securityContext: {"privileged": true, "runAsUser": 0}',
      time: 1722622443948,
    });
    expect(got.map((p) => (p as Extract<ParsedLine, { format: 'gatekeeper' }>).gatekeeper.resource.name)).toEqual([
      'azurecontainerstorage-prereq-gt58x',
      'azurecontainerstorage-metrics-exporter-286np',
      'azurecontainerstorage-ndm-b5nfg',
    ]);
  });

  it('reads warn and audit decisions as not denied', () => {
    const line = JSON.parse(lines('admission/gatekeeper-controller-log-denies.jsonl')[0]!) as Record<string, unknown>;
    const warn = parseLogLine(JSON.stringify({ ...line, constraint_action: 'warn' })) as Extract<ParsedLine, { format: 'gatekeeper' }>;
    expect(warn.gatekeeper).toMatchObject({ action: 'warn', denied: false });
    const audit = parseLogLine(JSON.stringify({ ...line, process: 'audit', event_type: 'violation_audited' })) as Extract<ParsedLine, { format: 'gatekeeper' }>;
    expect(audit.gatekeeper).toMatchObject({ process: 'audit', denied: false });
  });
});

describe('robustness', () => {
  const all = [
    ...lines('mesh/istio-access-log-text-samples.log'),
    ...lines('mesh/istio-access-log-json-samples.jsonl'),
    ...lines('mesh/envoy-plain-response-flag-samples.log'),
    ...lines('mesh/linkerd-proxy-log-samples.log'),
    ...lines('admission/gatekeeper-controller-log-denies.jsonl'),
  ];

  it('gives undefined for lines of no known kind', () => {
    for (const l of [
      '',
      'fizzbuzz',
      '{}',
      '[]',
      '{"level":"info","msg":"hello"}',
      'null',
      '{"log":"still nothing"}',
      '[2024-01-01T00:00:00Z] "GET',
      'ThreadId(1) nothing',
      '{"response_flags":"-"}',
    ])
      expect(parseLogLine(l)).toBeUndefined();
  });

  it('never throws on truncated or mutated versions of every real line', () => {
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (const l of all)
      for (let k = 0; k < 60; k++) {
        const cut = l.slice(0, Math.floor(rnd() * l.length));
        const chars = [...l];
        for (let m = 0; m < 3; m++) chars[Math.floor(rnd() * chars.length)] = '"[]{} =:,\\'[Math.floor(rnd() * 11)]!;
        expect(() => parseLogLine(cut, server)).not.toThrow();
        expect(() => parseLogLine(chars.join(''), server)).not.toThrow();
      }
  });

  it('drops the addresses of a TEXT line whose quoted client fields shift the layout', () => {
    const forged =
      '[2026-11-29T10:00:05.000Z] "GET / HTTP/1.1" 403 - rbac_access_denied_matched_policy[none] - "-" 0 19 0 - "-" "x" "-" "-" "-" "-" outbound|1||a.b.svc.cluster.local 6.6.6.6:1 6.6.6.6:2 6.6.6.6:3 - -" "id" "a:1" "-" inbound|8080|| - 10.244.1.21:8080 10.244.2.9:5 - default';
    const r = mesh(forged);
    expect(r).toMatchObject({ malformed: true, authzDenied: true, source: {}, destination: {} });
    expect(JSON.stringify(r)).not.toContain('6.6.6.6');
  });

  it('unwraps CRI and Docker json-file wrappers', () => {
    const ist = lines('mesh/istio-access-log-text-samples.log')[2]!;
    expect(parseLogLine(`2026-10-09T08:05:55.933000000Z stdout F ${ist}`, server)?.format).toBe('istio');
    expect(parseLogLine(JSON.stringify({ log: `${ist}\n`, stream: 'stdout', time: '2026-10-09T08:05:55.933Z' }), server)?.format).toBe('istio');
  });

  it('bounds what it copies from long client-controlled fields', () => {
    const ist = lines('mesh/istio-access-log-text-samples.log')[2]!.replace('/status/200', `/${'a'.repeat(5000)}`);
    expect(mesh(ist).path!.length).toBeLessThanOrEqual(1025);
  });
});

describe('identity helpers', () => {
  it('names workloads from labels and pod names, ignoring invalid values', () => {
    expect(emitterFromLabels({ namespace: 'shop', pod: 'web-7d9c4b5f6-xk2pq' })).toEqual({
      namespace: 'shop',
      pod: 'web-7d9c4b5f6-xk2pq',
      workload: 'web',
      gateway: false,
    });
    expect(emitterFromLabels({ k8s_namespace_name: 'shop', k8s_pod_name: 'db-0', app_kubernetes_io_name: 'postgres' })).toMatchObject({
      namespace: 'shop',
      pod: 'db-0',
      workload: 'postgres',
    });
    expect(emitterFromLabels({ namespace: 'Not Valid!', pod: '../etc' })).toEqual({ gateway: false });
    expect(workloadFromPod('node-exporter-x7k2p')).toBe('node-exporter');
    expect(workloadFromPod('postgres-0')).toBe('postgres');
  });

  it('parses addresses, service hosts and workload identities', () => {
    expect(splitHostPort('[fd00::1]:8080')).toEqual({ ip: 'fd00::1', port: 8080 });
    expect(splitHostPort('10.0.0.1:99999')).toBeUndefined();
    expect(splitHostPort('300.0.0.1:80')).toBeUndefined();
    expect(peerFromHost('ledger.payments.svc.cluster.local:8080')).toEqual({ workload: 'ledger', namespace: 'payments' });
    expect(peerFromHost('httpbin.org')).toEqual({ host: 'httpbin.org' });
    expect(serviceAccountOf('spiffe://cluster.local/ns/frontend/sa/frontend')).toEqual({ namespace: 'frontend', name: 'frontend' });
    expect(serviceAccountOf('web.emojivoto.serviceaccount.identity.linkerd.cluster.local')).toEqual({ namespace: 'emojivoto', name: 'web' });
    expect(serviceAccountOf('spiffe://cluster.local/ns/a/sa/b/extra')).toBeUndefined();
  });
});
