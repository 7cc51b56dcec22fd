/**
 * The HTTP(S) server: started last, once everything it serves runs; stopped first, so that nothing
 * takes requests while the stages behind it stop.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { IncidentStream } from '../api/stream.js';
import type { Config } from '../config.js';
import type { Component } from './lifecycle.js';

/**
 * A slow client must not hold a receiver's in-flight slot for long: a whole request (headers and
 * body) gets 15 s, headers 10 s, and the deadlines are checked every second.
 */
const SERVER_TIMEOUTS = { requestTimeout: 15_000, headersTimeout: 10_000, connectionsCheckingInterval: 1_000 };

/** Listens on the configured address; {@link url} is the bound one (useful with port 0). */
export class HttpServer implements Component {
  readonly name = 'http server';
  private server?: Server;
  private bound?: string;

  constructor(
    private readonly config: Pick<Config, 'tls' | 'port' | 'host'>,
    private readonly app: RequestListener,
    /** Its listeners never finish their request: they are ended first, or the server never closes. */
    private readonly stream: IncidentStream,
  ) {}

  get url(): string {
    if (!this.bound) throw new Error('the HTTP server is not listening');
    return this.bound;
  }

  async start(): Promise<void> {
    const { config } = this;
    const server = config.tls
      ? createHttpsServer(
          {
            cert: readFileSync(config.tls.certFile),
            key: readFileSync(config.tls.keyFile),
            // Ask for a client certificate but let the TLS handshake succeed without one: the ingest
            // routes refuse unverified clients with a clear 401, while the API keeps bearer tokens.
            ...(config.tls.clientCaFile ? { ca: readFileSync(config.tls.clientCaFile), requestCert: true, rejectUnauthorized: false } : {}),
            minVersion: 'TLSv1.2',
            ...SERVER_TIMEOUTS,
          },
          this.app,
        )
      : createHttpServer(SERVER_TIMEOUTS, this.app);
    // A failed listen (the port is taken, the address is not ours) leaves nothing to close.
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => resolve());
    });
    server.keepAliveTimeout = 65_000;
    this.server = server;
    const addr = server.address() as AddressInfo;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    this.bound = `${config.tls ? 'https' : 'http'}://${host}:${addr.port}`;
  }

  /** Ends the event-stream listeners, then stops taking requests and waits for those in flight. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.stream.close();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
  }
}
