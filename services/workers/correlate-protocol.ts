/** What the main thread and a correlation worker thread say to each other (services/correlate-threads.ts). */
import type { BudgetUse } from '../../correlator/incidents.js';
import { KubevigilError, type ErrorCode } from '../../correlator/errors.js';
import { RewindError } from '../bus/bus.js';
import type { UsageCount } from '../usage.js';

/**
 * Signal messages of one or more partitions, as fetched: their values back to back in one buffer
 * (transferred, not copied, to the worker), and per message where it ends, the evidence offset and
 * the shared part's offset and hash its headers gave (NaN without), its partition, offset and key.
 */
export interface PackedSignals {
  bytes: Uint8Array;
  ends: Uint32Array;
  evidenceAt: Float64Array;
  sharedAt: Float64Array;
  sharedHash: Float64Array;
  partitions: Int32Array;
  offsets: string[];
  keys: string[];
}

/** What the main thread reads of a worker synchronously (the count budgets for /readyz), as of its last answer. */
export interface Snapshot {
  budget: BudgetUse;
}

/** An error as it crosses threads: enough to raise the same kind on the other side. */
export interface ErrorDescription {
  name: string;
  message: string;
  code?: ErrorCode;
  retryable?: boolean;
  retryAfterSeconds?: number;
}

/** Main thread → worker. Requests with an `id` are answered with `re: id`. */
export type CorrelateRequest =
  | { type: 'apply'; id: number; batch: PackedSignals }
  | { type: 'flush'; id: number; partition: number }
  | { type: 'discard'; id: number; partition: number }
  | { type: 'sweep'; id: number }
  | { type: 'rules'; id: number }
  | { type: 'metrics'; id: number; name?: string }
  | { type: 'ready'; id: number }
  | { type: 'stop'; id: number }
  | { type: 'assigned'; partitions: number[] }
  | { type: 'silences'; silences: unknown[] }
  | { type: 'usage'; usage: UsageCount[] }
  | { type: 'published'; call: number; error?: ErrorDescription };

/** Worker → main thread. */
export type CorrelateAnswer =
  | { type: 'ready' }
  | { type: 'publish'; call: number; incidents: { id: string; json: string }[] }
  | { re: number; value?: unknown; snapshot: Snapshot }
  | { re: number; error: ErrorDescription; snapshot: Snapshot };

export function describeError(e: unknown): ErrorDescription {
  if (e instanceof KubevigilError)
    return {
      name: e.name,
      message: e.message,
      code: e.code,
      retryable: e.retryable,
      ...(e.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: e.retryAfterSeconds }),
    };
  if (e instanceof Error) return { name: e.name, message: e.message };
  return { name: 'Error', message: String(e) };
}

/** The error a description stands for: a rewind stays a rewind, a catalogued error keeps its code and retryability. */
export function reviveError(d: ErrorDescription): Error {
  if (d.name === 'RewindError') return new RewindError(d.message);
  if (d.code) return new KubevigilError(d.code, d.message, d.retryable ?? false, d.retryAfterSeconds);
  const e = new Error(d.message);
  e.name = d.name;
  return e;
}
