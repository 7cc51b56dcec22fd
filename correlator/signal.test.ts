import { describe, expect, it } from 'vitest';
import { attackEvents, SEED_SCENARIO } from '../connectors/k8s-audit/scenario.js';
import { normalizeAuditEvent } from '../connectors/k8s-audit/normalize.js';
import { loadDetector } from '../services/rules.js';
import { parseWithoutEvidence, sharedMembers, signalJson, textHash, withoutEvidence, type Signal } from './signal.js';

const omit = (o: object, keys: string[]) => Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)));

const signals: Signal[] = attackEvents(SEED_SCENARIO).flatMap((e) => loadDetector().detect(normalizeAuditEvent(e, 0)));

describe('signal JSON with the evidence last', () => {
  it('is the same signal to a plain JSON.parse, and the signal without evidence to parseWithoutEvidence', () => {
    expect(signals.length).toBeGreaterThan(5);
    for (const s of signals) {
      const { json, evidenceAt } = signalJson(s);
      expect(JSON.parse(json)).toEqual(s);
      expect(evidenceAt).toBeGreaterThan(0);
      // About half of the JSON or less is parsed for the correlator (0.38–0.50 for these signals);
      // the activity trail (info) carries no excerpt, so there is nothing to skip.
      if (s.severity !== 'info') expect(evidenceAt! / json.length).toBeLessThan(0.55);
      expect(parseWithoutEvidence(json, evidenceAt)).toEqual(withoutEvidence(s));
    }
  });

  it('writes the signal’s own members first, then the shared ones, named by the hash of their text', () => {
    for (const s of signals) {
      const { json, evidenceAt, shared } = signalJson(s);
      expect(shared).toBeDefined();
      const { at, hash } = shared!;
      expect(JSON.parse(`${json.slice(0, at)}}`)).toEqual({ id: s.id, eventTime: s.eventTime, observedTime: s.observedTime });
      const text = json.slice(at + 1, evidenceAt);
      expect(hash).toBe(textHash(text));
      expect(sharedMembers(JSON.parse(`{${text}}`))).toEqual(omit(withoutEvidence(s), ['id', 'eventTime', 'observedTime', 'matched', 'excerpt']));
    }
    // Equal text, equal hash; other text, (almost always) another.
    const [a, b] = [signalJson(signals[0]!).shared!, signalJson({ ...signals[0]!, id: 'x' }).shared!];
    expect(b.hash).toBe(a.hash);
    expect(signalJson({ ...signals[0]!, title: 'other' }).shared!.hash).not.toBe(a.hash);
  });

  it('parses everything when the position is missing or wrong, never a wrong signal', () => {
    const s = signals[0]!;
    // Attacker-controlled text in the excerpt that looks like the evidence member, and a title too.
    const tricky: Signal = { ...s, title: 'x","matched":[],"excerpt":{}}', excerpt: { note: ',"matched":[1]}', nested: { a: 1, matched: [2] } } };
    const { json, evidenceAt } = signalJson(tricky);
    const lean = withoutEvidence(tricky);
    expect(parseWithoutEvidence(json, evidenceAt)).toEqual(lean);
    for (const at of [
      undefined,
      NaN,
      -1,
      0,
      1,
      5,
      evidenceAt! - 1,
      evidenceAt! + 1,
      json.indexOf('matched'),
      json.lastIndexOf(',"matched"'),
      json.length,
      json.length + 10,
      2.5,
    ])
      expect(parseWithoutEvidence(json, at)).toEqual(lean);
  });

  it('leaves other JSON as it is, and throws on JSON that is not valid', () => {
    const command = { command: 'transition', incidentId: 'inc_1', to: 'resolved', note: 'n' };
    expect(parseWithoutEvidence(JSON.stringify(command), undefined)).toEqual(command);
    expect(parseWithoutEvidence(JSON.stringify(command), 3)).toEqual(command);
    expect(() => parseWithoutEvidence('{"id": "x",', 8)).toThrow(SyntaxError);
    // A signal without evidence members is written whole, with no position.
    const { matched: _m, excerpt: _e, ...bare } = signals[0]!;
    expect(signalJson(bare as Signal)).toEqual({ json: JSON.stringify(bare) });
    // Only own members, or only shared ones: nothing shared to name.
    const own = signalJson({ id: 'x', eventTime: 1, observedTime: 2, matched: [], excerpt: {} } as unknown as Signal);
    expect(own.shared).toBeUndefined();
    expect(JSON.parse(own.json)).toEqual({ id: 'x', eventTime: 1, observedTime: 2, matched: [], excerpt: {} });
    const { id: _i, eventTime: _t, observedTime: _o, ...rest } = signals[0]!;
    const others = signalJson(rest as Signal);
    expect(others.shared).toBeUndefined();
    expect(parseWithoutEvidence(others.json, others.evidenceAt)).toEqual(withoutEvidence(rest as Signal));
  });
});
