/**
 * Silences in distributed mode, against a real Kafka broker and Redis (scripts/with-services.sh;
 * skipped without KAFKA_BROKERS and REDIS_URL): a silence created through one process's API
 * reaches the correlator running in another process (through Redis), which then keeps the
 * silenced actor's attack from opening an incident while another actor's attack still opens one.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { attackEvents, SEED_SCENARIO, type AttackScenario } from '../connectors/k8s-audit/scenario.js';
import type { Incident } from '../correlator/incident.js';
import { cleanUp, metricValue, postAudit, startKubevigil } from './helpers/distributed.js';
import { waitFor } from './helpers/prometheus.js';

const KAFKA = process.env.KAFKA_BROKERS;
const REDIS = process.env.REDIS_URL;

afterAll(cleanUp);

const kubevigil = (roles: string, prefix: string) =>
  startKubevigil(roles, { KAFKA_BROKERS: KAFKA!, REDIS_URL: REDIS!, KUBEVIGIL_TOPIC_PREFIX: prefix, KUBEVIGIL_PARTITIONS: '2' });
const until = <T>(what: string, check: () => Promise<T | undefined>) => waitFor(what, check, 90_000, 200);

describe.skipIf(!KAFKA || !REDIS)('silences in distributed mode', () => {
  it("a silence created through one process's API silences signals in another process's correlator", async () => {
    const prefix = `kvs-${randomBytes(4).toString('hex')}`;
    const front = kubevigil('ingest,api', prefix);
    const correlator = kubevigil('correlator', prefix);
    const [url, curl] = await Promise.all([front.url, correlator.url]);
    await until('readiness', async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined));

    const res = await fetch(`${url}/api/v1/silences`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        matchers: [{ name: 'actor', value: 'sa:frontend/frontend', isRegex: false, isEqual: true }],
        endsAt: new Date(Date.now() + 3_600_000).toISOString(),
        createdBy: 'test',
        comment: 'red team exercise',
      }),
    });
    expect(res.status).toBe(200);
    const { silenceID } = (await res.json()) as { silenceID: string };
    // The correlator reads Redis every 2 s: wait until it knows the silence, then attack.
    await until('the correlator to know the silence', async () => ((await metricValue(curl, 'kubevigil_silences{state="active"}')) === 1 ? true : undefined));

    await postAudit(url, attackEvents(SEED_SCENARIO));
    const other: AttackScenario = {
      ...SEED_SCENARIO,
      namespace: 'storefront',
      serviceAccount: 'checkout-api',
      pod: 'checkout-api-5f7b9c-q8w2e',
      podIP: '10.1.7.9',
    };
    await postAudit(url, attackEvents(other, 2));

    // Every signal of the silenced actor reached the correlator and was silenced there.
    const signals = await until('the silenced signals in the API', async () => {
      const page = (await (await fetch(`${url}/api/v1/signals?actor=sa:frontend/frontend&limit=1000`)).json()) as { items: unknown[] };
      return page.items.length >= 19 ? page.items.length : undefined;
    });
    await until('the correlator to count them', async () =>
      (await metricValue(curl, `kubevigil_silenced_signals_total{silence="${silenceID}"}`)) === signals ? true : undefined,
    );
    // The other actor's attack still opens its incident; the silenced one opened none.
    const incidents = await until('the other incident', async () => {
      const page = (await (await fetch(`${url}/api/v1/incidents?status=open,acknowledged,resolved`)).json()) as { items: Incident[] };
      return page.items.some((i) => i.actor.key === 'sa:storefront/checkout-api') ? page.items : undefined;
    });
    expect(incidents.map((i) => i.actor.key)).toEqual(['sa:storefront/checkout-api']);
    await Promise.all([front.stop(), correlator.stop()]);
  }, 180_000);
});
