/**
 * One log line (+ its stream labels) → what kubevigil understands of it: a mesh proxy record
 * (Istio, Envoy, Linkerd) or a Gatekeeper decision. Lines of any other kind give `undefined`;
 * nothing here throws. Container-runtime wrappers a shipper may have left on the line (CRI
 * `<time> stdout F `, Docker's `{"log": ...}`) are removed first.
 */
import { parseEnvoyJson, parseEnvoyText } from './envoy.js';
import { parseGatekeeper, type GatekeeperDecision } from './gatekeeper.js';
import { parseLinkerd } from './linkerd.js';
import type { AccessLogRecord } from './record.js';
import { isObj } from '../../correlator/json-guards.js';

/** What a line was recognized as. */
export type ParsedLine = { format: 'istio' | 'envoy' | 'linkerd'; mesh: AccessLogRecord } | { format: 'gatekeeper'; gatekeeper: GatekeeperDecision };

/** Longest line the JSON parsers look at. */
const MAX_JSON_LINE = 64 * 1024;
const CRI_PREFIX = /^\d{4}-\d{2}-\d{2}T[^\s]+ (?:stdout|stderr) [FP] /;

function parseJson(s: string): Record<string, unknown> | undefined {
  if (s.length > MAX_JSON_LINE) return undefined;
  try {
    const v: unknown = JSON.parse(s);
    return isObj(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function fromObject(o: Record<string, unknown>, labels: Readonly<Record<string, string>>, depth: number): ParsedLine | undefined {
  const gk = parseGatekeeper(o);
  if (gk) return { format: 'gatekeeper', gatekeeper: gk };
  const envoy = parseEnvoyJson(o, labels);
  if (envoy) return { format: envoy.kind as 'istio' | 'envoy', mesh: envoy };
  const ld = parseLinkerd(o, labels);
  if (ld) return { format: 'linkerd', mesh: ld };
  // Docker json-file: {"log":"<the line>\n","stream":"stdout","time":"..."}
  if (depth === 0 && typeof o.log === 'string') return parse(o.log.trimEnd(), labels, depth + 1);
  return undefined;
}

/** Recognizes and parses one log line; `undefined` for lines of no known kind. Never throws. */
export function parseLogLine(line: string, labels: Readonly<Record<string, string>> = {}): ParsedLine | undefined {
  return parse(line, labels, 0);
}

function parse(line: string, labels: Readonly<Record<string, string>>, depth: number): ParsedLine | undefined {
  try {
    let s = line;
    const cri = CRI_PREFIX.exec(s);
    if (cri) s = s.slice(cri[0].length);
    const t = s.trimStart();
    if (t.startsWith('{')) {
      const o = parseJson(t);
      return o ? fromObject(o, labels, depth) : undefined;
    }
    if (t.includes('] "')) {
      const r = parseEnvoyText(t, labels);
      if (r) return { format: r.kind as 'istio' | 'envoy', mesh: r };
    }
    if (t.includes('ThreadId(')) {
      const r = parseLinkerd(t, labels);
      if (r) return { format: 'linkerd', mesh: r };
    }
    return undefined;
  } catch {
    // A parser bug on a hostile line must not take down ingestion; the line is simply not understood.
    return undefined;
  }
}
