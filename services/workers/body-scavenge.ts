/**
 * Frees request bodies handed to the detection workers with young-generation collections.
 *
 * With detection on workers, the event loop allocates little JavaScript memory per body; what a body
 * leaves behind on it is external memory (Node copies each body chunk out of the socket into a
 * buffer of its own, and the body is then joined into one). V8 sees that memory only through its
 * external-memory limit, and answers it with a full collection of the whole heap every ≈ 64 MB
 * instead of the cheap scavenges that would find those buffers already dead: five full collections
 * per 100k audit events in the e2e bench, and no scavenge in between. A scavenge after every
 * {@link SCAVENGE_EVERY_BYTES} of bodies frees them while they are young; it copies only the event
 * loop's few young live objects. Measured A/B in the e2e bench (three pairs, 2026-12-07): two full
 * collections instead of five, all threads' CPU 1.92–1.96 s instead of 2.02–2.13 s per 100k
 * events, `e2e vs express` 0.60–0.64 instead of 0.54–0.55.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Body bytes handed over between two scavenges (8 MiB: 4 measured the same, 16 left three or four full collections of five). */
export const SCAVENGE_EVERY_BYTES = 8 * 1024 * 1024;

type Collect = () => void;

let youngGc: Collect | undefined;

/**
 * A young-generation collection of this thread's heap. `gc` is exposed to new contexts only, as the
 * detection worker does for its idle full collection; the process's own global gets none.
 */
export function scavenge(): void {
  if (!youngGc) {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as (o: { type: 'minor' }) => void;
    youngGc = () => gc({ type: 'minor' });
  }
  youngGc();
}

/** Counts body bytes and runs `collect` once every `every` of them. */
export class BodyScavenger {
  private bytes = 0;
  /** Scavenges run (for tests and the bench). */
  runs = 0;

  constructor(
    private readonly every = SCAVENGE_EVERY_BYTES,
    private readonly collect: Collect = scavenge,
  ) {}

  /** A body of `n` bytes was handed over. */
  note(n: number): void {
    this.bytes += n;
    if (this.bytes < this.every) return;
    this.bytes = 0;
    this.runs++;
    this.collect();
  }
}
