/**
 * Structured logs (pino): object first, then message. Secrets are redacted by path; text that an
 * attacker controls goes under its own key, never into the message.
 */
import { pino, type Logger } from 'pino';

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
    { level, base: { service: 'kubevigil' }, redact: { paths: REDACT_PATHS, censor: '[REDACTED]' }, timestamp: pino.stdTimeFunctions.isoTime },
    typeof destination === 'number' ? pino.destination({ fd: destination, sync: false }) : destination,
  );
}

export type { Logger };
