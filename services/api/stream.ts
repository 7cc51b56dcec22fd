/**
 * `GET /api/v1/incidents/stream`: server-sent events, one `incident` event per incident version.
 * Bounded: at most `maxClients` listeners, and a listener that stops reading (more than
 * `maxBufferedBytes` unsent) is disconnected rather than buffered without limit.
 */
import type { Request, Response } from 'express';
import { sendProblem } from '../../connectors/shared/http.js';
import type { Incident } from '../../correlator/incident.js';

/** Options of {@link IncidentStream}. */
export interface StreamOptions {
  maxClients?: number;
  maxBufferedBytes?: number;
  heartbeatMs?: number;
}

/** Fans incident changes out to SSE listeners. */
export class IncidentStream {
  private readonly clients = new Set<Response>();
  private readonly timer: NodeJS.Timeout;
  /** Listeners dropped for not keeping up. */
  dropped = 0;

  constructor(private readonly opts: StreamOptions = {}) {
    this.timer = setInterval(() => this.write(': keep-alive\n\n'), opts.heartbeatMs ?? 15_000);
    this.timer.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  attach(req: Request, res: Response): void {
    if (this.clients.size >= (this.opts.maxClients ?? 100)) {
      res.setHeader('Retry-After', '10');
      sendProblem(res, 503, 'Service Unavailable', 'too many stream listeners; retry later');
      return;
    }
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    res.write('retry: 5000\n\n');
    this.clients.add(res);
    req.on('close', () => this.clients.delete(res));
  }

  /** Sends each incident (without its long timeline) to every listener. */
  publish(incidents: readonly Incident[]): void {
    if (this.clients.size === 0) return;
    for (const inc of incidents) {
      const { timeline: _t, ...rest } = inc;
      this.write(`event: incident\nid: ${inc.id}:${inc.version}\ndata: ${JSON.stringify(rest)}\n\n`);
    }
  }

  close(): void {
    clearInterval(this.timer);
    for (const c of this.clients) c.end();
    this.clients.clear();
  }

  private write(chunk: string): void {
    const max = this.opts.maxBufferedBytes ?? 1024 * 1024;
    for (const c of this.clients) {
      if (c.writableLength > max) {
        this.dropped++;
        this.clients.delete(c);
        c.destroy();
        continue;
      }
      c.write(chunk);
    }
  }
}
