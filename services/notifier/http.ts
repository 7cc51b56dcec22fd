/** One HTTP POST of a notification, with its failure mapped to a {@link DeliveryError}. */
import { httpError, networkError, rateLimited, retryAfterSeconds, type DeliveryError } from './errors.js';

/** A successful answer. */
export interface PostResult {
  status: number;
  body: string;
}

/**
 * POSTs `body`; resolves on 2xx. A 429 rejects with a rate-limit error carrying `Retry-After`,
 * another status with `classify(status, body)` (an HTTP error by default), no answer with a network error.
 */
export async function post(
  target: string,
  url: string,
  body: string,
  headers: Record<string, string>,
  opts: { timeoutMs: number; now: number; classify?: (status: number, body: string) => DeliveryError | undefined },
): Promise<PostResult> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
      redirect: 'error',
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
  } catch (err) {
    throw networkError(target, err);
  }
  const text = await res.text().catch(() => '');
  if (res.status >= 200 && res.status < 300) return { status: res.status, body: text };
  if (res.status === 429) throw rateLimited(target, retryAfterSeconds(res.headers.get('retry-after'), opts.now));
  throw opts.classify?.(res.status, text) ?? httpError(target, res.status, text);
}
