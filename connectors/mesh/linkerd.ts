/**
 * linkerd2-proxy log lines (container `linkerd-proxy`), plain text and JSON
 * (LINKERD2_PROXY_LOG_FORMAT=json): authorization denials by policy.linkerd.io Servers and TLS /
 * identity failures. Other proxy lines (connect timeouts, the `errors::respond` echo of a denial)
 * are parsed too, so they are recognized, but classify as neither: one denial is one event.
 */
import { emitterFromLabels, mergePeer, peerFromEmitter, peerFromHost, splitHostPort, withPrincipal, isIp, type MeshPeer } from './identity.js';
import { clip, tlsFailureIn, type AccessLogRecord } from './record.js';
import { isObj } from '../../correlator/json-guards.js';

const MAX_LINE = 32 * 1024;
const MAX_FIELDS = 32;
// [  1289.245238s]  INFO ThreadId(02) <spans>: <target>: <message and fields>
const TEXT = /\[\s*(\d+(?:\.\d+)?)s\]\s+(TRACE|DEBUG|INFO|WARN|ERROR)\s+ThreadId\(\d+\)\s+(.*)$/;
const TARGET = /^[a-z_][a-z0-9_]*(?:::[a-z0-9_]+)*$/;
// A wall-clock prefix added by the collector or `kubectl logs --timestamps`.
const WALL = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))\s/;

/** The parts of one Linkerd line the classifier reads. */
interface LinkerdLine {
  level: string;
  spans: string;
  target: string;
  message: string;
  fields: Map<string, string>;
  wall?: string;
}

/** Splits `msg key=value key2=value with spaces key3=Some(X { a: b })` into the message and fields. */
function splitFields(s: string): { message: string; fields: Map<string, string> } {
  const fields = new Map<string, string>();
  // Start offsets of ` key=` at bracket depth 0; a value runs to the next one.
  const starts: { key: string; at: number; valueAt: number }[] = [];
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < s.length && starts.length < MAX_FIELDS; i++) {
    const c = s[i]!;
    if (c === '"') quoted = !quoted;
    if (quoted) continue;
    if (c === '(' || c === '[' || c === '{') depth++;
    else if ((c === ')' || c === ']' || c === '}') && depth > 0) depth--;
    else if (depth === 0 && (i === 0 || s[i - 1] === ' ')) {
      const m = /^([A-Za-z_][\w.]*)=/.exec(s.slice(i, i + 80));
      if (m) {
        starts.push({ key: m[1]!, at: i, valueAt: i + m[0].length });
        i += m[0].length - 1;
      }
    }
  }
  const message = (starts[0] ? s.slice(0, starts[0].at) : s).trim();
  starts.forEach((st, k) => {
    const end = starts[k + 1]?.at ?? s.length;
    if (!fields.has(st.key)) fields.set(st.key, clip(s.slice(st.valueAt, end).trim()));
  });
  return { message: clip(message), fields };
}

function parseText(line: string): LinkerdLine | undefined {
  const m = TEXT.exec(line);
  if (!m) return undefined;
  const rest = m[3]!;
  // Spans contain `:` but never `: `; the target is the next `word::word` before `: `.
  const a = rest.indexOf(': ');
  if (a < 0) return undefined;
  let spans = rest.slice(0, a);
  let after = rest.slice(a + 2);
  let target: string;
  const b = after.indexOf(': ');
  const next = b > 0 ? after.slice(0, b) : '';
  if (TARGET.test(next)) {
    target = next;
    after = after.slice(b + 2);
  } else if (TARGET.test(spans)) {
    // No span context: `ThreadId(01) linkerd_app::env: message`.
    target = spans;
    spans = '';
  } else return undefined;
  const { message, fields } = splitFields(after);
  const wall = WALL.exec(line.slice(0, m.index))?.[1];
  return { level: m[2]!, spans, target, message, fields, ...(wall ? { wall } : {}) };
}

/** True when a JSON object is a linkerd2-proxy JSON log entry. */
export function isLinkerdJson(o: Record<string, unknown>): boolean {
  return typeof o.target === 'string' && /^(linkerd|rustls)/.test(o.target) && isObj(o.fields) && typeof o.level === 'string';
}

function fromJson(o: Record<string, unknown>): LinkerdLine | undefined {
  if (!isLinkerdJson(o)) return undefined;
  const f = o.fields as Record<string, unknown>;
  const fields = new Map<string, string>();
  let n = 0;
  for (const [k, v] of Object.entries(f)) {
    if (k === 'message' || n++ >= MAX_FIELDS) continue;
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') fields.set(k, clip(String(v)));
  }
  // Span fields (`{"name":"server","port":8085}`) are context, like the text format's `server{port=8085}`.
  const spans: string[] = [];
  if (Array.isArray(o.spans))
    for (const sp of o.spans.slice(0, 16)) {
      if (!isObj(sp) || typeof sp.name !== 'string') continue;
      const kv = Object.entries(sp)
        .filter(([k, v]) => k !== 'name' && (typeof v === 'string' || typeof v === 'number'))
        .map(([k, v]) => `${k}=${String(v)}`);
      spans.push(kv.length ? `${sp.name}{${kv.join(' ')}}` : sp.name);
    }
  const message = typeof f.message === 'string' ? clip(f.message) : '';
  return { level: String(o.level).toUpperCase(), spans: spans.join(':'), target: o.target as string, message, fields };
}

/** A span's `{addr=...}` or `{client.addr=...}` value, e.g. `endpoint{addr=10.1.2.3:8080}`. */
function spanValue(spans: string, span: string, key: string): string | undefined {
  const re = new RegExp(`(?:^|:)${span}\\{[^}]*?\\b${key.replace('.', '\\.')}=([^\\s}]+)`);
  return re.exec(spans)?.[1];
}

// tls=Some(Established { client_id: Some(ClientId(Name("web.emojivoto.serviceaccount.identity.linkerd.cluster.local"))), ... })
const CLIENT_ID = /client_id:\s*Some\(ClientId\(Name\("([^"]{1,512})"\)\)\)/;

function peerOfAddr(v: string | undefined): MeshPeer {
  if (!v) return {};
  const hp = splitHostPort(v);
  if (hp) return { ip: hp.ip, port: hp.port };
  return isIp(v) ? { ip: v } : peerFromHost(v);
}

/** Parses a linkerd2-proxy log line (text, or JSON already decoded). */
export function parseLinkerd(line: string | Record<string, unknown>, labels: Readonly<Record<string, string>> = {}): AccessLogRecord | undefined {
  let l: LinkerdLine | undefined;
  if (typeof line === 'string') {
    if (line.length > MAX_LINE || !line.includes('ThreadId(')) return undefined;
    l = parseText(line);
  } else l = fromJson(line);
  if (!l) return undefined;
  const f = l.fields;
  const inbound = l.target.startsWith('linkerd_app_inbound') || /^(inbound|daemon)\b/.test(l.spans);
  const outbound = !inbound && (/^(outbound|identity|dst|policy)\b/.test(l.spans) || l.target.startsWith('linkerd_app_outbound'));
  const direction: AccessLogRecord['direction'] = inbound ? 'inbound' : outbound ? 'outbound' : 'unknown';
  const emitter = emitterFromLabels(labels);
  const me = peerFromEmitter(emitter);

  // The remote end: client.ip / client / client.addr on inbound, the endpoint or target on outbound.
  const remote = peerOfAddr(f.get('client.ip') ?? f.get('client') ?? f.get('client.addr') ?? spanValue(l.spans, 'rescue', 'client.addr'));
  const upstream = mergePeer(
    peerOfAddr(spanValue(l.spans, 'endpoint', 'addr')),
    peerOfAddr(spanValue(l.spans, 'controller', 'addr') ?? spanValue(l.spans, 'proxy', 'addr') ?? spanValue(l.spans, 'logical', 'addr')),
  );
  const tls = f.get('client.tls') ?? f.get('tls');
  let source: MeshPeer;
  let destination: MeshPeer;
  if (direction === 'outbound') {
    source = me;
    destination = upstream;
  } else {
    source = withPrincipal(remote, tls ? CLIENT_ID.exec(tls)?.[1] : undefined);
    destination = me;
    const port = spanValue(l.spans, 'server', 'port');
    if (port && /^\d{1,5}$/.test(port)) destination = { ...destination, port: Number(port) };
  }

  const rec: AccessLogRecord = {
    kind: 'linkerd',
    format: typeof line === 'string' ? 'text' : 'json',
    reporter: direction === 'inbound' ? 'destination' : direction === 'outbound' ? 'source' : 'proxy',
    direction,
    tcp: l.target.endsWith('::tcp') || /^Connection /.test(l.message),
    responseFlags: [],
    mtlsFailure: false,
    authzDenied: false,
    authFailed: false,
    source,
    destination,
    level: l.level,
    message: l.message,
  };
  const wall = l.wall ? Date.parse(l.wall) : NaN;
  if (Number.isFinite(wall)) rec.startTime = wall;
  const error = f.get('error');
  if (error) rec.error = error;

  if (/::policy(::|$)/.test(l.target) && /^(Request|Connection) denied/.test(l.message)) {
    rec.authzDenied = true;
    rec.authzEngine = 'linkerd';
    const server = f.get('server.name') ?? f.get('server');
    if (server) rec.policy = clip(server);
    if (l.message.startsWith('Request')) rec.responseCode = 403;
  } else {
    const reason = tlsFailureIn(error, f.get('error.sources'), l.target.startsWith('rustls') ? l.message : undefined);
    if (reason) {
      rec.mtlsFailure = true;
      rec.tlsReason = reason;
      rec.tlsSide = direction === 'inbound' ? 'server' : 'client';
    }
  }
  return rec;
}
