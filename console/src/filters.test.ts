import { describe, expect, it } from 'vitest';
import {
  EMPTY_FILTERS,
  filtersToSearch,
  hasFilters,
  matchesClientSide,
  matchesIncident,
  matchesSignal,
  parseFilters,
  parseSignalFilters,
  serverQuery,
  signalFiltersToSearch,
  signalRule,
  signalServerQuery,
} from './filters';
import type { IncidentSummary, Signal } from './types';

const NOW = Date.parse('2026-12-01T12:00:00Z');

function inc(over: Partial<IncidentSummary> = {}): IncidentSummary {
  return {
    id: 'inc_1',
    title: 't',
    status: 'open',
    severity: 'high',
    actor: { key: 'sa:frontend/frontend', type: 'serviceaccount', name: 'system:serviceaccount:frontend:frontend' },
    entities: [],
    blastRadius: { namespaces: ['payments', 'frontend'] },
    firstSeen: '2026-12-01T11:00:00.000Z',
    lastSeen: '2026-12-01T11:50:00.000Z',
    createdAt: '2026-12-01T11:00:00.000Z',
    updatedAt: '2026-12-01T11:50:00.000Z',
    version: 1,
    signalCount: 3,
    countsByKind: {},
    sources: ['k8s-audit', 'loki'],
    correlations: [],
    rules: [],
    mitre: [],
    ...over,
  };
}

describe('incident filters in the URL', () => {
  it('parses every filter and ignores unknown values', () => {
    const f = parseFilters(new URLSearchParams('severity=high&status=active&actor=sa%3Afrontend%2Ffrontend&namespace=payments&source=loki&since=24h'));
    expect(f).toEqual({ severity: 'high', status: 'active', actor: 'sa:frontend/frontend', namespace: 'payments', source: 'loki', since: '24h' });
    expect(parseFilters(new URLSearchParams('severity=urgent&status=closed&since=3y&actor=%20x%20'))).toEqual({ ...EMPTY_FILTERS, actor: 'x' });
    expect(parseFilters(new URLSearchParams(''))).toEqual(EMPTY_FILTERS);
  });

  it('round-trips through the query', () => {
    const f = parseFilters(new URLSearchParams('severity=critical&status=resolved&since=7d&source=falco'));
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(filtersToSearch(f))) if (v) q.set(k, v);
    expect(q.toString()).toBe('severity=critical&status=resolved&source=falco&since=7d');
    expect(parseFilters(q)).toEqual(f);
    expect(hasFilters(f)).toBe(true);
    expect(hasFilters(EMPTY_FILTERS)).toBe(false);
  });

  it('gives the server everything but the source, active as a status list and since as a time', () => {
    const f = parseFilters(new URLSearchParams('severity=medium&status=active&actor=a&namespace=n&source=loki&since=1h'));
    expect(serverQuery(f, NOW)).toEqual({ status: 'open,acknowledged', severity: 'medium', actor: 'a', namespace: 'n', since: '2026-12-01T11:00:00.000Z' });
    expect(serverQuery(EMPTY_FILTERS, NOW)).toEqual({});
  });
});

describe('matching incidents', () => {
  const m = (q: string, over: Partial<IncidentSummary> = {}) => matchesIncident(inc(over), parseFilters(new URLSearchParams(q)), NOW);
  it('matches the minimum severity', () => {
    expect(m('severity=high')).toBe(true);
    expect(m('severity=critical')).toBe(false);
    expect(m('severity=low', { severity: 'medium' })).toBe(true);
  });
  it('matches the status, active being open or acknowledged', () => {
    expect(m('status=open')).toBe(true);
    expect(m('status=active', { status: 'acknowledged' })).toBe(true);
    expect(m('status=active', { status: 'resolved' })).toBe(false);
    expect(m('status=resolved')).toBe(false);
  });
  it('matches the actor exactly, a blast-radius namespace, a source and the time range', () => {
    expect(m('actor=sa%3Afrontend%2Ffrontend')).toBe(true);
    expect(m('actor=sa%3Afrontend')).toBe(false);
    expect(m('namespace=payments')).toBe(true);
    expect(m('namespace=kube-system')).toBe(false);
    expect(m('source=loki')).toBe(true);
    expect(m('source=falco')).toBe(false);
    expect(m('since=1h')).toBe(true);
    expect(m('since=15m')).toBe(true);
    expect(m('since=15m', { lastSeen: '2026-12-01T11:40:00.000Z' })).toBe(false);
  });
  it('leaves only the source to the client', () => {
    expect(matchesClientSide(inc(), { ...EMPTY_FILTERS, source: 'falco', severity: 'critical' })).toBe(false);
    expect(matchesClientSide(inc(), { ...EMPTY_FILTERS, source: 'loki', severity: 'critical' })).toBe(true);
  });
  it('copes with incidents missing optional parts', () => {
    const bare = inc({ blastRadius: {}, sources: undefined as unknown as string[] });
    expect(matchesIncident(bare, { ...EMPTY_FILTERS, namespace: 'x' }, NOW)).toBe(false);
    expect(matchesIncident(bare, { ...EMPTY_FILTERS, source: 'loki' }, NOW)).toBe(false);
  });
});

describe('signal filters', () => {
  const sig: Signal = {
    id: 's1',
    rule: { id: 'k8s-secret-read-cross-ns', title: 'Secret read in another namespace' },
    title: 'Read of secret payments/db-credentials',
    kind: 'secret.read',
    severity: 'high',
    source: 'k8s-audit',
    actor: { key: 'sa:frontend/frontend', type: 'serviceaccount', name: 'system:serviceaccount:frontend:frontend' },
    eventTime: '2026-12-01T11:00:00.000Z',
    observedTime: '2026-12-01T11:00:01.000Z',
    target: { resource: 'secrets', namespace: 'payments', name: 'db-credentials' },
    attributes: { userAgent: 'curl/8.0' },
    mitre: ['T1552.007'],
  };
  it('parses the URL with a default limit and builds the server query', () => {
    const f = parseSignalFilters(new URLSearchParams('severity=high&kind=secret.read&source=loki&q=db&limit=9999'));
    expect(f).toEqual({ severity: 'high', kind: 'secret.read', actor: '', source: 'loki', q: 'db', limit: '250' });
    expect(signalServerQuery(f)).toEqual({ limit: '250', severity: 'high', kind: 'secret.read' });
    expect(signalFiltersToSearch({ ...f, limit: '1000' }).limit).toBe('1000');
    expect(signalFiltersToSearch(f).limit).toBe('');
  });
  it('matches source and every word of the text, case-insensitively, in targets, attributes and MITRE ids', () => {
    expect(matchesSignal(sig, { source: '', q: '' })).toBe(true);
    expect(matchesSignal(sig, { source: 'loki', q: '' })).toBe(false);
    expect(matchesSignal(sig, { source: 'k8s-audit', q: 'DB-credentials curl' })).toBe(true);
    expect(matchesSignal(sig, { source: '', q: 't1552.007' })).toBe(true);
    expect(matchesSignal(sig, { source: '', q: 'stripe' })).toBe(false);
  });
});

describe('signal rules', () => {
  it('reads the API rule object, and copes with a signal without one', () => {
    const base = {
      id: 's',
      title: '',
      kind: '',
      severity: 'low',
      source: '',
      actor: { key: '', type: '', name: '' },
      eventTime: '',
      observedTime: '',
    } as unknown as Signal;
    expect(signalRule({ ...base, rule: { id: 'r1', title: 'R one' } })).toEqual({ id: 'r1', title: 'R one' });
    expect(signalRule(base)).toEqual({ id: '', title: '' });
    expect(matchesSignal({ ...base, rule: { id: 'k8s-exec', title: 'Exec into a pod' } }, { source: '', q: 'exec into' })).toBe(true);
  });
});
