/**
 * Soak (issue #19, attack 1): attack-shaped signals under 10,000 distinct actor names, each its own
 * attack (its own pods, bindings and target), through the incident manager with the shipped budget.
 * Before the count budget, each open incident held about 60 KB for 30 minutes and this ran a 384 MB
 * heap out of memory; now the state stays within the budget and the flood is one incident.
 */
import { describe, expect, it } from 'vitest';
import { normalizeAuditEvent } from '../connectors/k8s-audit/normalize.js';
import { attackEvents } from '../connectors/k8s-audit/scenario.js';
import { CorrelationEngine } from '../correlator/correlation/engine.js';
import { DEFAULT_INCIDENT_POLICY, IncidentManager } from '../correlator/incidents.js';
import type { Signal } from '../correlator/signal.js';
import { loadDetector, loadRules } from '../services/rules.js';
import { heapAfterGc } from './helpers/heap.js';

const MB = 1024 * 1024;

const ACTORS = 10_000;

describe('a flood of distinct actors (soak)', () => {
  it(`${ACTORS} actors, each running the whole attack: bounded memory, one flood incident per pattern`, () => {
    const rules = loadRules();
    const detector = loadDetector();
    const template = JSON.stringify(attackEvents().flatMap((e) => detector.detect(normalizeAuditEvent(e, Date.now()))));
    let now = Date.parse('2026-12-06T10:00:00Z');
    const m = new IncidentManager(new CorrelationEngine(rules.correlations), { now: () => now }, {});
    const before = heapAfterGc();
    let signals = 0;
    for (let i = 0; i < ACTORS; i++) {
      // Each actor its own namespace, pods, binding and database: nothing merges them but the pattern.
      const own = template
        .replaceAll('frontend', `fe${i}x`)
        .replaceAll('postgres', `pg${i}x`)
        .replace(/"id":"([0-9a-f]{32})"/g, (_, id: string) => `"id":"${id.slice(0, 20)}${String(i).padStart(12, '0')}"`);
      const batch = JSON.parse(own) as Signal[];
      signals += batch.length;
      m.process(batch);
      now += 10;
    }
    const grew = (heapAfterGc() - before) / MB;
    const open = m.openIncidents();
    const floods = open.filter((i) => i.flood);
    const budget = m.budget();
    console.log(
      `soak: ${ACTORS} actors, ${signals} signals: heap +${grew.toFixed(0)} MB, ${open.length} open incidents (${floods.length} flood: ${floods.map((f) => `${f.flood!.pattern} × ${f.flood!.actors}`).join(', ')}), window entries ${budget.windowEntries.used}/${budget.windowEntries.max}, prologue ${budget.prologueSignals.used}/${budget.prologueSignals.max}`,
    );
    // Without the budget: about 60-70 KB per actor (over 600 MB here).
    expect(grew).toBeLessThan(400);
    expect(open.length).toBeLessThanOrEqual(DEFAULT_INCIDENT_POLICY.floodActors + 1);
    expect(floods).toHaveLength(1);
    expect(floods[0]!.flood!.actors).toBe(ACTORS);
    // The title is written at doublings of the count or every 30 s: it may lag the count a little.
    expect(floods[0]!.title).toMatch(/^Flood: \d+ distinct actors, one pattern: /);
    expect(budget.windowEntries.used).toBeLessThanOrEqual(budget.windowEntries.max);
    expect(budget.prologueSignals.used).toBeLessThanOrEqual(budget.prologueSignals.max);
  }, 180_000);
});
