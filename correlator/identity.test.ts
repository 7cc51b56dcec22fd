import { describe, expect, it } from 'vitest';
import { actorFromIp, actorFromPod } from './entities.js';
import { IdentityResolver } from './identity.js';

describe('IdentityResolver', () => {
  it('resolves an IP to the pod and service account the audit log tied to it', () => {
    const clock = {
      t: 1_000_000,
      now() {
        return this.t;
      },
    };
    const r = new IdentityResolver(clock, { ttlMs: 60_000 });
    r.learn({ ip: '10.0.3.17', pod: { namespace: 'frontend', name: 'web-1' }, serviceAccount: { namespace: 'frontend', name: 'frontend' }, time: clock.t });
    expect(r.resolve(actorFromIp('10.0.3.17'))).toEqual({
      actor: expect.objectContaining({ key: 'sa:frontend/frontend', type: 'serviceaccount', namespace: 'frontend' }),
      via: ['ip:10.0.3.17', 'pod:frontend/web-1'],
      resolvedBy: 'audit',
    });
    expect(r.resolve(actorFromPod('frontend', 'web-1'))?.actor.key).toBe('sa:frontend/frontend');
    expect(r.resolve(actorFromIp('10.9.9.9'))).toBeUndefined();
    // IPs are reused: a binding not seen for longer than the TTL no longer holds.
    clock.t += 61_000;
    expect(r.resolve(actorFromIp('10.0.3.17'))).toBeUndefined();
  });

  it('follows a reused IP to its new pod, and knows a pod without its service account', () => {
    const clock = { now: () => 5 };
    const r = new IdentityResolver(clock);
    r.learn({ ip: '10.0.0.1', pod: { namespace: 'a', name: 'old' }, serviceAccount: { namespace: 'a', name: 'x' }, time: 1 });
    r.learn({ ip: '10.0.0.1', pod: { namespace: 'b', name: 'new' }, time: 2 });
    expect(r.resolve(actorFromIp('10.0.0.1'))?.actor).toMatchObject({ key: 'pod:b/new', type: 'pod' });
  });

  it('does not let a late, older fact undo a newer one', () => {
    const r = new IdentityResolver({ now: () => 300 });
    r.learn({ ip: '10.0.3.17', pod: { namespace: 'b', name: 'new' }, time: 200 });
    r.learn({ ip: '10.0.3.17', pod: { namespace: 'a', name: 'old' }, time: 100 });
    expect(r.resolve(actorFromIp('10.0.3.17'))?.actor.key).toBe('pod:b/new');
  });

  it('stays within its bound', () => {
    const r = new IdentityResolver({ now: () => 0 }, { maxEntries: 3 });
    for (let i = 0; i < 10; i++) r.learn({ ip: `10.0.0.${i}`, pod: { namespace: 'n', name: `p${i}` }, time: 0 });
    expect(r.stats.evicted).toBe(7);
    expect(r.resolve(actorFromIp('10.0.0.0'))).toBeUndefined();
    expect(r.resolve(actorFromIp('10.0.0.9'))?.actor.key).toBe('pod:n/p9');
  });
});
