/**
 * Service-account usage detected on a worker arrives counted per permission, not as one record per
 * event; what the profiler learns from it must be exactly what it learns from the same fresh events
 * on the event loop, re-sent events left out.
 */
import { describe, expect, it } from 'vitest';
import { syntheticAuditEvents } from '../../connectors/k8s-audit/synth.js';
import type { AuditEvent } from '../../connectors/k8s-audit/parse.js';
import { loadDetector } from '../rules.js';
import { UsageProfiler, usageOf, type UsageCount } from '../usage.js';
import { detectAuditBody, type DetectedAudit } from './audit-batch.js';
import { DetectionPool } from './pool.js';

describe('usage counted on the detection worker', () => {
  it('teaches the profiler what the fresh events teach it on the event loop', async () => {
    const events: AuditEvent[] = syntheticAuditEvents(800, { seed: 21, suspiciousShare: 0.05 });
    // A stage the profiler must skip (the stream also holds refused requests of service accounts, which it skips too).
    events[1] = { ...events[1]!, stage: 'RequestReceived' };
    const body = new TextEncoder().encode(JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: events }));
    const detected = detectAuditBody(loadDetector(), body, false, Date.now()) as DetectedAudit;

    const counted = events.filter((e) => e.stage !== 'RequestReceived' && usageOf(e)).length;
    expect(events.filter((e) => e.user.username?.startsWith('system:serviceaccount:') && (e.responseStatus?.code ?? 0) >= 400).length).toBeGreaterThan(0);
    expect(counted).toBeGreaterThan(200);
    // A few permissions, each with the events that used it: far fewer entries than events.
    expect(detected.usage.length).toBeLessThan(counted / 4);
    expect(detected.usage.reduce((n, u) => n + u.events.length, 0)).toBe(counted);

    // Every third event was seen before (a re-send): only the others count.
    const fresh = events.map((_, i) => i).filter((i) => i % 3 !== 0);
    let published: readonly UsageCount[] = [];
    // publish() runs on the event loop: the pool starts no worker for it.
    const pool = new DetectionPool(
      1,
      { files: [], minSeverity: 'info' },
      {
        publishDetected: async (_source, count, d) => {
          published = d.usage;
          return { signals: count };
        },
      },
    );
    await pool.publish(detected, fresh);

    const viaWorker = new UsageProfiler();
    for (const u of published) viaWorker.record(u, u.count);
    const onLoop = new UsageProfiler();
    for (const i of fresh) if (events[i]!.stage !== 'RequestReceived') onLoop.observe(events[i]!);
    const actors = [...new Set(events.map((e) => usageOf(e)?.actor).filter((a): a is string => !!a))];
    expect(actors.length).toBeGreaterThan(1);
    const byKey = (p: { namespace?: string; resource: string; verb: string }) => `${p.namespace ?? ''} ${p.resource} ${p.verb}`;
    for (const a of actors) {
      const want = onLoop.usage(a).sort((x, y) => byKey(x).localeCompare(byKey(y)));
      expect(
        viaWorker.usage(a).sort((x, y) => byKey(x).localeCompare(byKey(y))),
        a,
      ).toEqual(want);
    }
    expect(published.reduce((n, u) => n + u.count, 0)).toBe(fresh.filter((i) => events[i]!.stage !== 'RequestReceived' && usageOf(events[i]!)).length);
  });
});
