/**
 * A server-sent-events parser (the WHATWG event-stream format) fed with text chunks as they arrive.
 * Pure: no fetch, no timers, so it is unit-tested in node (sse.test.ts).
 */

export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/** Feeds chunks, yields complete events; remembers the last id and the server's retry hint. */
export class SseParser {
  private buf = '';
  private data: string[] = [];
  private event = '';
  private id: string | undefined;
  /** The id of the last dispatched event (what Last-Event-ID sends on reconnect). */
  lastEventId: string | undefined;
  /** The last `retry:` the server sent, in ms. */
  retryMs: number | undefined;

  /** Appends a chunk; returns the events it completed. Bounded: a line longer than `maxLine` is an error. */
  push(chunk: string, maxLine = 16 * 1024 * 1024): SseEvent[] {
    this.buf += chunk;
    const out: SseEvent[] = [];
    let start = 0;
    for (;;) {
      const nl = this.buf.slice(start).search(/\r\n|\r|\n/);
      if (nl < 0) break;
      const end = start + nl;
      // A CR at the very end may be the first half of a CRLF split across chunks: wait for the next one.
      if (end === this.buf.length - 1 && this.buf[end] === '\r') break;
      const line = this.buf.slice(start, end);
      start = end + (this.buf.startsWith('\r\n', end) ? 2 : 1);
      const ev = this.line(line);
      if (ev) out.push(ev);
    }
    this.buf = this.buf.slice(start);
    if (this.buf.length > maxLine) {
      this.buf = '';
      throw new Error(`event-stream line longer than ${maxLine} characters`);
    }
    return out;
  }

  private line(line: string): SseEvent | undefined {
    if (line === '') {
      if (this.id !== undefined) this.lastEventId = this.id;
      if (this.data.length === 0) {
        this.event = '';
        return undefined;
      }
      const ev: SseEvent = { event: this.event || 'message', data: this.data.join('\n'), ...(this.lastEventId !== undefined ? { id: this.lastEventId } : {}) };
      this.data = [];
      this.event = '';
      return ev;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value);
    return undefined;
  }
}
