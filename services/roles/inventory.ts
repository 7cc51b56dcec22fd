/**
 * The inventory role: reads the cluster (KUBEVIGIL_INVENTORY) into a {@link KubeInventory} that the
 * ingest role resolves identities with and the correlator reasons with. It never blocks start-up
 * or readiness: until it has synced, and whenever the API server cannot be reached, kubevigil
 * works from what the audit stream teaches, and /readyz says how far the inventory got.
 */
import { KubeConfig } from '@kubernetes/client-node';
import type { ClusterInventory } from '../../correlator/inventory.js';
import type { Config } from '../config.js';
import { KubeInventory } from '../inventory/inventory.js';
import type { Logger } from '../logging.js';
import type { Metrics } from '../metrics.js';
import type { Component } from './lifecycle.js';

/** Loads the credentials the setting names; throws with a message that says what to fix. */
export function kubeConfigFor(setting: Config['inventory']): KubeConfig | undefined {
  if (setting.mode === 'off') return undefined;
  const kc = new KubeConfig();
  try {
    if (setting.mode === 'in-cluster') kc.loadFromCluster();
    else if (setting.path) kc.loadFromFile(setting.path);
    else kc.loadFromDefault();
  } catch (e) {
    throw new Error(
      `KUBEVIGIL_INVENTORY=${setting.mode}: cannot load the cluster credentials (${(e as Error).message}); set KUBEVIGIL_INVENTORY=off to run without the inventory`,
      { cause: e },
    );
  }
  if (!kc.getCurrentCluster())
    throw new Error(`KUBEVIGIL_INVENTORY=${setting.mode}: the kubeconfig has no current cluster; set KUBEVIGIL_INVENTORY=off to run without the inventory`);
  return kc;
}

/** Watches the cluster while the process runs. */
export class InventoryRole implements Component {
  readonly name = 'inventory';
  readonly inventory?: KubeInventory;
  private readonly lastUpdate = new Map<string, number>();

  constructor(config: Config, logger: Logger, metrics: Metrics, kubeConfig?: KubeConfig) {
    const kc = kubeConfig ?? kubeConfigFor(config.inventory);
    if (!kc) return;
    const inv = new KubeInventory(kc, {
      logger: logger.child({ component: 'inventory' }),
      onEvent: (resource, kind, at) => {
        this.lastUpdate.set(resource, at);
        if (kind === 'restart') metrics.inventoryWatchRestarts.inc({ resource });
        if (kind === 'relist-gone') metrics.inventoryRelists.inc({ resource });
      },
    });
    this.inventory = inv;
    logger.info({ server: kc.getCurrentCluster()?.server, mode: config.inventory.mode }, 'watching the cluster for its inventory');
    metrics.onScrape(() => {
      for (const [resource, n] of Object.entries(inv.counts())) metrics.inventoryObjects.set({ resource }, n);
      const now = Date.now();
      for (const [resource, at] of this.lastUpdate) metrics.inventoryLag.set({ resource }, (now - at) / 1000);
      metrics.inventorySynced.set(inv.status().synced ? 1 : 0);
    });
  }

  /** The inventory as the core sees it, when one is configured. */
  get cluster(): ClusterInventory | undefined {
    return this.inventory;
  }

  async stop(): Promise<void> {
    await this.inventory?.stop();
  }
}
