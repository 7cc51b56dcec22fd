/**
 * `kubevigil demo`: the seed attack path, mixed into benign background traffic, sent through the
 * real ingest path (HTTP audit webhook → detection → bus → correlation → store → API) of a
 * kubevigil started for the purpose, then the resulting incidents as the API returns them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attackEvents, interleave, SEED_SCENARIO } from '../../connectors/k8s-audit/scenario.js';
import { syntheticAuditEvents } from '../../connectors/k8s-audit/synth.js';
import type { Incident } from '../../correlator/incident.js';
import { loadConfig } from '../config.js';
import { createLogger } from '../logging.js';
import { serve } from '../main.js';
import { renderIncident } from './render.js';

/** Options of {@link demo}. */
export interface DemoOptions {
  background: number;
  format: 'text' | 'json';
  keep: boolean;
  out: (s: string) => void;
}

/** Runs the demo; resolves with the incidents found (medium and above). */
export async function demo(o: DemoOptions): Promise<Incident[]> {
  const dir = mkdtempSync(join(tmpdir(), 'kubevigil-demo-'));
  const config = loadConfig({ ...process.env, KUBEVIGIL_PORT: o.keep ? (process.env.KUBEVIGIL_PORT ?? '8080') : '0', KUBEVIGIL_DATA_DIR: dir, KUBEVIGIL_HOST: '127.0.0.1' });
  const kv = await serve(config, createLogger(o.keep ? config.logLevel : 'error', 2), { processMetrics: false, sweepSchedule: false });
  try {
    const attack = attackEvents(SEED_SCENARIO);
    const background = syntheticAuditEvents(o.background, { start: SEED_SCENARIO.start - 60_000, stepMs: Math.max(1, Math.floor(240_000 / Math.max(1, o.background))), suspiciousShare: 0 });
    const events = interleave(attack, background);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (config.ingestToken) headers.authorization = `Bearer ${config.ingestToken}`;
    for (let i = 0; i < events.length; i += 400) {
      const body = JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items: events.slice(i, i + 400) });
      const res = await fetch(`${kv.url}/ingest/k8s-audit`, { method: 'POST', headers, body });
      if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
    }
    await kv.drained();
    const api = (path: string) => fetch(`${kv.url}${path}`, { headers: config.apiToken ? { authorization: `Bearer ${config.apiToken}` } : {} }).then((r) => r.json());
    const page = (await api('/api/v1/incidents?severity=medium&status=open,acknowledged')) as { items: { id: string }[] };
    const incidents = (await Promise.all(page.items.map((i) => api(`/api/v1/incidents/${i.id}`)))) as Incident[];
    if (o.format === 'json') o.out(JSON.stringify(incidents, null, 2));
    else {
      o.out(`Sent ${events.length} audit events (${attack.length} from the attack, ${background.length} benign) to ${kv.url}/ingest/k8s-audit.`);
      o.out(`${incidents.length} incident(s) of severity medium or above:\n`);
      for (const inc of incidents) o.out(`${renderIncident(inc)}\n`);
      if (o.keep) o.out(`kubevigil keeps running at ${kv.url} (data in ${dir}); Ctrl-C to stop.`);
    }
    return incidents;
  } finally {
    if (!o.keep) {
      await kv.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
