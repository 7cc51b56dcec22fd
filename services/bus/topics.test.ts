import { describe, expect, it } from 'vitest';
import { attackEvents, SEED_SCENARIO } from '../../connectors/k8s-audit/scenario.js';
import { normalizeAuditEvent } from '../../connectors/k8s-audit/normalize.js';
import { withoutEvidence, type Signal } from '../../correlator/signal.js';
import { loadDetector } from '../rules.js';
import { withJson, writtenJson } from './bus.js';
import { serialize } from './kafka/codec.js';
import {
  encodeSignalsMessage,
  EVIDENCE_AT_HEADER,
  parseSignalsMessageWithoutEvidence,
  SHARED_HEADER,
  signalPositions,
  topics,
  type IncidentCommand,
} from './topics.js';

const signals: Signal[] = attackEvents(SEED_SCENARIO).flatMap((e) => loadDetector().detect(normalizeAuditEvent(e, 0)));

/** What a consumer gets for `json` with `headers`, from its bytes. */
function fromBytes(json: string, headers: Record<string, string> = {}): unknown {
  return parseSignalsMessageWithoutEvidence.bytes!(Buffer.from(json, 'utf8'), (name) => headers[name]);
}

describe('signals read from their bytes without the evidence', () => {
  it('gives what parsing the whole text gives, the signal without its evidence', () => {
    expect(signals.length).toBeGreaterThan(5);
    for (const s of signals) {
      const { json, headers } = encodeSignalsMessage(s);
      const header = (name: string) => headers?.[name];
      expect(fromBytes(json, headers)).toEqual(parseSignalsMessageWithoutEvidence(json, header));
      expect(fromBytes(json, headers)).toEqual(withoutEvidence(s));
    }
  });

  it('reads a signal with non-ASCII text before the evidence (characters are not bytes there) in full, correctly', () => {
    const s: Signal = { ...signals[0]!, title: 'Zugriff auf Geheimnisse — ünerwartet 🔑' };
    const { json, headers } = encodeSignalsMessage(s);
    expect(headers?.[EVIDENCE_AT_HEADER]).toBeDefined();
    expect(fromBytes(json, headers)).toEqual(withoutEvidence(s));
  });

  it('reads a signal longer before its evidence than the reading buffer, and the next one after it', () => {
    const long: Signal = { ...signals[0]!, attributes: { ...signals[0]!.attributes, note: 'n'.repeat(70_000) } };
    for (const s of [long, signals[1]!, long, signals[0]!]) {
      const { json, headers } = encodeSignalsMessage(s);
      expect(fromBytes(json, headers)).toEqual(withoutEvidence(s));
    }
  });

  it('parses everything when the header is missing or wrong, never a wrong signal', () => {
    const s: Signal = { ...signals[0]!, title: 'x","matched":[],"excerpt":{}}', excerpt: { note: ',"matched":[1]}' } };
    const { json, headers } = encodeSignalsMessage(s);
    const at = Number(headers![EVIDENCE_AT_HEADER]);
    const lean = withoutEvidence(s);
    for (const h of [
      undefined,
      'x',
      '-1',
      '0',
      '2.5',
      String(at - 1),
      String(at + 1),
      String(json.indexOf(',"matched"')),
      String(json.length),
      String(json.length + 5),
    ])
      expect(fromBytes(json, h === undefined ? {} : { [EVIDENCE_AT_HEADER]: h })).toEqual(lean);
  });

  it('reads commands whole, and throws on a value that is not JSON', () => {
    const command: IncidentCommand = { command: 'transition', incidentId: 'inc_1', to: 'resolved', note: 'n' };
    expect(fromBytes(encodeSignalsMessage(command).json)).toEqual(command);
    expect(fromBytes(JSON.stringify(command), { [EVIDENCE_AT_HEADER]: '3' })).toEqual(command);
    expect(() => fromBytes('{"id": "x",', { [EVIDENCE_AT_HEADER]: '8' })).toThrow(SyntaxError);
  });
});

describe('where a signal message says its parts are', () => {
  const text = (h: Record<string, Buffer>) => (name: string) => h[name]?.toString();
  it('reads the positions from the header bytes, and odd forms as their text says', () => {
    const h = { [EVIDENCE_AT_HEADER]: Buffer.from('963'), [SHARED_HEADER]: Buffer.from('97:4294967295') };
    expect(signalPositions(text(h), h)).toEqual({ evidenceAt: 963, sharedAt: 97, sharedHash: 4294967295 });
    const odd = { [EVIDENCE_AT_HEADER]: Buffer.from(' 1e2'), [SHARED_HEADER]: Buffer.from('0x10:7') };
    expect(signalPositions(text(odd), odd)).toEqual({ evidenceAt: 100, sharedAt: 16, sharedHash: 7 });
    const bad = { [EVIDENCE_AT_HEADER]: Buffer.from('x'), [SHARED_HEADER]: Buffer.from('97') };
    expect(signalPositions(text(bad), bad)).toEqual({ evidenceAt: NaN, sharedAt: NaN, sharedHash: NaN });
    expect(signalPositions(() => undefined, {})).toEqual({ evidenceAt: NaN, sharedAt: NaN, sharedHash: NaN });
    // Text headers only (a parser given no bytes): the same numbers.
    expect(signalPositions(text(h))).toEqual({ evidenceAt: 963, sharedAt: 97, sharedHash: 4294967295 });
  });

  it('reads a message the same from header bytes as from header text', () => {
    for (const s of signals) {
      const { json, headers } = encodeSignalsMessage(s);
      const bytes = Object.fromEntries(Object.entries(headers!).map(([k, v]) => [k, Buffer.from(v)]));
      expect(parseSignalsMessageWithoutEvidence.bytes!(Buffer.from(json), text(bytes), bytes)).toEqual(withoutEvidence(s));
    }
  });
});

describe('values already written', () => {
  it('are sent as their JSON, not written again', () => {
    const t = topics('t');
    const value = { id: 'inc_1', version: 3 };
    expect(serialize(t.incidents as never, { key: 'inc_1', value }).json).toBe(JSON.stringify(value));
    withJson(value, '{"id":"inc_1","version":3,"written":true}');
    expect(writtenJson(value)).toBe('{"id":"inc_1","version":3,"written":true}');
    expect(serialize(t.incidents as never, { key: 'inc_1', value }).json).toBe('{"id":"inc_1","version":3,"written":true}');
    expect(writtenJson({ id: 'inc_1' })).toBeUndefined();
  });
});
