import { describe, expect, it } from 'vitest';
import { INCIDENT, SIGNALS } from './fixtures/incident';
import { filterEntries, incidentEntries, lanesOf, manifestFile, timeSpan } from './timeline';

describe('incident entries and lanes', () => {
  const entries = incidentEntries(INCIDENT, SIGNALS);

  it('has one entry per signal, oldest first, with the rule id of either shape', () => {
    expect(entries).toHaveLength(26);
    expect(entries.map((e) => e.ms)).toEqual([...entries.map((e) => e.ms)].sort((a, b) => a - b));
    expect(entries.every((e) => e.ruleId !== '')).toBe(true);
    expect(
      incidentEntries(INCIDENT, undefined)
        .map((e) => e.id)
        .sort(),
    ).toEqual(entries.map((e) => e.id).sort());
  });

  it('puts each source in its lane, in the fixed lane order', () => {
    const lanes = lanesOf(entries, INCIDENT.sources);
    expect(lanes.map((l) => [l.source, l.label, l.entries.length])).toEqual([
      ['k8s-audit', 'Audit', 19],
      ['loki', 'Mesh logs', 3],
      ['alertmanager', 'Alerts', 1],
      ['otlp', 'Traces', 3],
    ]);
  });

  it('filters to exactly the given signal ids', () => {
    const ids = new Set(INCIDENT.correlations[0]!.signalIds);
    expect(
      filterEntries(entries, ids)
        .map((e) => e.id)
        .sort(),
    ).toEqual([...ids].sort());
    expect(filterEntries(entries, undefined)).toHaveLength(26);
  });

  it('spans the time axis', () => {
    const span = timeSpan(entries);
    expect(span.pos(span.start)).toBe(0);
    expect(span.pos(span.end)).toBe(1);
    expect(timeSpan([]).pos(5)).toBe(0.5);
  });
});

describe('manifestFile', () => {
  it('takes the file name from the manifest\'s "# save as" line', () => {
    const m = INCIDENT.remediations[0]!.manifests[0]!;
    expect(manifestFile(m, 'isolate-workload', 0)).toEqual({ filename: 'quarantine-frontend.yaml', text: m });
  });
  it('falls back to <kind>-<n>.yaml and never lets a path through', () => {
    expect(manifestFile('apiVersion: v1\n', 'remove-binding', 1).filename).toBe('remove-binding-2.yaml');
    expect(manifestFile('# save as ../../etc/passwd\nx', 'k', 0).filename).toBe('passwd.yaml');
    expect(manifestFile('# save as run.sh\nx', 'k', 0).filename).toBe('run.sh.yaml');
    expect(manifestFile('# save as np.YML\nx', 'k', 0).filename).toBe('np.yaml');
  });
});
