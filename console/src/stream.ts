/**
 * The live incident stream: GET /api/v1/incidents/stream read with fetch (EventSource cannot send
 * the bearer token), reconnected after a drop with `Last-Event-ID` so no change is missed, and a
 * `reset` passed on when the server no longer has the events after that id (list again).
 */
import { ApiError, authHeaders, getToken, reportAuthProblem } from './api';
import { SseParser } from './sse';
import type { IncidentSummary } from './types';

export type StreamState = 'connecting' | 'live' | 'reconnecting' | 'unauthorized';

export interface StreamHandlers {
  incident: (inc: IncidentSummary) => void;
  /** The server lost our place: list incidents again. */
  reset: () => void;
  state?: (s: StreamState, detail?: string) => void;
}

/** Opens the stream; returns a function that closes it. */
export function openIncidentStream(h: StreamHandlers, path = '/api/v1/incidents/stream'): () => void {
  let closed = false;
  let ctrl: AbortController | undefined;
  let lastEventId: string | undefined;
  let retryMs = 2000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let attempts = 0;

  const connect = async (): Promise<void> => {
    if (closed) return;
    ctrl = new AbortController();
    h.state?.(attempts++ === 0 ? 'connecting' : 'reconnecting');
    const parser = new SseParser();
    parser.lastEventId = lastEventId;
    const sentWith = getToken();
    try {
      const res = await fetch(path, {
        headers: { Accept: 'text/event-stream', ...authHeaders(), ...(lastEventId !== undefined ? { 'Last-Event-ID': lastEventId } : {}) },
        signal: ctrl.signal,
        cache: 'no-store',
        credentials: 'omit',
      });
      if (res.status === 401 || res.status === 403) {
        // A token revoked or rotated while the page was open: the prompt asks for the new one (the
        // page is loaded again with it, and the stream reopened); a silent stop would leave a list
        // that looks live and is not.
        h.state?.('unauthorized', `HTTP ${res.status}`);
        let message = `the event stream answered ${res.status}`;
        try {
          message = ((await res.json()) as { detail?: string }).detail ?? message;
        } catch {
          /* not problem+json */
        }
        if (closed || ctrl.signal.aborted) return;
        // Refused a token the user has since replaced (a write token given after a 403 keeps the
        // page and this stream): ask again with the new one instead of prompting for it.
        if (getToken() !== sentWith) return void connect();
        reportAuthProblem(401, message);
        return;
      }
      if (!res.ok || !res.body) throw new ApiError(res.status, `event stream answered ${res.status}`);
      h.state?.('live');
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const ev of parser.push(value)) {
          if (ev.event === 'incident') {
            try {
              h.incident(JSON.parse(ev.data) as IncidentSummary);
            } catch {
              /* a malformed event is skipped, the stream goes on */
            }
          } else if (ev.event === 'reset') {
            // The server no longer knows our place: forget it, or every reconnect would reset again.
            parser.lastEventId = undefined;
            h.reset();
          }
        }
        lastEventId = parser.lastEventId;
        if (parser.retryMs !== undefined) retryMs = parser.retryMs;
      }
    } catch {
      if (closed) return;
    }
    lastEventId = parser.lastEventId;
    if (closed) return;
    h.state?.('reconnecting');
    timer = setTimeout(() => void connect(), Math.min(retryMs, 30_000));
  };
  void connect();
  return () => {
    closed = true;
    if (timer) clearTimeout(timer);
    ctrl?.abort();
  };
}
