/**
 * OTLP and Tempo payloads → spans → source events: the real examples in test/fixtures/real/otlp,
 * every id flavour, every AnyValue type, protobuf from the hand-written schema, bounds, and the
 * derived fields span rules rely on.
 */
import { describe, expect, it } from 'vitest';
import { normalizeSpan, type OtlpDerived } from '../connectors/otlp/normalize.js';
import {
  decodeOtlpJson,
  decodeOtlpProtobuf,
  decodeOtlpValue,
  normalizeSpanId,
  normalizeTraceId,
  OtlpPayloadError,
  spanTimeMs,
  type OtlpSpan,
} from '../connectors/otlp/parse.js';
import { ExportTraceServiceRequest } from '../connectors/otlp/schema.js';
import { OTLP_SOURCE } from '../connectors/otlp/source.js';
import { readReal } from './helpers/fixtures.js';

const fixture = (f: string) => decodeOtlpJson(readReal(`otlp/${f}`));

describe('the real payloads', () => {
  it('OTLP/JSON with int64 times as strings (opentelemetry-proto examples/trace.json)', () => {
    const { spans, invalid } = fixture('otlp-trace-example.json');
    expect(invalid).toEqual([]);
    expect(spans).toEqual([
      {
        traceId: '5b8efff798038103d269b633813fc60c',
        spanId: 'eee19b7ec3c1b174',
        parentSpanId: 'eee19b7ec3c1b173',
        name: "I'm a server span",
        kind: 'server',
        startTimeUnixNano: '1544712660000000000',
        endTimeUnixNano: '1544712661000000000',
        status: { code: 'unset' },
        attributes: { 'my.span.attr': 'some value' },
        resource: { 'service.name': 'my.service' },
        scope: { name: 'my.library', version: '1.0.0' },
      },
    ]);
    expect(spanTimeMs(spans[0]!)).toBe(1544712660000);
  });

  it("OTLP/JSON with int64 times as JSON numbers and upper-case hex ids (Tempo's push example)", () => {
    const { spans } = fixture('otlp-http-json-push.tempo-docs.json');
    expect(spans[0]).toMatchObject({
      traceId: '5b8efff798038103d269b633813fc700',
      spanId: 'eee19b7ec3c1b100',
      kind: 'server',
      startTimeUnixNano: '1689969302000000000',
    });
  });

  it("Tempo's v2 trace answer and its gogo-jsonpb flavour: base64 ids to hex, enum names", () => {
    expect(fixture('api-v2-traces-response.docs.json').spans[0]).toMatchObject({
      traceId: '5b8efff798038103d269b633813fc700',
      spanId: 'eee19b7ec3c1b100',
      kind: 'server',
      status: { code: 'unset' },
    });
    const { spans, invalid } = fixture('tempo-gogo-jsonpb-trace.servicegraphs-testdata.json');
    expect(invalid).toEqual([]);
    expect(spans).toHaveLength(15);
    expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set(['e8b6dff9f8d44b28f1b22bc3bd2f6768']));
    expect(spans.every((s) => /^[0-9a-f]{16}$/.test(s.spanId))).toBe(true);
    const server = spans.find((s) => s.name === 'POST /:endpoint')!;
    expect(server).toMatchObject({
      kind: 'server',
      status: { code: 'error' },
      parentSpanId: '9007fea484554ad7',
      attributes: { 'http.status_code': 500, 'net.host.port': 4000 },
    });
    const pg = spans.find((s) => s.name === 'pg.query:INSERT')!;
    expect(pg.status).toEqual({ code: 'error', message: 'null value in column "name" of relation "illithid" violates not-null constraint' });
    expect(normalizeSpan(server, 0).derived.httpStatus).toBe(500);
    expect(normalizeSpan(pg, 0).derived.peer).toBe('mythical-database');
  });

  it("Tempo's search answers: trace ids trimmed of leading zeros become 32 hex characters", () => {
    const tags = JSON.parse(readReal('otlp/api-search-tags-response.docs.json')) as { traces: { traceID: string }[] };
    expect(tags.traces.map((t) => normalizeTraceId(t.traceID))).toEqual(['0000000000000000d6e9329d67b6146a', '00000000000000001b1ba462b409200d']);
    const ql = JSON.parse(readReal('otlp/api-search-traceql-response.docs.json')) as {
      traces: { traceID: string; spanSet: { spans: { spanID: string }[] } }[];
    };
    expect(normalizeTraceId(ql.traces[0]!.traceID)).toBe('5b8efff798038103d269b633813fc700');
    expect(normalizeSpanId(ql.traces[0]!.spanSet.spans[0]!.spanID)).toBe('eee19b7ec3c1b100');
  });
});

describe('ids', () => {
  it('hex of any case, trimmed hex, base64, base64url and bytes; all zeros and wrong sizes are refused', () => {
    expect(normalizeTraceId('5B8EFFF798038103D269B633813FC700')).toBe('5b8efff798038103d269b633813fc700');
    expect(normalizeTraceId('3')).toBe('00000000000000000000000000000003');
    expect(normalizeTraceId('W47/95gDgQPSabYzgT/HAA==')).toBe('5b8efff798038103d269b633813fc700');
    expect(normalizeTraceId('W47_95gDgQPSabYzgT_HAA')).toBe('5b8efff798038103d269b633813fc700');
    expect(normalizeTraceId(new Uint8Array(16).fill(0xab))).toBe('ab'.repeat(16));
    expect(normalizeSpanId('7uGbfsPBsQA=')).toBe('eee19b7ec3c1b100');
    for (const bad of ['', '0'.repeat(32), 'xyz', '1'.repeat(33), new Uint8Array(17), new Uint8Array(16), 42, null])
      expect(normalizeTraceId(bad)).toBeUndefined();
    expect(normalizeSpanId('1'.repeat(32))).toBeUndefined();
  });
});

const span = (over: Record<string, unknown>) => ({ traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174', ...over });
const req = (...spans: unknown[]) => ({
  resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] }, scopeSpans: [{ scope: { name: 's' }, spans }] }],
});

describe('OTLP/JSON details', () => {
  it('every AnyValue type, int64 as string or number, special doubles, snake_case keys', () => {
    const { spans } = decodeOtlpValue({
      resource_spans: [
        {
          resource: { attributes: [] },
          scope_spans: [
            {
              spans: [
                span({
                  kind: 'SPAN_KIND_CLIENT',
                  start_time_unix_nano: 1,
                  attributes: [
                    { key: 's', value: { stringValue: 'x' } },
                    { key: 'i', value: { intValue: '9007199254740993' } },
                    { key: 'j', value: { int_value: 7 } },
                    { key: 'd', value: { doubleValue: 'NaN' } },
                    { key: 'b', value: { boolValue: false } },
                    { key: 'a', value: { arrayValue: { values: [{ stringValue: 'a' }, { intValue: '2' }] } } },
                    { key: 'k', value: { kvlistValue: { values: [{ key: 'n', value: { boolValue: true } }] } } },
                    { key: 'y', value: { bytesValue: 'AQID' } },
                    { key: 'e', value: {} },
                  ],
                }),
              ],
            },
          ],
        },
      ],
    });
    expect(spans[0]!.kind).toBe('client');
    expect(spans[0]!.startTimeUnixNano).toBe('1');
    expect({ ...spans[0]!.attributes }).toEqual({ s: 'x', i: '9007199254740993', j: 7, d: NaN, b: false, a: ['a', 2], k: { n: true }, y: 'AQID', e: null });
  });

  it('older SDKs (instrumentationLibrarySpans) and a list of requests', () => {
    const old = { resourceSpans: [{ instrumentationLibrarySpans: [{ instrumentationLibrary: { name: 'lib', version: '1' }, spans: [span({ kind: 2 })] }] }] };
    const { spans } = decodeOtlpValue([old, req(span({ spanId: 'eee19b7ec3c1b175' }))]);
    expect(spans.map((s) => s.scope)).toEqual([{ name: 'lib', version: '1' }, { name: 's' }]);
  });

  it('bad spans are reported with their path and the rest kept; structural problems throw', () => {
    const { spans, invalid } = decodeOtlpValue(
      req(span({}), span({ spanId: '' }), span({ startTimeUnixNano: -5 }), span({ status: { code: 7 } }), span({ parentSpanId: 'zz' }), 'nope'),
    );
    expect(spans).toHaveLength(1);
    expect(invalid.map((i) => i.reason)).toEqual([
      'resourceSpans[0].scopeSpans[0].spans[1].spanId is missing; every span needs one',
      'resourceSpans[0].scopeSpans[0].spans[2].startTimeUnixNano: expected nanoseconds since the epoch (a decimal string or number), got number -5',
      'resourceSpans[0].scopeSpans[0].spans[3].status.code: expected a StatusCode (0-2 or a name such as STATUS_CODE_ERROR), got number 7',
      'resourceSpans[0].scopeSpans[0].spans[4].parentSpanId: expected 16 hex characters (or base64 of 8 bytes), got "zz"',
      'resourceSpans[0].scopeSpans[0].spans[5]: expected a span object, got "nope"',
    ]);
    expect(() => decodeOtlpJson('[]')).toThrow(OtlpPayloadError);
    expect(() => decodeOtlpValue({ resourceSpans: [{ scopeSpans: 'x' }] })).toThrow('resourceSpans[0].scopeSpans must be a list');
    expect(() => decodeOtlpValue({ resourceSpans: [{ resource: { attributes: [{ key: 1 }] } }] })).toThrow(
      'resourceSpans[0].resource.attributes[0]: expected {"key"',
    );
    expect(decodeOtlpValue({})).toEqual({ spans: [], invalid: [] });
  });

  it('bounds what a span keeps: attributes, string length, nesting, events', () => {
    let deep: unknown = { stringValue: 'leaf' };
    for (let i = 0; i < 50; i++) deep = { arrayValue: { values: [deep] } };
    const attrs = Array.from({ length: 500 }, (_, i) => ({ key: `k${i}`, value: { stringValue: 'v'.repeat(10_000) } }));
    const events = Array.from({ length: 100 }, () => ({ name: 'e', timeUnixNano: '1' }));
    const { spans } = decodeOtlpValue(req(span({ attributes: [{ key: 'deep', value: deep }, ...attrs], events })));
    const s = spans[0]!;
    expect(Object.keys(s.attributes)).toHaveLength(128);
    expect((s.attributes.k1 as string).length).toBe(4096);
    expect(JSON.stringify(s.attributes.deep)).toContain('[…]');
    expect(s.events).toHaveLength(32);
  });
});

describe('OTLP protobuf (hand-written schema)', () => {
  it('decodes what the schema encodes, with resource attributes, status and events', () => {
    const bytes = ExportTraceServiceRequest.encode(
      ExportTraceServiceRequest.fromObject({
        resourceSpans: [
          {
            resource: {
              attributes: [
                { key: 'k8s.pod.name', value: { stringValue: 'p' } },
                { key: 'k8s.namespace.name', value: { stringValue: 'n' } },
              ],
            },
            scopeSpans: [
              {
                scope: { name: 'lib', version: '2' },
                spans: [
                  {
                    traceId: Buffer.from('0af7651916cd43dd8448eb211c80319c', 'hex'),
                    spanId: Buffer.from('b7ad6b7169203331', 'hex'),
                    name: 'GET',
                    kind: 3,
                    startTimeUnixNano: '1760000000123456789',
                    attributes: [
                      { key: 'rpc.grpc.status_code', value: { intValue: 7 } },
                      { key: 'x', value: { bytesValue: Buffer.from([1, 2, 3]) } },
                    ],
                    events: [
                      { name: 'exception', timeUnixNano: '1760000000123456790', attributes: [{ key: 'exception.message', value: { stringValue: 'boom' } }] },
                    ],
                    status: { code: 2, message: 'denied' },
                  },
                ],
              },
            ],
          },
        ],
      }),
    ).finish();
    const { spans } = decodeOtlpProtobuf(bytes);
    expect(spans[0]).toMatchObject({
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      kind: 'client',
      startTimeUnixNano: '1760000000123456789',
      endTimeUnixNano: '0',
      status: { code: 'error', message: 'denied' },
      attributes: { 'rpc.grpc.status_code': 7, x: 'AQID' },
      scope: { name: 'lib', version: '2' },
      events: [{ name: 'exception', timeUnixNano: '1760000000123456790', attributes: { 'exception.message': 'boom' } }],
    });
    expect({ ...spans[0]!.resource }).toEqual({ 'k8s.pod.name': 'p', 'k8s.namespace.name': 'n' });
    expect(() => decodeOtlpProtobuf(bytes.subarray(0, 20))).toThrow(OtlpPayloadError);
    expect(() => decodeOtlpProtobuf(Buffer.from('this is not protobuf at all, just text'))).toThrow(OtlpPayloadError);
  });
});

const derived = (s: Record<string, unknown>): OtlpDerived => {
  const { events, invalid } = OTLP_SOURCE.decode(span(s), 0);
  expect(invalid).toEqual([]);
  return events[0]!.derived as OtlpDerived;
};

describe('derived fields', () => {
  it('statuses: HTTP (new and old names, numeric strings), gRPC numbers and names, Connect codes', () => {
    expect(derived({ attributes: { 'http.status_code': '403' } })).toMatchObject({ httpStatus: 403, authError: 'PERMISSION_DENIED' });
    expect(derived({ attributes: { 'http.response.status_code': 401 } })).toMatchObject({ httpStatus: 401, authError: 'UNAUTHENTICATED' });
    expect(derived({ attributes: { 'rpc.grpc.status_code': 16 } })).toMatchObject({
      grpcStatus: 'UNAUTHENTICATED',
      httpStatus: 401,
      authError: 'UNAUTHENTICATED',
    });
    expect(derived({ attributes: { 'rpc.response.status_code': 'permission_denied' } }).grpcStatus).toBe('PERMISSION_DENIED');
    expect(derived({ attributes: { 'rpc.connect_rpc.error_code': 'permission_denied' } }).authError).toBe('PERMISSION_DENIED');
    expect(derived({ attributes: { 'rpc.grpc.status_code': 5 } })).toMatchObject({ grpcStatus: 'NOT_FOUND', httpStatus: 404, authError: undefined });
    expect(derived({}).httpStatus).toBeUndefined();
  });

  it('peer and destination namespace from every semantic-conventions generation and from Envoy', () => {
    expect(derived({ kind: 'client', attributes: { 'server.address': 'ledger.payments.svc.cluster.local' } })).toMatchObject({
      peer: 'ledger.payments.svc.cluster.local',
      destinationNamespace: 'payments',
    });
    expect(derived({ kind: 'client', attributes: { 'http.url': 'http://api.shop.svc:8080/x' } })).toMatchObject({
      peer: 'api.shop.svc',
      destinationNamespace: 'shop',
    });
    expect(derived({ kind: 'client', attributes: { 'peer.service': 'billing', 'net.peer.name': 'ignored' } }).peer).toBe('billing');
    expect(derived({ kind: 'client', attributes: { upstream_cluster: 'outbound|8080||payments.payments.svc.cluster.local' } }).destinationNamespace).toBe(
      'payments',
    );
    expect(derived({ kind: 'client', attributes: { 'server.address': 'example.com' } }).destinationNamespace).toBeUndefined();
    expect(derived({ kind: 'server', attributes: { 'client.address': '10.0.0.7' }, resource: { 'k8s.namespace.name': 'payments' } })).toMatchObject({
      peer: '10.0.0.7',
      destinationNamespace: 'payments',
    });
  });

  it('actors: pod, SPIFFE, IP, service name; the caller of a server span; the side of a SPIFFE principal', () => {
    expect(derived({ kind: 'client', resource: { 'k8s.pod.name': 'p', 'k8s.namespace.name': 'n', 'k8s.pod.ip': '10.0.0.1' } }).actor.key).toBe('pod:n/p');
    expect(derived({ kind: 'client', resource: { 'spiffe.id': 'spiffe://td/ns/n/sa/s', 'k8s.pod.ip': '10.0.0.1' } }).actor.key).toBe('sa:n/s');
    expect(derived({ kind: 'client', resource: { 'k8s.pod.ip': '10.0.0.1' } }).actor.key).toBe('ip:10.0.0.1');
    expect(derived({ kind: 'client', resource: { 'service.name': 'cart', 'k8s.namespace.name': 'shop' } }).actor).toMatchObject({
      key: 'user:otel/shop/cart',
      namespace: 'shop',
    });
    expect(derived({ kind: 'client', resource: {} }).actor.key).toBe('user:otel/unknown_service');
    const server = derived({
      kind: 'server',
      attributes: { 'net.sock.peer.addr': '::ffff:10.1.2.3' },
      resource: { 'k8s.pod.name': 'p', 'k8s.namespace.name': 'n' },
    });
    expect(server).toMatchObject({ actor: { key: 'ip:10.1.2.3' }, actorFrom: 'span' });
    expect(derived({ kind: 'server', resource: { 'k8s.pod.name': 'p', 'k8s.namespace.name': 'n' } })).toMatchObject({
      actor: { key: 'pod:n/p' },
      actorFrom: 'resource',
    });
    const sides = derived({
      kind: 'client',
      attributes: { 'destination.principal': 'spiffe://td/ns/db/sa/pg', 'source.principal': 'spiffe://td/ns/web/sa/web' },
    });
    expect(sides).toMatchObject({
      spiffe: 'spiffe://td/ns/web/sa/web',
      peerSpiffe: 'spiffe://td/ns/db/sa/pg',
      destinationNamespace: 'db',
      actor: { key: 'sa:web/web' },
    });
  });

  it('mesh denials, proxies and TLS failures', () => {
    expect(derived({ attributes: { response_flags: 'UAEX' } })).toMatchObject({ meshDenial: 'ext_authz', proxy: true });
    expect(derived({ attributes: { response_code_details: 'rbac_access_denied_matched_policy[none]' } }).meshDenial).toBe('rbac');
    expect(derived({ status: { code: 'error', message: 'RBAC: access denied' } }).meshDenial).toBe('rbac');
    expect(derived({ attributes: { ext_authz_status: 'ext_authz_unauthorized' } })).toMatchObject({ meshDenial: undefined, proxy: true });
    expect(derived({ scope: { name: 'envoy' } }).proxy).toBe(true);
    expect(derived({}).proxy).toBe(false);
    expect(
      derived({ attributes: { upstream_transport_failure_reason: 'TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED' } }).tlsError,
    ).toContain('CERTIFICATE_VERIFY_FAILED');
    expect(derived({ status: { code: 'error', message: 'connection refused' } }).tlsError).toBeUndefined();
  });

  it('details: key, time, outcome, entities, attributes and a redacted excerpt', () => {
    const ev = normalizeSpan(
      decodeOtlpValue(
        span({
          kind: 'client',
          startTimeUnixNano: '1760000000123456789',
          attributes: {
            'http.response.status_code': 403,
            'server.address': 'payments.payments.svc',
            'http.request.header.authorization': 'Bearer abc.def.ghi',
            'source.principal': 'spiffe://td/ns/frontend/sa/frontend',
          },
          resource: { 'k8s.pod.name': 'fe-1', 'k8s.namespace.name': 'frontend', 'k8s.pod.ip': '10.0.0.9', 'service.name': 'frontend' },
        }),
      ).spans[0] as OtlpSpan,
      99,
    );
    expect(ev.key).toBe('5b8efff798038103d269b633813fc60c/eee19b7ec3c1b174');
    const d = ev.details();
    expect(d).toMatchObject({
      time: 1760000000123,
      outcome: 'denied',
      actor: { key: 'pod:frontend/fe-1' },
      target: { namespace: 'payments', name: 'payments', resource: 'services' },
    });
    expect(d.entities.sort()).toEqual(['ip:10.0.0.9', 'ns:frontend', 'ns:payments', 'sa:frontend/frontend']);
    expect(d.attributes).toMatchObject({
      traceId: '5b8efff798038103d269b633813fc60c',
      spanId: 'eee19b7ec3c1b174',
      service: 'frontend',
      destination: 'payments/payments',
      pod: 'frontend/fe-1',
      spiffe: 'spiffe://td/ns/frontend/sa/frontend',
    });
    expect(JSON.stringify(d.excerpt)).not.toContain('abc.def');
    expect(normalizeSpan(decodeOtlpValue(span({})).spans[0]!, 99).details().time).toBe(99);
  });
});
