/** The bus's one admin client: connected on first use, and again after a connect that failed. */
import type { Admin, Kafka } from 'kafkajs';
import { RETRY } from './client.js';
import type { BusState } from './state.js';

/** Hands out the shared admin client (topics, groups, offsets, cluster); none once the bus is closed. */
export class AdminConnection {
  private admin?: Promise<Admin>;

  constructor(
    private readonly kafka: Kafka,
    private readonly state: BusState,
  ) {}

  /** The connected admin client; a failed connect is forgotten, so the next call tries again. */
  get(): Promise<Admin> {
    if (this.state.closed) return Promise.reject(new Error('the bus is closed'));
    const connecting = (this.admin ??= (async () => {
      const admin = this.kafka.admin({ retry: RETRY });
      try {
        await admin.connect();
      } catch (e) {
        await admin.disconnect().catch(() => undefined);
        throw e;
      }
      return admin;
    })());
    connecting.catch(() => {
      if (this.admin === connecting) this.admin = undefined;
    });
    return connecting;
  }

  /** Disconnects the client if one was made (at close). */
  async disconnect(): Promise<void> {
    const admin = this.admin;
    this.admin = undefined;
    await admin?.then((a) => a.disconnect());
  }
}
