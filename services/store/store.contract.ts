/**
 * The one test suite every {@link IncidentStore} must pass; `store.test.ts` runs it against each
 * implementation, so they cannot drift apart.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { actorFromUsername } from '../../correlator/entities.js';
import { timelineEntry, type Incident, type IncidentStatus } from '../../correlator/incident.js';
import type { Severity } from '../../correlator/severity.js';
import { signalId, type Signal } from '../../correlator/signal.js';
import type { Silence } from '../../correlator/silences.js';
import {
  StoreClosedError,
  StoreQueryError,
  UnknownIncidentError,
  encodeCursor,
  type IncidentQuery,
  type IncidentStore,
  type OutboxEntry,
  type OutboxItem,
} from './store.js';

/** A fixed instant the test data is placed around (2025-06-01T12:00:00Z). */
export const T0 = Date.UTC(2025, 5, 1, 12, 0, 0);

const MINUTE = 60_000;

/** A realistic secret-read signal from the audit log, with a deterministic id derived from `auditId`. */
export function makeSignal(auditId: string, eventTime: number, over: Partial<Signal> = {}): Signal {
  return {
    id: signalId('k8s-secret-read-cross-namespace', 'k8s-audit', `${auditId}/ResponseComplete`),
    source: 'k8s-audit',
    kind: 'secret.read_cross_namespace',
    severity: 'high',
    title: 'system:serviceaccount:payments:payments-api read secret billing/stripe-api-key',
    eventTime,
    observedTime: eventTime + 850,
    actor: actorFromUsername('system:serviceaccount:payments:payments-api'),
    target: { namespace: 'billing', resource: 'secrets', apiGroup: '', name: 'stripe-api-key', verb: 'get' },
    outcome: 'allowed',
    entities: ['ns:billing', 'secret:billing/stripe-api-key', 'pod:payments/payments-api-7d9c8b6f5-x2k4q', 'ip:10.244.1.17'],
    mitre: ['T1552.007'],
    rule: { id: 'k8s-secret-read-cross-namespace', title: 'Service account read a secret outside its namespace' },
    matched: [
      { field: 'objectRef.resource', op: 'eq', expected: 'secrets', actual: 'secrets' },
      { field: 'crossNamespace', op: 'eq', expected: true, actual: true },
    ],
    attributes: { binding: 'ClusterRoleBinding/payments-secrets-reader', role: 'ClusterRole/secret-reader' },
    excerpt: {
      auditID: auditId,
      verb: 'get',
      requestURI: '/api/v1/namespaces/billing/secrets/stripe-api-key',
      sourceIPs: ['10.244.1.17'],
      userAgent: 'kubectl/v1.30.2 (linux/amd64) kubernetes/3968350',
      responseStatus: { code: 200 },
    },
    ...over,
  };
}

/** A realistic incident with every field filled; `over` replaces any of them. */
export function makeIncident(id: string, over: Partial<Incident> = {}): Incident {
  const actor = over.actor ?? actorFromUsername('system:serviceaccount:payments:payments-api');
  const lastSeen = over.lastSeen ?? T0;
  const firstSeen = over.firstSeen ?? lastSeen - 12 * MINUTE;
  const first = makeSignal(`${id}-a1`, firstSeen);
  const second = makeSignal(`${id}-a2`, lastSeen, {
    kind: 'rbac.denied',
    severity: 'medium',
    title: `${actor.name} was denied create clusterrolebindings`,
    target: { resource: 'clusterrolebindings', apiGroup: 'rbac.authorization.k8s.io', verb: 'create' },
    outcome: 'denied',
    rule: { id: 'k8s-rbac-denied', title: 'Request denied by RBAC' },
    attributes: {},
  });
  const timeline = [first, second].map(timelineEntry);
  const status = over.status ?? 'open';
  const resolved: Partial<Incident> = status === 'resolved' ? { resolvedAt: lastSeen + 30 * MINUTE, resolution: 'manual' } : {};
  return {
    id,
    title: `${actor.key} read secrets across namespaces through an over-broad binding`,
    status,
    severity: 'high',
    actor,
    entities: [actor.key, 'ns:billing', 'secret:billing/stripe-api-key', 'binding:ClusterRoleBinding/payments-secrets-reader'],
    blastRadius: {
      namespaces: ['billing', 'payments'],
      workloads: ['payments/Deployment/payments-api'],
      secrets: ['billing/stripe-api-key'],
      bindings: ['ClusterRoleBinding/payments-secrets-reader'],
      policies: [],
    },
    firstSeen,
    lastSeen,
    createdAt: firstSeen + 900,
    updatedAt: lastSeen + 900,
    version: 3,
    timeline,
    signalCount: 7,
    countsByKind: { 'secret.read_cross_namespace': 5, 'rbac.denied': 2 },
    sources: ['k8s-audit'],
    correlations: [{ ruleId: 'secret-harvesting', title: 'One identity read secrets in several namespaces', signalIds: [first.id], time: lastSeen }],
    rules: ['k8s-secret-read-cross-namespace', 'k8s-rbac-denied'],
    mitre: ['T1552.007', 'T1078.004'],
    rootCause: {
      summary: `${actor.key} read secrets in billing through ClusterRoleBinding payments-secrets-reader`,
      evidence: [
        { type: 'actor', entity: actor.key, detail: 'every signal came from this identity', signalIds: [first.id, second.id] },
        {
          type: 'enabler',
          entity: 'binding:ClusterRoleBinding/payments-secrets-reader',
          detail: 'the audit annotation names this binding as what allowed the reads',
          signalIds: [first.id],
        },
      ],
      confidence: 0.85,
      actor: actor.key,
      enablingBinding: {
        kind: 'ClusterRoleBinding',
        name: 'payments-secrets-reader',
        roleKind: 'ClusterRole',
        roleName: 'secret-reader',
      },
    },
    remediations: [
      {
        kind: 'remove-binding',
        title: 'Remove ClusterRoleBinding payments-secrets-reader',
        rationale: 'It lets payments-api read secrets in every namespace; it needs none outside payments.',
        risk: 'Anything else bound through it loses secret access.',
        commands: ['kubectl delete clusterrolebinding payments-secrets-reader'],
        manifests: [],
      },
      {
        kind: 'isolate-workload',
        title: 'Isolate payments-api',
        rationale: 'The pod may be compromised; cut its traffic while investigating.',
        risk: 'Payments stop until the policy is removed.',
        commands: ['kubectl apply -f isolate-payments-api.yaml'],
        manifests: [
          'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: isolate-payments-api\n  namespace: payments\nspec:\n  podSelector:\n    matchLabels:\n      app: payments-api\n  policyTypes: [Ingress, Egress]\n',
        ],
      },
    ],
    maxSignalSeverity: 'high',
    notes: status === 'open' ? [] : [{ time: lastSeen + 5 * MINUTE, status: 'acknowledged', note: 'looking into it', by: 'alice@example.com' }],
    ...resolved,
    ...over,
  };
}

const payments = actorFromUsername('system:serviceaccount:payments:payments-api');
const ciRunner = actorFromUsername('system:serviceaccount:ci:runner');

/** The list dataset: [id, status, severity, actor, namespaces, lastSeen offset in minutes]. */
const DATASET: [string, IncidentStatus, Severity, Incident['actor'], string[], number][] = [
  ['inc-a', 'open', 'critical', payments, ['payments', 'kube-system'], 50],
  ['inc-b', 'acknowledged', 'high', payments, ['payments'], 40],
  ['inc-c', 'resolved', 'medium', actorFromUsername('alice@example.com'), ['default'], 30],
  ['inc-d', 'open', 'low', ciRunner, ['ci', 'payments'], 30],
  ['inc-e', 'open', 'info', actorFromUsername('system:node:worker-1'), ['kube-system'], 20],
  ['inc-f', 'resolved', 'critical', payments, ['payments'], 10],
  ['inc-g', 'acknowledged', 'medium', ciRunner, ['ci'], 0],
];

function dataset(): Incident[] {
  return DATASET.map(([id, status, severity, actor, namespaces, minutes]) =>
    makeIncident(id, {
      status,
      severity,
      actor,
      lastSeen: T0 + minutes * MINUTE,
      blastRadius: { namespaces, workloads: [], secrets: [], bindings: [], policies: [] },
    }),
  );
}

async function ids(store: IncidentStore, q: Omit<IncidentQuery, 'limit'> & { limit?: number }): Promise<string[]> {
  const page = await store.list({ limit: 500, ...q });
  return page.items.map((i) => i.id);
}

/** Every page of a query, following cursors. */
async function allPages(store: IncidentStore, q: IncidentQuery): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list(cursor === undefined ? q : { ...q, cursor });
    pages.push(page.items.map((i) => i.id));
    cursor = page.nextCursor;
    if (pages.length > 100) throw new Error('pagination does not end');
  } while (cursor !== undefined);
  return pages;
}

/** Registers the contract tests for one store implementation; `make` returns a fresh, empty store. */
export function storeContract(name: string, make: () => Promise<IncidentStore>): void {
  describe(`IncidentStore contract: ${name}`, () => {
    let store: IncidentStore;
    beforeEach(async () => {
      store = await make();
    });
    afterEach(async () => {
      await store.close();
    });

    describe('upsert and get', () => {
      it('returns what was written, field for field', async () => {
        const resolved = makeIncident('inc-1', { status: 'resolved', severity: 'critical' });
        const open = makeIncident('inc-2');
        const merged = makeIncident('inc-3', { status: 'resolved', resolution: 'merged', mergedInto: 'inc-2' });
        await store.upsert([resolved, open, merged]);
        expect(await store.get('inc-1')).toEqual(resolved);
        expect(await store.get('inc-2')).toEqual(open);
        expect(await store.get('inc-3')).toEqual(merged);
        expect(await store.get('inc-missing')).toBeUndefined();
      });

      it('does not let callers change stored data through objects they passed in or got back', async () => {
        const inc = makeIncident('inc-1');
        const sig = makeSignal('audit-1', T0);
        const original = structuredClone(inc);
        await store.upsert([inc], [{ incidentId: 'inc-1', signal: sig }]);
        inc.title = 'changed after upsert';
        inc.blastRadius.namespaces.push('changed');
        sig.title = 'changed after upsert';

        const got = await store.get('inc-1');
        expect(got).toEqual(original);
        got!.timeline.length = 0;
        (await store.list({ limit: 10 })).items[0]!.rootCause.evidence.length = 0;
        (await store.open())[0]!.remediations.length = 0;
        (await store.signals('inc-1', 10))[0]!.entities.length = 0;

        expect(await store.get('inc-1')).toEqual(original);
        expect((await store.signals('inc-1', 10))[0]!.title).toBe(makeSignal('audit-1', T0).title);
        expect(await ids(store, { namespace: 'changed' })).toEqual([]);
      });

      it('replaces an incident with a newer or equal version', async () => {
        await store.upsert([makeIncident('inc-1', { version: 3 })]);
        await store.upsert([makeIncident('inc-1', { version: 4, status: 'acknowledged' })]);
        expect(await store.get('inc-1')).toMatchObject({ version: 4, status: 'acknowledged' });
        await store.upsert([makeIncident('inc-1', { version: 4, status: 'resolved', title: 'same version, later write' })]);
        expect(await store.get('inc-1')).toMatchObject({ version: 4, status: 'resolved', title: 'same version, later write' });
      });

      it('ignores a stale write (lower version), including for the list filters', async () => {
        const current = makeIncident('inc-1', {
          version: 5,
          status: 'acknowledged',
          blastRadius: { namespaces: ['payments'], workloads: [], secrets: [], bindings: [], policies: [] },
        });
        await store.upsert([current]);
        await store.upsert([
          makeIncident('inc-1', {
            version: 4,
            status: 'open',
            severity: 'info',
            actor: ciRunner,
            lastSeen: T0 + 99 * MINUTE,
            blastRadius: { namespaces: ['stale-ns'], workloads: [], secrets: [], bindings: [], policies: [] },
          }),
        ]);
        expect(await store.get('inc-1')).toEqual(current);
        expect(await ids(store, { namespace: 'stale-ns' })).toEqual([]);
        expect(await ids(store, { namespace: 'payments' })).toEqual(['inc-1']);
        expect(await ids(store, { actor: ciRunner.key })).toEqual([]);
        expect(await ids(store, { status: ['open'] })).toEqual([]);
        expect(await ids(store, { since: T0 + 90 * MINUTE })).toEqual([]);
      });

      it('keeps the highest version when one batch holds the same incident twice, in either order', async () => {
        await store.upsert([makeIncident('inc-1', { version: 7, title: 'v7' }), makeIncident('inc-1', { version: 6, title: 'v6' })]);
        expect((await store.get('inc-1'))?.title).toBe('v7');
        await store.upsert([makeIncident('inc-2', { version: 6, title: 'v6' }), makeIncident('inc-2', { version: 7, title: 'v7' })]);
        expect((await store.get('inc-2'))?.title).toBe('v7');
      });

      it('accepts an empty batch', async () => {
        await store.upsert([]);
        await store.upsert([], []);
        expect((await store.list({ limit: 10 })).items).toEqual([]);
      });

      it('writes nothing from a batch whose signal names an unknown incident', async () => {
        await store.upsert([makeIncident('inc-1', { version: 1, title: 'before' })]);
        const batch = store.upsert(
          [makeIncident('inc-1', { version: 2, title: 'after' }), makeIncident('inc-2')],
          [
            { incidentId: 'inc-1', signal: makeSignal('audit-1', T0) },
            { incidentId: 'inc-nowhere', signal: makeSignal('audit-2', T0) },
          ],
        );
        await expect(batch).rejects.toBeInstanceOf(UnknownIncidentError);
        await expect(batch).rejects.toMatchObject({ code: 'UNKNOWN_INCIDENT', retryable: false, incidentId: 'inc-nowhere' });
        expect((await store.get('inc-1'))?.title).toBe('before');
        expect(await store.get('inc-2')).toBeUndefined();
        expect(await store.signals('inc-1', 10)).toEqual([]);
      });
    });

    describe('list', () => {
      beforeEach(async () => {
        await store.upsert(dataset());
      });

      it('orders by lastSeen descending, then id descending', async () => {
        expect(await ids(store, {})).toEqual(['inc-a', 'inc-b', 'inc-d', 'inc-c', 'inc-e', 'inc-f', 'inc-g']);
      });

      it('filters by status', async () => {
        expect(await ids(store, { status: ['open'] })).toEqual(['inc-a', 'inc-d', 'inc-e']);
        expect(await ids(store, { status: ['open', 'acknowledged'] })).toEqual(['inc-a', 'inc-b', 'inc-d', 'inc-e', 'inc-g']);
        expect(await ids(store, { status: ['resolved', 'resolved'] })).toEqual(['inc-c', 'inc-f']);
        expect(await ids(store, { status: [] })).toHaveLength(7);
      });

      it('filters by minimum severity', async () => {
        expect(await ids(store, { minSeverity: 'high' })).toEqual(['inc-a', 'inc-b', 'inc-f']);
        expect(await ids(store, { minSeverity: 'medium' })).toEqual(['inc-a', 'inc-b', 'inc-c', 'inc-f', 'inc-g']);
        expect(await ids(store, { minSeverity: 'info' })).toHaveLength(7);
      });

      it('filters by actor entity key, exactly', async () => {
        expect(await ids(store, { actor: payments.key })).toEqual(['inc-a', 'inc-b', 'inc-f']);
        expect(await ids(store, { actor: 'sa:payments' })).toEqual([]);
        expect(await ids(store, { actor: 'user:alice@example.com' })).toEqual(['inc-c']);
      });

      it('filters by a namespace in the blast radius', async () => {
        expect(await ids(store, { namespace: 'payments' })).toEqual(['inc-a', 'inc-b', 'inc-d', 'inc-f']);
        expect(await ids(store, { namespace: 'kube-system' })).toEqual(['inc-a', 'inc-e']);
        expect(await ids(store, { namespace: 'pay' })).toEqual([]);
      });

      it('filters by lastSeen at or after since', async () => {
        expect(await ids(store, { since: T0 + 30 * MINUTE })).toEqual(['inc-a', 'inc-b', 'inc-d', 'inc-c']);
        expect(await ids(store, { since: T0 + 30 * MINUTE + 1 })).toEqual(['inc-a', 'inc-b']);
        expect(await ids(store, { since: T0 + 51 * MINUTE })).toEqual([]);
      });

      it('combines filters: every one must hold', async () => {
        expect(await ids(store, { status: ['open', 'acknowledged'], minSeverity: 'medium', namespace: 'payments', since: T0 + 20 * MINUTE })).toEqual([
          'inc-a',
          'inc-b',
        ]);
        expect(await ids(store, { actor: ciRunner.key, namespace: 'ci', status: ['acknowledged'] })).toEqual(['inc-g']);
        expect(await ids(store, { actor: payments.key, status: ['resolved'], minSeverity: 'critical', since: T0 })).toEqual(['inc-f']);
        expect(await ids(store, { actor: payments.key, namespace: 'ci' })).toEqual([]);
      });

      it('pages through three pages with no duplicates or gaps, splitting a lastSeen tie', async () => {
        const pages = await allPages(store, { limit: 3 });
        expect(pages).toEqual([['inc-a', 'inc-b', 'inc-d'], ['inc-c', 'inc-e', 'inc-f'], ['inc-g']]);
      });

      it('pages with filters, and gives no cursor when the last page is exactly full', async () => {
        expect(await allPages(store, { limit: 2, namespace: 'payments' })).toEqual([
          ['inc-a', 'inc-b'],
          ['inc-d', 'inc-f'],
        ]);
        expect(await store.list({ limit: 7 })).not.toHaveProperty('nextCursor');
        expect(await allPages(store, { limit: 1, actor: 'sa:nobody/nothing' })).toEqual([[]]);
      });

      it('pages through many incidents with equal lastSeen values', async () => {
        const many = Array.from({ length: 25 }, (_, i) =>
          makeIncident(`bulk-${String(i).padStart(2, '0')}`, { lastSeen: T0 - (i % 4) * MINUTE, severity: 'high' }),
        );
        await store.upsert(many);
        const pages = await allPages(store, { limit: 10, minSeverity: 'high' });
        // 25 here and the three high-or-critical incidents of the dataset.
        expect(pages.map((p) => p.length)).toEqual([10, 10, 8]);
        const seen = pages.flat();
        expect(new Set(seen).size).toBe(seen.length);
        expect(seen).toEqual(await ids(store, { minSeverity: 'high' }));
      });

      it('continues from a cursor even when that incident has changed since', async () => {
        const first = await store.list({ limit: 2 });
        await store.upsert([makeIncident('inc-b', { version: 9, lastSeen: T0 + 60 * MINUTE, status: 'acknowledged' })]);
        const second = await store.list({ limit: 2, cursor: first.nextCursor! });
        expect(second.items.map((i) => i.id)).toEqual(['inc-d', 'inc-c']);
      });

      it('rejects a malformed cursor with BAD_CURSOR, naming the field', async () => {
        const b64 = (s: string): string => Buffer.from(s).toString('base64url');
        const bad = ['not a cursor!', b64('hello'), b64('{"lastSeen":1,"id":"x"}'), b64('[1]'), b64('["1","x"]'), b64('[1,2]'), 'A'.repeat(5000)];
        for (const cursor of bad) {
          const result = store.list({ limit: 3, cursor });
          await expect(result, cursor.slice(0, 40)).rejects.toBeInstanceOf(StoreQueryError);
          await expect(result).rejects.toMatchObject({ code: 'BAD_CURSOR', retryable: false, field: 'cursor' });
          await expect(result).rejects.toThrow(/^cursor \(/);
        }
      });

      it('accepts any well-formed cursor, even for an incident it never saw', async () => {
        const page = await store.list({ limit: 10, cursor: encodeCursor({ lastSeen: T0 + 30 * MINUTE, id: 'inc-cz' }) });
        expect(page.items.map((i) => i.id)).toEqual(['inc-c', 'inc-e', 'inc-f', 'inc-g']);
      });

      it('rejects a limit outside 1..500 and unknown filter values with BAD_QUERY', async () => {
        for (const limit of [0, -1, 501, 2.5, Number.NaN]) {
          await expect(store.list({ limit })).rejects.toMatchObject({ name: 'StoreQueryError', code: 'BAD_QUERY', field: 'limit' });
        }
        await expect(store.list({ limit: 1, status: ['closed' as IncidentStatus] })).rejects.toMatchObject({ code: 'BAD_QUERY', field: 'status' });
        await expect(store.list({ limit: 1, minSeverity: 'severe' as Severity })).rejects.toMatchObject({ code: 'BAD_QUERY', field: 'minSeverity' });
        await expect(store.list({ limit: 1, since: Number.NaN })).rejects.toMatchObject({ code: 'BAD_QUERY', field: 'since' });
        expect((await store.list({ limit: 500 })).items).toHaveLength(7);
      });
    });

    describe('open', () => {
      it('returns every open or acknowledged incident, and drops one once resolved', async () => {
        await store.upsert(dataset());
        const open = await store.open();
        expect(open.map((i) => i.id).sort()).toEqual(['inc-a', 'inc-b', 'inc-d', 'inc-e', 'inc-g']);
        expect(open.find((i) => i.id === 'inc-b')).toEqual(dataset()[1]);

        await store.upsert([makeIncident('inc-a', { version: 4, status: 'resolved' })]);
        expect((await store.open()).map((i) => i.id).sort()).toEqual(['inc-b', 'inc-d', 'inc-e', 'inc-g']);
      });

      it('returns nothing from an empty store', async () => {
        expect(await store.open()).toEqual([]);
      });
    });

    describe('signals', () => {
      it('appends idempotently and returns them by event time', async () => {
        // Event times run against id order, so an id-ordered result cannot pass by chance.
        const [early, middle, late] = ['audit-1', 'audit-2', 'audit-3']
          .map((a) => makeSignal(a, T0))
          .sort((a, b) => (a.id < b.id ? 1 : -1))
          .map((s, i) => ({ ...s, eventTime: T0 + (i + 1) * 1000, observedTime: T0 + (i + 1) * 1000 + 850 })) as [Signal, Signal, Signal];
        await store.upsert(
          [makeIncident('inc-1')],
          [
            { incidentId: 'inc-1', signal: late },
            { incidentId: 'inc-1', signal: early },
          ],
        );
        // A redelivered batch: the same signal again (even changed) and one new one.
        await store.upsert(
          [],
          [
            { incidentId: 'inc-1', signal: { ...early, title: 'redelivered' } },
            { incidentId: 'inc-1', signal: middle },
            { incidentId: 'inc-1', signal: middle },
          ],
        );
        expect(await store.signals('inc-1', 100)).toEqual([early, middle, late]);
        expect(await store.signals('inc-1', 2)).toEqual([early, middle]);
      });

      it('orders signals with the same event time by id', async () => {
        const sigs = ['audit-x', 'audit-y', 'audit-z'].map((a) => makeSignal(a, T0));
        await store.upsert(
          [makeIncident('inc-1')],
          sigs.map((signal) => ({ incidentId: 'inc-1', signal })),
        );
        expect((await store.signals('inc-1', 10)).map((s) => s.id)).toEqual(sigs.map((s) => s.id).sort());
      });

      it('keeps the same signal for each incident it belongs to', async () => {
        const sig = makeSignal('audit-1', T0);
        await store.upsert(
          [makeIncident('inc-1'), makeIncident('inc-2')],
          [
            { incidentId: 'inc-1', signal: sig },
            { incidentId: 'inc-2', signal: sig },
          ],
        );
        expect(await store.signals('inc-1', 10)).toEqual([sig]);
        expect(await store.signals('inc-2', 10)).toEqual([sig]);
      });

      it('returns nothing for an incident without signals, and rejects a bad limit', async () => {
        expect(await store.signals('inc-missing', 10)).toEqual([]);
        await expect(store.signals('inc-missing', 0)).rejects.toMatchObject({ code: 'BAD_QUERY', field: 'limit' });
      });
    });

    describe('state', () => {
      it('gets what was set, and the latest value', async () => {
        expect(await store.getState('notifier.slack.cursor')).toBeUndefined();
        await store.setState('notifier.slack.cursor', 'inc-a@3');
        await store.setState('notifier.webhook.cursor', '');
        expect(await store.getState('notifier.slack.cursor')).toBe('inc-a@3');
        await store.setState('notifier.slack.cursor', 'inc-b@7');
        expect(await store.getState('notifier.slack.cursor')).toBe('inc-b@7');
        expect(await store.getState('notifier.webhook.cursor')).toBe('');
      });
    });

    describe('outbox', () => {
      const entry = (incidentId: string, version: number, sink = 'slack:C0SEC', over: Partial<OutboxEntry> = {}): OutboxEntry => ({
        incidentId,
        version,
        sink,
        lane: sink,
        payload: JSON.stringify({ incidentId, version }),
        dueAt: T0,
        ...over,
      });

      it('enqueues once per (incident, version, sink), whatever is sent again', async () => {
        expect(await store.outbox.enqueue([entry('inc-1', 1), entry('inc-1', 1, 'webhook:a1'), entry('inc-1', 1)], T0)).toBe(2);
        expect(await store.outbox.enqueue([entry('inc-1', 1, 'slack:C0SEC', { payload: 'changed' }), entry('inc-1', 2)], T0 + 5)).toBe(1);
        const items = await store.outbox.list({ limit: 10 });
        expect(items.map((i) => [i.incidentId, i.version, i.sink, i.status, i.attempts])).toEqual([
          ['inc-1', 1, 'slack:C0SEC', 'pending', 0],
          ['inc-1', 1, 'webhook:a1', 'pending', 0],
          ['inc-1', 2, 'slack:C0SEC', 'pending', 0],
        ]);
        expect(items[0]).toMatchObject({ payload: JSON.stringify({ incidentId: 'inc-1', version: 1 }), createdAt: T0, leaseUntil: 0, dueAt: T0 });
        expect(items[0]!.seq).toBeLessThan(items[1]!.seq);
        expect(items[0]).not.toHaveProperty('finishedAt');
      });

      it('claims due items of one lane in insertion order, and leases them', async () => {
        await store.outbox.enqueue(
          [
            entry('inc-1', 1, 'slack:C0SEC', { dueAt: T0 + 2000 }),
            entry('inc-2', 1, 'slack:C0SEC', { dueAt: T0 + 1000 }),
            entry('inc-3', 1, 'slack:C0OPS'),
            entry('inc-4', 1, 'slack:C0SEC', { dueAt: T0 + 9000 }),
          ],
          T0,
        );
        expect((await store.outbox.lanesDue(T0)).sort()).toEqual(['slack:C0OPS']);
        expect((await store.outbox.lanesDue(T0 + 2000)).sort()).toEqual(['slack:C0OPS', 'slack:C0SEC']);
        const claimed = await store.outbox.claim('slack:C0SEC', T0 + 2000, 10, 30_000);
        expect(claimed.map((i) => i.incidentId)).toEqual(['inc-1', 'inc-2']);
        expect(claimed.every((i) => i.attempts === 1 && i.leaseUntil === T0 + 32_000)).toBe(true);
        // Leased items are nobody else's until the lease ends, then due again (a deliverer that died).
        expect(await store.outbox.claim('slack:C0SEC', T0 + 2000, 10, 30_000)).toEqual([]);
        expect(await store.outbox.lanesDue(T0 + 2000)).toEqual(['slack:C0OPS']);
        expect(await store.outbox.nextDue()).toBe(T0);
        await store.outbox.complete((await store.outbox.claim('slack:C0OPS', T0, 10, 30_000))[0]!.seq, T0 + 1);
        expect(await store.outbox.nextDue()).toBe(T0 + 9000);
        const again = await store.outbox.claim('slack:C0SEC', T0 + 32_000, 1, 30_000);
        expect(again.map((i) => [i.incidentId, i.attempts])).toEqual([['inc-1', 2]]);
      });

      it('marks done, retries with a later due time, releases untried, and fails', async () => {
        await store.outbox.enqueue([entry('inc-1', 1), entry('inc-2', 1), entry('inc-3', 1), entry('inc-4', 1)], T0);
        const [a, b, c, d] = (await store.outbox.claim('slack:C0SEC', T0, 10, 60_000)) as [OutboxItem, OutboxItem, OutboxItem, OutboxItem];
        await store.outbox.complete(a.seq, T0 + 10);
        await store.outbox.retry(b.seq, T0 + 30_000, 'ratelimited: retry after 30s');
        await store.outbox.release(c.seq, T0 + 1000);
        await store.outbox.fail(d.seq, T0 + 20, 'channel_not_found');
        // Finished items stay finished: a late retry or second completion changes nothing.
        await store.outbox.retry(a.seq, T0 + 99_000, 'late');
        await store.outbox.complete(d.seq, T0 + 30, 'superseded');
        const byId = new Map((await store.outbox.list({ limit: 10 })).map((i) => [i.incidentId, i]));
        expect(byId.get('inc-1')).toMatchObject({ status: 'done', finishedAt: T0 + 10, attempts: 1, leaseUntil: 0 });
        expect(byId.get('inc-1')).not.toHaveProperty('lastError');
        expect(byId.get('inc-2')).toMatchObject({
          status: 'pending',
          dueAt: T0 + 30_000,
          attempts: 1,
          leaseUntil: 0,
          lastError: 'ratelimited: retry after 30s',
        });
        expect(byId.get('inc-3')).toMatchObject({ status: 'pending', dueAt: T0 + 1000, attempts: 0, leaseUntil: 0 });
        expect(byId.get('inc-4')).toMatchObject({ status: 'failed', finishedAt: T0 + 20, lastError: 'channel_not_found' });
        expect(byId.get('inc-4')).not.toHaveProperty('note');
        expect(await store.outbox.nextDue()).toBe(T0 + 1000);
        expect(await store.outbox.lanesDue(T0 + 29_999)).toEqual(['slack:C0SEC']);
        expect((await store.outbox.claim('slack:C0SEC', T0 + 29_999, 10, 1000)).map((i) => i.incidentId)).toEqual(['inc-3']);
      });

      it('keeps a note on items finished without their own delivery', async () => {
        await store.outbox.enqueue([entry('inc-1', 1), entry('inc-1', 2)], T0);
        const [older] = await store.outbox.claim('slack:C0SEC', T0, 1, 1000);
        await store.outbox.complete(older!.seq, T0, 'superseded');
        expect(await store.outbox.list({ limit: 10, status: 'done' })).toEqual([expect.objectContaining({ version: 1, note: 'superseded' })]);
      });

      it('lists by status, incident and sink, and prunes only long-finished items', async () => {
        await store.outbox.enqueue([entry('inc-1', 1), entry('inc-1', 1, 'webhook:a1'), entry('inc-2', 1), entry('inc-3', 1)], T0);
        const [first, second] = await store.outbox.claim('slack:C0SEC', T0, 2, 1000);
        await store.outbox.complete(first!.seq, T0 + 100);
        await store.outbox.fail(second!.seq, T0 + 200, 'invalid_auth');
        expect((await store.outbox.list({ limit: 10, status: 'pending' })).map((i) => [i.incidentId, i.sink])).toEqual([
          ['inc-1', 'webhook:a1'],
          ['inc-3', 'slack:C0SEC'],
        ]);
        expect((await store.outbox.list({ limit: 10, incidentId: 'inc-1' })).map((i) => i.sink)).toEqual(['slack:C0SEC', 'webhook:a1']);
        expect((await store.outbox.list({ limit: 10, sink: 'webhook:a1' })).map((i) => i.incidentId)).toEqual(['inc-1']);
        expect(await store.outbox.list({ limit: 1 })).toHaveLength(1);
        expect(await store.outbox.prune(T0 + 150)).toBe(1);
        expect(await store.outbox.prune(T0 + 150)).toBe(0);
        expect((await store.outbox.list({ limit: 10 })).map((i) => i.status)).toEqual(['pending', 'failed', 'pending']);
      });

      it('answers nothing due when empty', async () => {
        expect(await store.outbox.nextDue()).toBeUndefined();
        expect(await store.outbox.lanesDue(T0)).toEqual([]);
        expect(await store.outbox.claim('slack:C0SEC', T0, 10, 1000)).toEqual([]);
        expect(await store.outbox.enqueue([], T0)).toBe(0);
      });
    });

    describe('silences', () => {
      const silence = (id: string, updatedAt: number, over: Partial<Silence> = {}): Silence => ({
        id,
        matchers: [{ name: 'actor', value: 'sa:ci/deployer', isRegex: false, isEqual: true }],
        startsAt: updatedAt,
        endsAt: updatedAt + 3_600_000,
        createdBy: 'alice',
        comment: 'CI deploys every hour',
        updatedAt,
        ...over,
      });

      it('keeps what was put, replaces by id, lists the most recently updated first and deletes', async () => {
        const a = silence('s-a', T0);
        const b = silence('s-b', T0 + 1000, { matchers: [{ name: 'rule', value: 'k8s-.*', isRegex: true, isEqual: false }] });
        await store.silences.put(a);
        await store.silences.put(b);
        expect(await store.silences.get('s-a')).toEqual(a);
        expect(await store.silences.get('s-none')).toBeUndefined();
        expect(await store.silences.list()).toEqual([b, a]);
        const expired = { ...a, endsAt: T0 + 2000, updatedAt: T0 + 2000 };
        await store.silences.put(expired);
        expect(await store.silences.list()).toEqual([expired, b]);
        expect(await store.silences.delete(['s-b', 's-none'])).toBe(1);
        expect(await store.silences.list()).toEqual([expired]);
      });

      it('does not let callers change a stored silence through the object they passed in', async () => {
        const a = silence('s-a', T0);
        await store.silences.put(a);
        a.matchers[0]!.value = 'changed';
        expect((await store.silences.get('s-a'))?.matchers[0]?.value).toBe('sa:ci/deployer');
      });
    });

    describe('prune (retention)', () => {
      const DAY = 86_400_000;
      it('deletes resolved incidents past their retention with their signals, and old signals of resolved ones; never open ones', async () => {
        const old = T0 - 100 * DAY;
        const incidents = [
          makeIncident('inc-open-old', { status: 'open', firstSeen: old, lastSeen: old, updatedAt: old }),
          makeIncident('inc-ack-old', { status: 'acknowledged', firstSeen: old, lastSeen: old, updatedAt: old }),
          makeIncident('inc-resolved-old', { status: 'resolved', resolvedAt: old, resolution: 'quiet', lastSeen: old }),
          makeIncident('inc-resolved-recent', { status: 'resolved', resolvedAt: T0 - DAY, resolution: 'quiet', lastSeen: T0 - DAY }),
        ];
        const sig = (id: string, t: number) => makeSignal(id, t);
        await store.upsert(incidents, [
          { incidentId: 'inc-open-old', signal: sig('a-1', old) },
          { incidentId: 'inc-ack-old', signal: sig('b-1', old) },
          { incidentId: 'inc-resolved-old', signal: sig('c-1', old) },
          { incidentId: 'inc-resolved-old', signal: sig('c-2', old + 1000) },
          { incidentId: 'inc-resolved-recent', signal: sig('d-1', T0 - 20 * DAY) },
          { incidentId: 'inc-resolved-recent', signal: sig('d-2', T0 - 2 * DAY) },
        ]);
        const cutoffs = { incidentsResolvedBefore: T0 - 90 * DAY, signalsBefore: T0 - 14 * DAY };
        expect(await store.prune(cutoffs)).toEqual({ incidents: 1, signals: 3 });
        expect(await store.get('inc-resolved-old')).toBeUndefined();
        expect(await store.signals('inc-resolved-old', 10)).toEqual([]);
        expect((await store.list({ limit: 10 })).items.map((i) => i.id).sort()).toEqual(['inc-ack-old', 'inc-open-old', 'inc-resolved-recent']);
        expect((await store.signals('inc-resolved-recent', 10)).map((s) => s.eventTime)).toEqual([T0 - 2 * DAY]);
        expect(await store.signals('inc-open-old', 10)).toHaveLength(1);
        expect(await store.signals('inc-ack-old', 10)).toHaveLength(1);
        expect(await store.prune(cutoffs)).toEqual({ incidents: 0, signals: 0 });
        expect(await store.prune({})).toEqual({ incidents: 0, signals: 0 });
      });
    });

    describe('close', () => {
      it('is idempotent, and later calls reject with STORE_CLOSED', async () => {
        await store.close();
        await store.close();
        await expect(store.get('inc-1')).rejects.toBeInstanceOf(StoreClosedError);
        await expect(store.upsert([makeIncident('inc-1')])).rejects.toMatchObject({ code: 'STORE_CLOSED', retryable: false });
        await expect(store.getState('k')).rejects.toMatchObject({ code: 'STORE_CLOSED' });
        await expect(store.outbox.enqueue([], T0)).rejects.toMatchObject({ code: 'STORE_CLOSED' });
        await expect(store.outbox.nextDue()).rejects.toMatchObject({ code: 'STORE_CLOSED' });
        await expect(store.silences.list()).rejects.toMatchObject({ code: 'STORE_CLOSED' });
      });
    });
  });
}
