/**
 * `GET /api/v1/incidents/stream`: server-sent events, one `incident` event per incident version,
 * with the id `<incident>:<version>`. A client that reconnects with `Last-Event-ID` is sent the
 * events after that one from a bounded replay buffer; when that event is no longer there (too old,
 * or sent by another replica), it gets one `reset` event and should list incidents again, as a
 * Kubernetes watch does after 410 Gone. Bounded: at most `maxClients` listeners, a replay buffer
 * of `replayEvents` events, and a listener that stops reading (more than `maxBufferedBytes` unsent)
 * is disconnected rather than buffered without limit.
 */
import type { Request, Response } from 'express';
import { sendProblem } from '../../platform/http.js';
import type { Incident } from '../../correlator/incident.js';
import { apiIncident } from './schemas.js';

/** Options of {@link IncidentStream}. */
export interface StreamOptions {
  maxClients?: number;
  maxBufferedBytes?: number;
  heartbeatMs?: number;
  /** Events kept for clients that reconnect with Last-Event-ID (default 1000)… */
  replayEvents?: number;
  /** …and at most this many bytes of them (default 8 MiB). */
  replayBytes?: number;
}

interface SentEvent {
  id: string;
  chunk: string;
}

/** Fans incident changes out to SSE listeners. */
export class IncidentStream {
  private readonly clients = new Set<Response>();
  private readonly replay: SentEvent[] = [];
  private replayedBytes = 0;
  private readonly timer: NodeJS.Timeout;
  /** Once closed (the process is stopping), a new listener would hold its connection open: refused. */
  private closed = false;
  /** Listeners dropped for not keeping up. */
  dropped = 0;

  constructor(private readonly opts: StreamOptions = {}) {
    this.timer = setInterval(() => this.write(': keep-alive\n\n'), opts.heartbeatMs ?? 15_000);
    this.timer.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  /** What the replay buffer holds: how many events, their bytes, and the oldest id a client can resume after. */
  get replayBuffer(): { events: number; bytes: number; oldestId?: string } {
    const oldest = this.replay[0];
    return { events: this.replay.length, bytes: this.replayedBytes, ...(oldest ? { oldestId: oldest.id } : {}) };
  }

  attach(req: Request, res: Response): void {
    if (this.closed) {
      res.setHeader('Retry-After', '5');
      res.setHeader('Connection', 'close');
      sendProblem(res, 503, 'Service Unavailable', 'kubevigil is shutting down; reconnect (to another replica) shortly');
      return;
    }
    if (this.clients.size >= (this.opts.maxClients ?? 100)) {
      res.setHeader('Retry-After', '10');
      sendProblem(res, 503, 'Service Unavailable', 'too many stream listeners; retry later');
      return;
    }
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Accel-Buffering', 'no');
    // The response only ends when kubevigil stops: then the connection must go too, not idle on.
    res.setHeader('Connection', 'close');
    res.flushHeaders();
    res.write('retry: 5000\n\n');
    const last = req.get('last-event-id');
    if (last !== undefined) {
      const at = this.replay.findIndex((e) => e.id === last);
      if (at < 0) res.write(`event: reset\ndata: ${JSON.stringify({ reason: 'the last event id is no longer known here; list incidents again' })}\n\n`);
      else for (const e of this.replay.slice(at + 1)) res.write(e.chunk);
    }
    this.clients.add(res);
    req.on('close', () => this.clients.delete(res));
  }

  /** Sends each incident (without its long timeline) to every listener, and keeps it for replay. */
  publish(incidents: readonly Incident[]): void {
    const keep = this.opts.replayEvents ?? 1000;
    for (const inc of incidents) {
      const { timeline: _t, ...rest } = apiIncident(inc);
      const id = `${inc.id}:${inc.version}`;
      const chunk = `event: incident\nid: ${id}\ndata: ${JSON.stringify(rest)}\n\n`;
      if (keep > 0) {
        this.replay.push({ id, chunk });
        this.replayedBytes += chunk.length;
        const maxBytes = this.opts.replayBytes ?? 8 * 1024 * 1024;
        let drop = 0;
        while (this.replay.length - drop > 1 && (this.replay.length - drop > keep || this.replayedBytes > maxBytes))
          this.replayedBytes -= this.replay[drop++]!.chunk.length;
        if (drop) this.replay.splice(0, drop);
      }
      if (this.clients.size > 0) this.write(chunk);
    }
  }

  /** Ends every listener and refuses new ones. Idempotent. */
  close(): void {
    this.closed = true;
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
