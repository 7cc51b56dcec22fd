/**
 * The kafkajs client a bus talks through: bounded retries, and kafkajs's own logs on the bus's
 * logger. Every other part of the bus gets kafkajs objects from here, so the timer fix below is in
 * place before kafkajs opens a connection.
 */
import { Kafka, logLevel, type LogEntry } from 'kafkajs';
import '../kafkajs-timers.js';
import type { Logger } from '../../logging.js';
import type { KafkaBusSettings } from './options.js';

/** Retries of kafkajs requests (admin, producer, read-back consumer): few, so callers fail fast. */
export const RETRY = { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 };

/** Creates the kafkajs client of a bus; `log` gets kafkajs's messages at the level of `logger` (none without one). */
export function createClient(settings: KafkaBusSettings, logger: Logger | undefined, log: Logger): Kafka {
  return new Kafka({
    clientId: settings.clientId,
    brokers: settings.brokers,
    connectionTimeout: settings.connectionTimeoutMs,
    // Above the broker-side timeouts it carries (produce, create topics); publish has its own deadline.
    requestTimeout: Math.max(settings.publishTimeoutMs + 2000, 10_000),
    retry: RETRY,
    logLevel: logger ? kafkaLevel(logger.level) : logLevel.NOTHING,
    logCreator: () => (entry: LogEntry) => kafkaLog(log, entry),
  });
}

function kafkaLevel(level: string): logLevel {
  switch (level) {
    case 'trace':
    case 'debug':
      return logLevel.DEBUG;
    case 'info':
      return logLevel.INFO;
    case 'warn':
      return logLevel.WARN;
    case 'silent':
      return logLevel.NOTHING;
    default:
      return logLevel.ERROR;
  }
}

function kafkaLog(log: Logger, { namespace, level, log: entry }: LogEntry): void {
  const { message, timestamp: _timestamp, ...rest } = entry;
  const obj = { kafkajs: namespace, ...rest };
  // Retries are bounded on purpose (publish must fail fast); kafkajs warns about it on every connect.
  if (message.startsWith('Limiting retries for the idempotent producer')) log.debug(obj, message);
  else if (level === logLevel.ERROR) log.error(obj, message);
  else if (level === logLevel.WARN) log.warn(obj, message);
  else if (level === logLevel.INFO) log.info(obj, message);
  else log.debug(obj, message);
}
