/**
 * `kubevigil demo`: the seed attack path, mixed into benign background traffic, sent through the
 * real ingest path (HTTP audit webhook → detection → bus → correlation → store → API) of a
 * kubevigil started for the purpose, then the resulting incidents as the API returns them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attackEvents, SEED_SCENARIO } from '../../connectors/k8s-audit/scenario.js';
import { fourSourceAttack } from './scenario.js';
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
  const config = loadConfig({
    ...process.env,
    KUBEVIGIL_PORT: o.keep ? (process.env.KUBEVIGIL_PORT ?? '8080') : '0',
    KUBEVIGIL_DATA_DIR: dir,
    KUBEVIGIL_HOST: '127.0.0.1',
  });
  const kv = await serve(config, createLogger(o.keep ? config.logLevel : 'error', 2), { processMetrics: false, sweepSchedule: false });
  try {
    const background = syntheticAuditEvents(o.background, {
      start: SEED_SCENARIO.start - 60_000,
      stepMs: Math.max(1, Math.floor(240_000 / Math.max(1, o.background))),
      suspiciousShare: 0,
    });
    // The attack as the audit log, the database's mesh sidecar (Loki), Alertmanager and traces (OTLP) report it.
    const deliveries = fourSourceAttack(SEED_SCENARIO, background);
    for (const d of deliveries) {
      const headers: Record<string, string> = { 'content-type': d.contentType };
      if (config.ingestToken) headers.authorization = `Bearer ${config.ingestToken}`;
      const res = await fetch(`${kv.url}${d.path}`, { method: 'POST', headers, body: d.body });
      if (res.status >= 300) throw new Error(`${d.path} answered ${res.status}: ${await res.text()}`);
    }
    await kv.drained();
    const api = (path: string) =>
      fetch(`${kv.url}${path}`, { headers: config.apiToken ? { authorization: `Bearer ${config.apiToken}` } : {} }).then((r) => r.json());
    const page = (await api('/api/v1/incidents?severity=medium&status=open,acknowledged')) as { items: { id: string }[] };
    const incidents = (await Promise.all(page.items.map((i) => api(`/api/v1/incidents/${i.id}`)))) as Incident[];
    if (o.format === 'json') o.out(JSON.stringify(incidents, null, 2));
    else {
      o.out(
        `Sent the attack (${attackEvents(SEED_SCENARIO).length} audit events among ${background.length} benign ones, 3 mesh log lines, 1 alert, 3 spans) to ${kv.url}`,
      );
      o.out('through the audit webhook, Loki push, Alertmanager webhook and OTLP endpoints.');
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
