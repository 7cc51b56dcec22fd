/**
 * Every Redis key kubevigil uses, built here and nowhere else. Per-partition keys share a hash tag
 * (`{p3}`), so a partition's checkpoint (one Lua script) and its load (one MULTI) touch one Redis Cluster slot.
 */
export function redisKeys(prefix = 'kubevigil') {
  const p = (partition: number) => `${prefix}:corr:{p${partition}}`;
  return {
    /** The identity baseline (correlator/baseline.ts): one hash field per (actor, kind, namespace). */
    baseline: `${prefix}:baseline`,
    /** Silences (services/store/silences-redis.ts): one hash field per silence id, its JSON. */
    silences: `${prefix}:silences`,
    /** The last signal offset whose effects the checkpoint holds. */
    offset: (partition: number) => `${p(partition)}:offset`,
    /** Correlation windows per group (actor). */
    slots: (partition: number) => `${p(partition)}:slots`,
    /** Open incidents of the partition. */
    incidents: (partition: number) => `${p(partition)}:incidents`,
    /** Recent signals per actor that joined no incident yet. */
    prologue: (partition: number) => `${p(partition)}:prologue`,
    /** Bumped by every checkpoint: a writer whose copy is not the latest is refused. */
    generation: (partition: number) => `${p(partition)}:gen`,
    /** The incidents the last checkpoint changed, published after it (again by a new owner on load). */
    outbox: (partition: number) => `${p(partition)}:outbox`,
    /** Signal ids processed, in ten-minute buckets that expire: a list of one JSON array of ids per checkpoint. */
    seenLog: (partition: number, bucket: number) => `${p(partition)}:seenlog:${bucket}`,
    /** The same as sets of ids, as checkpoints before 0.2 wrote them: still read until they expire. */
    seen: (partition: number, bucket: number) => `${p(partition)}:seen:${bucket}`,
  };
}
