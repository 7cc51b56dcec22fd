import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { IdentityBaseline, type BaselineStore } from '../../correlator/baseline.js';
import { actorFromUsername } from '../../correlator/entities.js';
import type { Signal } from '../../correlator/signal.js';
import { RedisBaselineStore } from './baseline-redis.js';
import { connectRedis } from './correlator-state.js';
import { createLogger } from '../logging.js';
import { redisBaselineStore } from '../roles/correlator.js';

const T0 = Date.UTC(2026, 11, 1, 10);
const signal = (namespace: string): Signal => ({
  id: `s-${namespace}`,
  source: 'k8s-audit',
  kind: 'secret.read_cross_namespace',
  severity: 'high',
  title: 'read secret',
  eventTime: T0,
  observedTime: T0,
  actor: actorFromUsername('system:serviceaccount:ci:deployer'),
  target: { namespace, resource: 'secrets' },
  outcome: 'allowed',
  entities: [],
  mitre: [],
  rule: { id: 'r', title: 'r' },
  matched: [],
  attributes: {},
  excerpt: {},
});

const url = process.env.REDIS_URL;
describe.skipIf(!url)('RedisBaselineStore (needs REDIS_URL; scripts/with-services.sh sets it)', () => {
  const clients: Redis[] = [];
  afterAll(() => clients.forEach((c) => c.disconnect()));

  it('writes changed entries to one hash and reads them back in another process', async () => {
    const r = connectRedis(url!);
    clients.push(r);
    if (r.status !== 'ready') await once(r, 'ready');
    const prefix = `kvt-${randomBytes(4).toString('hex')}`;
    const store: BaselineStore = new RedisBaselineStore(r, prefix);
    const b = new IdentityBaseline();
    b.annotate(signal('billing'));
    b.annotate(signal('payments'));
    await store.save(b.takeChanges());
    const loaded = await new RedisBaselineStore(r, prefix).load();
    expect(loaded.map(([k]) => k).sort()).toEqual([
      'sa:ci/deployer|secret.read_cross_namespace|billing',
      'sa:ci/deployer|secret.read_cross_namespace|payments',
    ]);
    await store.save(new Map([['sa:ci/deployer|secret.read_cross_namespace|billing', null]]));
    expect(await new RedisBaselineStore(r, prefix).load()).toHaveLength(1);
  });

  it('loads at once on a new connection: a correlator that starts does not begin with an empty baseline', async () => {
    const r = connectRedis(url!);
    clients.push(r);
    if (r.status !== 'ready') await once(r, 'ready');
    const prefix = `kvt-${randomBytes(4).toString('hex')}`;
    const b = new IdentityBaseline();
    b.annotate(signal('billing'));
    await new RedisBaselineStore(r, prefix).save(b.takeChanges());
    // As a correlator does at start: a fresh connection, loaded right away.
    const { store, close } = await redisBaselineStore({ redisUrl: url!, topicPrefix: prefix }, createLogger('silent'));
    try {
      expect((await store.load()).map(([k]) => k)).toEqual(['sa:ci/deployer|secret.read_cross_namespace|billing']);
    } finally {
      await close();
    }
  });
});
