/**
 * Redis losing the correlator checkpoints mid-attack (a restart without persistence, FLUSHALL, a
 * failover to an empty replica), against a real Kafka broker (skipped without KAFKA_BROKERS and
 * REDIS_URL, which scripts/with-services.sh provides; the test runs a Redis of its own). The
 * correlator that starts next must notice the loss against the committed offsets and rebuild the
 * partition from the topics: the rest of the attack joins the same incident, and the correlation
 * that needs signals from both sides of the loss fires.
 */
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { attackEvents, SEED_SCENARIO } from '../connectors/k8s-audit/scenario.js';
import type { Incident } from '../correlator/incident.js';
import '../services/bus/kafkajs-timers.js';
import { allIncidents, cleanUp, metricValue, postAudit, startKubevigil, startRedis } from './helpers/distributed.js';
import { waitFor } from './helpers/prometheus.js';

const KAFKA = process.env.KAFKA_BROKERS;
afterAll(cleanUp);

describe.skipIf(!KAFKA || !process.env.REDIS_URL)('a Redis that lost the correlator checkpoints', () => {
  it('is rebuilt from the topics: the attack stays one incident and list-then-use fires across the loss', async () => {
    const redis = await startRedis();
    const prefix = `kvt-${randomBytes(4).toString('hex')}`;
    const env = { KAFKA_BROKERS: KAFKA!, REDIS_URL: redis.url, KUBEVIGIL_TOPIC_PREFIX: prefix, KUBEVIGIL_PARTITIONS: '4' };
    const front = startKubevigil('ingest,api', env);
    let correlator = startKubevigil('correlator', env);
    const [url] = await Promise.all([front.url, correlator.url]);
    await waitFor('readiness', async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined), 90_000, 250);

    // The first part of the attack: a token enumerates its permissions, then lists every secret.
    const events = attackEvents(SEED_SCENARIO);
    const published = await postAudit(url, events.slice(0, 2));
    const opened = await waitFor(
      'the incident of the first part',
      async () => {
        const incs = await allIncidents(url);
        return incs.length === 1 && incs[0]!.timeline.some((e) => e.kind === 'secret.list_cluster_wide') ? incs[0] : undefined;
      },
      90_000,
      250,
    );
    expect(opened.correlations.filter((c) => c.ruleId === 'zt-secret-list-then-use')).toEqual([]);
    // The correlator committed its offsets after the checkpoint, recording the checkpoint's generation.
    const admin = new Kafka({ clientId: 'kv-test-admin', brokers: KAFKA!.split(','), logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      const commit = await waitFor(
        'the correlators to commit the signals partition',
        async () => {
          const [t] = await admin.fetchOffsets({ groupId: `${prefix}.correlator`, topics: [`${prefix}.signals`] });
          const committed = t!.partitions.filter((p) => Number(p.offset) > 0);
          // One actor: all of its signals are on one partition, from offset 0.
          return committed.length === 1 && committed[0]!.offset === String(published) ? committed[0] : undefined;
        },
        60_000,
        250,
      );
      expect(commit.metadata).toMatch(/^kubevigil-checkpoint:[1-9]\d*$/);
    } finally {
      await admin.disconnect();
    }

    // Redis loses everything while the correlator restarts.
    await correlator.stop();
    await redis.client.flushall();
    expect(await redis.client.dbsize()).toBe(0);
    correlator = startKubevigil('correlator', env);
    const correlatorUrl = await correlator.url;

    // The rest: the secrets read in another namespace, then escalation attempts.
    const rest = await postAudit(url, events.slice(2));
    const final = await waitFor(
      'the last step of the attack in an incident',
      async () => {
        const incs = (await allIncidents(url)).filter((i) => i.resolution !== 'merged');
        return incs.some((i) => i.timeline.some((e) => e.kind === 'pod.privileged')) ? incs : undefined;
      },
      120_000,
      250,
    );
    // Not a second incident for the same attacker.
    expect(final.map((i) => i.id)).toEqual([opened.id]);
    const inc: Incident = final[0]!;
    const signalOf = (kind: string) => inc.timeline.filter((e) => e.kind === kind).map((e) => e.signalId);
    const listed = signalOf('secret.list_cluster_wide');
    const read = signalOf('secret.read_cross_namespace');
    expect(listed).toHaveLength(1);
    expect(read.length).toBeGreaterThan(0);
    // The listing was correlated before the loss, the reads after it: the rebuilt window held the listing.
    const listThenUse = inc.correlations.filter((c) => c.ruleId === 'zt-secret-list-then-use');
    expect(listThenUse.length).toBeGreaterThan(0);
    expect(listThenUse[0]!.signalIds).toEqual(expect.arrayContaining([listed[0]!, read[0]!]));
    // Every signal once: nothing of the first part lost or counted again.
    expect(inc.signalCount).toBe(published + rest);
    expect(inc.version).toBeGreaterThan(opened.version);
    expect(await metricValue(correlatorUrl, 'kubevigil_correlator_state_rebuilds_total{reason="checkpoint_lost"}')).toBe(1);

    await Promise.all([front.stop(), correlator.stop()]);
    redis.client.disconnect();
  }, 300_000);
});
