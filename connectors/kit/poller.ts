/**
 * What every poller (Loki LogQL, Tempo TraceQL, the next query API) shares, so that each supplies
 * only its page fetching: the one-at-a-time cron schedule of platform/schedule.ts, cursors kept as JSON in the state port (one that does not
 * parse is absent, never an error), and reading an upstream answer with a bound on its size.
 */

/** Where pollers keep their cursors (the store's state table, so a restart resumes). */
export interface CursorState {
  get(key: string): Promise<string | undefined> | string | undefined;
  set(key: string, value: string): Promise<void> | void;
}

/** The state port failed to read or write a cursor. */
export class CursorStateError extends Error {}

/** Cursors of one poller, as JSON under keys of its own; `parse` accepts a stored value or says it is not one. */
export class CursorStore<C> {
  constructor(
    private readonly state: CursorState,
    private readonly key: (name: string) => string,
    private readonly parse: (value: unknown) => C | undefined,
  ) {}

  /** The cursor of `name`, or undefined when none is stored or it does not parse (the poller starts from its lookback). */
  async load(name: string): Promise<C | undefined> {
    let text: string | undefined;
    try {
      text = await this.state.get(this.key(name));
    } catch (e) {
      throw new CursorStateError(`cannot read the cursor of ${name}: ${(e as Error).message}`);
    }
    if (!text) return undefined;
    try {
      return this.parse(JSON.parse(text) as unknown);
    } catch {
      return undefined;
    }
  }

  async save(name: string, cursor: C): Promise<void> {
    try {
      await this.state.set(this.key(name), JSON.stringify(cursor));
    } catch (e) {
      throw new CursorStateError(`cannot save the cursor of ${name}: ${(e as Error).message}`);
    }
  }
}

/** An upstream answer larger than the poller reads. */
export class ResponseTooLargeError extends Error {}

/** Reads a response body of at most `max` bytes, cancelling the transfer past it (declared or streamed). */
export async function readBounded(res: Response, max: number): Promise<string> {
  const declared = Number(res.headers.get('content-length'));
  if (declared > max) {
    await res.body?.cancel();
    throw new ResponseTooLargeError(`the answer is ${declared} bytes, more than ${max}`);
  }
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      throw new ResponseTooLargeError(`the answer is more than ${max} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
