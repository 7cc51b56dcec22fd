import { describe, expect, it } from 'vitest';
import type { Incident } from '../../correlator/incident.js';
import { makeIncident, T0 } from '../store/store.contract.js';
import { describeChange, mergeChanges, snapshotOf } from './changes.js';

const v3 = makeIncident('inc-1');
const grown = (over: Partial<Incident>): Incident => ({ ...v3, version: 4, ...over });

describe('describeChange', () => {
  it('treats a first sight as opened, and a resolved incident never notified as nothing to say', () => {
    expect(describeChange(undefined, v3)).toMatchObject({ kind: 'opened', material: true, significant: false, newSources: ['k8s-audit'] });
    expect(describeChange(undefined, { ...v3, status: 'resolved' })).toMatchObject({ kind: 'resolved', material: false });
  });

  it('finds nothing material in repeats of known signals until their count doubles', () => {
    const prev = snapshotOf(v3, ['slack:C1']);
    expect(describeChange(prev, grown({ signalCount: 13 }))).toMatchObject({ kind: 'updated', fromVersion: 3, material: false, addedSignals: 6 });
    expect(describeChange(prev, grown({ signalCount: 14 }))).toMatchObject({ material: true, significant: false });
  });

  it('calls a severity rise, a new source or a new pattern significant evidence; a status change material only', () => {
    const prev = snapshotOf(v3, []);
    expect(describeChange(prev, grown({ severity: 'critical' }))).toMatchObject({
      severity: { from: 'high', to: 'critical' },
      material: true,
      significant: true,
    });
    expect(describeChange(prev, grown({ severity: 'medium' }))).toMatchObject({ material: true, significant: false });
    expect(describeChange(prev, grown({ sources: ['k8s-audit', 'loki'] }))).toMatchObject({ newSources: ['loki'], significant: true });
    const pattern = { ruleId: 'zt-lateral-movement', title: 'Lateral movement', signalIds: [], time: T0 };
    expect(describeChange(prev, grown({ correlations: [...v3.correlations, pattern] }))).toMatchObject({
      newCorrelations: [{ ruleId: 'zt-lateral-movement', title: 'Lateral movement' }],
      significant: true,
    });
    expect(describeChange(prev, grown({ status: 'acknowledged' }))).toMatchObject({
      status: { from: 'open', to: 'acknowledged' },
      material: true,
      significant: false,
    });
    expect(describeChange(prev, grown({ status: 'resolved' }))).toMatchObject({ kind: 'resolved', material: true, significant: false });
  });

  it('counts a new high-severity kind seen after the last notification as significant', () => {
    const prev = snapshotOf(v3, []);
    const entry = { ...v3.timeline[0]!, signalId: 'new', kind: 'pod.exec' as const, severity: 'high' as const, time: v3.lastSeen + 1 };
    const c = describeChange(prev, grown({ timeline: [...v3.timeline, entry], countsByKind: { ...v3.countsByKind, 'pod.exec': 1 } }));
    expect(c).toMatchObject({ newKinds: ['pod.exec'], material: true, significant: true, since: v3.lastSeen });
  });
});

describe('mergeChanges', () => {
  it('keeps the evidence of superseded versions', () => {
    const prev = snapshotOf(v3, []);
    const v4 = grown({ sources: ['k8s-audit', 'loki'], signalCount: 8 });
    const v5: Incident = { ...v4, version: 5, severity: 'critical', signalCount: 10 };
    const merged = mergeChanges(describeChange(prev, v4), describeChange(snapshotOf(v4, []), v5));
    expect(merged).toMatchObject({
      kind: 'updated',
      fromVersion: 3,
      severity: { from: 'high', to: 'critical' },
      newSources: ['loki'],
      addedSignals: 3,
      since: v3.lastSeen,
      significant: true,
    });
    const opened = mergeChanges(describeChange(undefined, v3), describeChange(prev, v4));
    expect(opened.kind).toBe('opened');
  });
});
