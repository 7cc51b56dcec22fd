/**
 * `POST /ingest/falco`: the receiver for Falco's `http_output` (with `json_output: true`) and
 * Falcosidekick's webhook output. Both post one JSON alert per request; an array or JSON lines of
 * alerts (a relay batching them) are read too.
 *
 * Neither sender retries: Falco's http_output and Falcosidekick log a failed post and drop the
 * alert. So the answer says plainly what was wrong: a body with no usable alert is a 400 naming
 * the field and the fix; a batch with some bad alerts is a 200 that reports them and keeps the
 * rest. Alerts are deduplicated on Falco's `uuid` (a relay that does retry re-sends the same one).
 * When the bus refuses the alerts the answer is 503 + Retry-After, and nothing is remembered as seen.
 */
import type { Request, Response, Router } from 'express';
import type { IngestSink } from '../../correlator/ports.js';
import { decodeUtf8, mediaType, sendProblem } from '../../platform/http.js';
import { Dedup } from '../kit/dedup.js';
import { handOff, refused, webhookRouter } from '../kit/webhook.js';
import { falcoKey, normalizeFalcoEvent } from './normalize.js';
import { decodeFalcoBody, FalcoPayloadError, type DecodedFalcoBody } from './parse.js';

/** Counters the receiver reports through (same shape as the audit and Alertmanager receivers'). */
export interface FalcoReceiverStats {
  events(outcome: 'accepted' | 'duplicate' | 'invalid', n: number): void;
  request(status: number): void;
}

/** Options of {@link falcoReceiver}. */
export interface FalcoReceiverOptions {
  sink: IngestSink;
  /** Largest accepted body after decompression, in bytes (default 12 MiB). */
  maxBodyBytes?: number;
  /** How many alert keys to remember for deduplication (default 100,000). */
  dedupEntries?: number;
  stats?: FalcoReceiverStats;
  now?: () => number;
  /** How many invalid alerts to describe in the response (all are counted). */
  maxReportedErrors?: number;
}

/** The path Falco's `http_output.url` and Falcosidekick's `webhook.address` should point at. */
export const FALCO_PATH = '/ingest/falco';

// Falco sends application/json, Falcosidekick application/json; charset=utf-8; relays may send lines.
const JSON_TYPES = new Set(['application/json', 'text/json', 'application/x-ndjson', 'application/jsonl', '']);

/** The express router for Falco alerts; mount it at the app root. */
export function falcoReceiver(opts: FalcoReceiverOptions): Router {
  const maxBody = opts.maxBodyBytes ?? 12 * 1024 * 1024;
  const dedup = new Dedup(opts.dedupEntries ?? 100_000);
  const now = opts.now ?? Date.now;
  const maxErrors = opts.maxReportedErrors ?? 20;
  const noop = () => {};
  const stats: FalcoReceiverStats = opts.stats ?? { events: noop, request: noop };

  const problem = (res: Response, status: number, title: string, detail: string, extra: Record<string, unknown> = {}): void => {
    stats.request(status);
    sendProblem(res, status, title, detail, extra);
  };

  return webhookRouter({
    path: FALCO_PATH,
    maxBodyBytes: maxBody,
    tooLargeAdvice: 'Falco posts one alert per request: check what relays them, or raise KUBEVIGIL_MAX_BODY_BYTES',
    encodings: 'gzip, deflate, br, zstd or none',
    fail: (_req: Request, res: Response, status: number, title: string, detail: string) => problem(res, status, title, detail),
    admit(req) {
      const type = mediaType(req);
      if (JSON_TYPES.has(type)) return undefined;
      if (type === 'text/plain')
        return 'Content-Type "text/plain" is Falco’s text output; set json_output: true (and json_include_output_property: true) in falco.yaml so http_output posts application/json';
      return `Content-Type ${JSON.stringify(type)} is not accepted; Falco’s http_output and Falcosidekick’s webhook send application/json`;
    },
    async handle(_req, res, body) {
      const text = decodeUtf8(body);
      if (text === undefined) return problem(res, 400, 'Bad Request', 'the body is not valid UTF-8; a Falco alert is JSON text', { field: '(body)' });
      let decoded: DecodedFalcoBody;
      try {
        decoded = decodeFalcoBody(text);
      } catch (e) {
        if (!(e instanceof FalcoPayloadError)) throw e;
        return problem(res, 400, 'Bad Request', e.message, { field: e.field });
      }
      // Nothing usable: the sender must fix what it sends, and a 200 would hide it.
      if (decoded.events.length === 0) {
        const first = decoded.invalid[0];
        stats.events('invalid', decoded.invalid.length);
        const detail = first
          ? decoded.invalid.length === 1
            ? first.reason
            : `none of the ${decoded.invalid.length} alerts is usable; the first (index ${first.index}): ${first.reason}`
          : 'the body holds no alert; Falco posts one JSON alert object per request';
        return problem(res, 400, 'Bad Request', detail, { field: first?.field ?? '(body)', errors: decoded.invalid.slice(0, maxErrors) });
      }

      const observed = now();
      const { fresh, keys, duplicates } = dedup.split(decoded.events, falcoKey);
      let signals = 0;
      if (fresh.length) {
        const handed = await handOff(
          opts.sink,
          fresh.map((ev) => normalizeFalcoEvent(ev, observed)),
        );
        if (refused(handed)) {
          res.setHeader('Retry-After', String(handed.retryAfterSeconds));
          return problem(
            res,
            503,
            'Service Unavailable',
            `the alerts could not be handed to the bus (${handed.message}); retry after ${handed.retryAfterSeconds}s`,
          );
        }
        dedup.remember(keys);
        signals = handed.signals;
      }
      stats.events('accepted', fresh.length);
      stats.events('duplicate', duplicates);
      stats.events('invalid', decoded.invalid.length);
      stats.request(200);
      res.status(200).json({
        accepted: fresh.length,
        duplicates,
        invalid: decoded.invalid.length,
        signals,
        ...(decoded.invalid.length ? { errors: decoded.invalid.slice(0, maxErrors) } : {}),
      });
    },
  });
}
