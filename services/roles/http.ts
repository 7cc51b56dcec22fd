/**
 * The HTTP(S) server: started last, once everything it serves runs; stopped first, so that nothing
 * takes requests while the stages behind it stop.
 *
 * Its stop is a drain bounded by the shutdown grace (KUBEVIGIL_SHUTDOWN_GRACE): the listener closes
 * (no new connections), idle keep-alive connections close at once, event streams end, and the
 * requests in flight finish. Every response from then on says `Connection: close`, and its
 * connection closes once it is sent; a request that still arrives on a kept-alive connection is
 * served the same way (the event stream answers 503). When the grace expires, the connections still
 * open are cut and what they were doing is logged; the rest of the process then stops as usual.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { IncidentStream } from '../api/stream.js';
import type { Config } from '../config.js';
import type { Logger } from '../logging.js';
import type { Component } from './lifecycle.js';

/**
 * A slow client must not hold a receiver's in-flight slot for long: a whole request (headers and
 * body) gets 15 s, headers 10 s, and the deadlines are checked every second.
 */
const SERVER_TIMEOUTS = { requestTimeout: 15_000, headersTimeout: 10_000, connectionsCheckingInterval: 1_000 };

/** How many cut requests a grace overrun names in its log line (the count is always there). */
const CUT_LOGGED = 20;

/** Listens on the configured address; {@link url} is the bound one (useful with port 0). */
export class HttpServer implements Component {
  readonly name = 'http server';
  private server?: Server;
  private bound?: string;
  private draining = false;
  /** Requests whose response has not finished, as "METHOD /path": what a grace overrun cuts. */
  private readonly inFlight = new Map<ServerResponse, string>();
  /** Every open TCP connection, TLS handshakes included (the server's own list holds only HTTP ones). */
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly config: Pick<Config, 'tls' | 'port' | 'host' | 'shutdownGraceMs'>,
    private readonly app: RequestListener,
    /** Its listeners never finish their request: they are ended at the drain, or the server never closes. */
    private readonly stream: IncidentStream,
    private readonly logger: Logger,
  ) {}

  get url(): string {
    if (!this.bound) throw new Error('the HTTP server is not listening');
    return this.bound;
  }

  private readonly handle: RequestListener = (req, res) => {
    this.inFlight.set(res, `${req.method} ${(req.url ?? '').split('?')[0]!.slice(0, 100)}`);
    res.once('close', () => {
      this.inFlight.delete(res);
      // A response that began before the drain went out with keep-alive: its connection is idle now.
      if (this.draining) this.server?.closeIdleConnections();
    });
    if (this.draining) res.setHeader('Connection', 'close');
    this.app(req, res);
  };

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
          this.handle,
        )
      : createHttpServer(SERVER_TIMEOUTS, this.handle);
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
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

  /** Drains: see the module comment. Resolves once every connection is closed, within the grace. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.draining = true;
    const graceMs = this.config.shutdownGraceMs;
    this.logger.info({ requests: this.inFlight.size, connections: this.sockets.size, graceMs }, 'draining HTTP connections');
    // Responses not started yet tell their clients not to reuse the connection.
    for (const res of this.inFlight.keys()) if (!res.headersSent) res.setHeader('Connection', 'close');
    // Stops listening and closes the idle keep-alive connections; the callback waits for the others.
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // After close(), so that their connections are not idle yet: each closes once its end is sent.
    this.stream.close();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'expired'>((resolve) => (timer = setTimeout(() => resolve('expired'), graceMs)));
    const outcome = await Promise.race([closed, expired]);
    clearTimeout(timer);
    if (outcome !== 'expired') {
      this.logger.info('HTTP connections drained');
      return;
    }
    const cut = [...this.inFlight.values()];
    this.logger.warn(
      { graceMs, requests: cut.length, cut: cut.slice(0, CUT_LOGGED), connections: this.sockets.size },
      'shutdown grace expired: cutting the connections still open',
    );
    server.closeAllConnections();
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}
