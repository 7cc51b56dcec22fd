/**
 * V8 flags kubevigil sets for itself when it starts serving (KUBEVIGIL_V8_FLAGS), before the load
 * they are for. V8's flags are the process's: the detection workers run under them too.
 *
 * {@link THROUGHPUT_FLAG} is the one worth knowing. Each request body is an ArrayBuffer outside the
 * JavaScript heap, and left to itself V8 starts a full collection whenever such memory has grown by
 * some tens of megabytes since the last one, however little the heap itself grew: at a few thousand
 * audit events a second that is a full marking of the main heap every 0.4 s, about as much CPU as the
 * detection worker. With the flag, that memory counts toward the same global limit as the heap, and
 * collections follow the two together. The price is memory: bodies stay allocated longer before a
 * collection frees them. Measured (`npm run bench -- e2e`, 2 cores): 10–35% more audit events/s,
 * with a peak resident size 220–270 MB higher; under the fuzz suite's hostile bodies, 400 MB higher.
 * Off by default for that reason: a process with a tight memory limit keeps its margin. Those figures
 * predate the detection pool's scavenges (services/workers/body-scavenge.ts): a young-generation
 * collection every 8 MiB of bodies handed to the workers frees most of them young, without the
 * memory price, and left two of the five full collections per 100k events.
 *
 * A distributed correlator without the ingest role sets the flag by default ({@link defaultV8Flags}):
 * it takes no request bodies, and its external memory is what Kafka fetched for it, bounded by the
 * consumer's fetch sizes, not by what a sender posts. There the full collections the flag avoids
 * mark the whole correlation state: draining a signals topic (`BENCH_KAFKA_ONLY=drain npm run
 * bench:kafka`, 200 workloads, ≈ 90k signals in ≈ 1.3 s), V8 ran one about every 0.5 s, at a
 * heap of 70–140 MB — three a drain, each a 10–13 ms pause and 3–27 ms of incremental marking on
 * the event loop, and concurrent marking on the other core — and none in the drains with the flag
 * (`--trace-gc`, 2026-12-07). The process then spent 14.0 ms of CPU per 1,000 signals instead of
 * 16.2 (event loop 12.3 instead of 12.9; one A/B pair of runs). The price: buffers wait longer for
 * a collection; the resident size rose 11–29 MB over a drain with the flag (four runs) and 14 MB
 * without (one run).
 */
import { setFlagsFromString } from 'node:v8';

/** Counts ArrayBuffers (request bodies) in V8's global heap limit: CPU for memory, see above. */
export const THROUGHPUT_FLAG = '--external-memory-accounted-in-global-limit';

/**
 * The flags of a process whose KUBEVIGIL_V8_FLAGS is unset: {@link THROUGHPUT_FLAG} for a
 * correlator without the ingest role (whose request bodies are the senders' to size), none
 * otherwise (the API and the notifier keep little state: their full collections cost little).
 */
export function defaultV8Flags(roles: ReadonlySet<string>): string[] {
  return roles.has('correlator') && !roles.has('ingest') ? [THROUGHPUT_FLAG] : [];
}

const applied = new Set<string>();

/**
 * Sets each flag once per process (a later call with the same flags does nothing). An unknown flag
 * makes V8 print one line on stderr and is otherwise ignored: a Node whose V8 dropped a flag still
 * starts.
 */
export function applyV8Flags(flags: readonly string[], set: (flag: string) => void = setFlagsFromString): string[] {
  const now: string[] = [];
  for (const f of flags)
    if (!applied.has(f)) {
      set(f);
      applied.add(f);
      now.push(f);
    }
  return now;
}
