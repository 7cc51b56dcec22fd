/**
 * Structured logs (pino): object first, then message. Secrets are redacted by path; text that an
 * attacker controls goes under its own key, never into the message.
 */
import { pino, type Logger } from 'pino';
import { cut } from '../correlator/budget.js';

/** The longest string a log line keeps, the most items of a list and the deepest nesting (issue #19: an 11 MB username is not logged whole). */
export const LOG_BOUNDS = { string: 4096, items: 64, depth: 8 } as const;

/** A log object within {@link LOG_BOUNDS}. */
function bounded(v: unknown, depth: number): unknown {
  if (typeof v === 'string') return cut(v, LOG_BOUNDS.string);
  if (v === null || typeof v !== 'object') return v;
  // Errors keep their form: the `err` serializer below bounds them once pino has serialized them.
  if (v instanceof Error) return v;
  if (depth >= LOG_BOUNDS.depth) return '[…]';
  if (Array.isArray(v)) {
    const out = v.slice(0, LOG_BOUNDS.items).map((x) => bounded(x, depth + 1));
    if (v.length > LOG_BOUNDS.items) out.push(`…[+${v.length - LOG_BOUNDS.items} items]`);
    return out;
  }
  // Buffers, maps and other objects with their own JSON form are left to it.
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = bounded(x, depth + 1);
  return out;
}

/** Paths pino replaces with [REDACTED] wherever they appear in a log object. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'authorization',
  'token',
  '*.token',
  'config.ingestToken',
  'config.apiToken',
  'config.slackBotToken',
  '*.requestObject.data',
  '*.responseObject.data',
  '*.requestObject.stringData',
  'kubeconfig',
];

/** Creates the process logger. `destination` lets the CLI send logs to stderr. */
export function createLogger(level: string, destination: pino.DestinationStream | number = 1): Logger {
  return pino(
    {
      level,
      base: { service: 'kubevigil' },
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { log: (o) => bounded(o, 0) as Record<string, unknown> },
      // An error's message can quote what an attacker sent: its message and stack are bounded too.
      serializers: { err: (e: Error) => bounded({ ...pino.stdSerializers.err(e) }, 1) },
    },
    typeof destination === 'number' ? pino.destination({ fd: destination, sync: false }) : destination,
  );
}

export type { Logger };
