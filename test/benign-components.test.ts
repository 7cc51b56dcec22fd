/**
 * Well-known system components doing what their documentation says they do (kube-state-metrics,
 * cert-manager, Cilium, Calico, Argo CD, Flux, the Prometheus operator, ingress-nginx, Gatekeeper,
 * Kyverno, metrics-server, CoreDNS, istiod) must open nothing of medium severity or above, and raise
 * no signal above low: the knowledge of what they do lives in the rule pack's lists.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CorrelationEngine } from '../correlator/correlation/engine.js';
import { Detector } from '../correlator/detection/engine.js';
import { IncidentManager } from '../correlator/incidents.js';
import { severityRank } from '../correlator/severity.js';
import { decodeForTests, loadRules, SCHEMAS } from '../services/rules.js';

const corpus = parse(readFileSync(new URL('./fixtures/benign/components.yaml', import.meta.url), 'utf8')) as { events: unknown[] };

describe('known system components', () => {
  const rules = loadRules();
  const detector = new Detector(rules.rules, SCHEMAS);

  it('raise no signal above low and open no incident of medium or above', () => {
    expect(corpus.events.length).toBeGreaterThanOrEqual(30);
    let now = Date.UTC(2026, 11, 6, 8);
    const manager = new IncidentManager(new CorrelationEngine(rules.correlations), { now: () => now });
    const loud: string[] = [];
    const opened: string[] = [];
    for (const value of corpus.events) {
      now += 2000;
      const { events, invalid } = decodeForTests('k8s-audit', value);
      expect(invalid).toEqual([]);
      const signals = events.flatMap((e) => detector.detect(e));
      for (const s of signals) if (severityRank(s.severity) > severityRank('low')) loud.push(`${s.rule.id} (${s.severity}): ${s.title}`);
      for (const inc of manager.process(signals).incidents)
        if (severityRank(inc.severity) >= severityRank('medium')) opened.push(`${inc.severity}: ${inc.title}`);
    }
    expect(loud).toEqual([]);
    expect(opened).toEqual([]);
  });
});
