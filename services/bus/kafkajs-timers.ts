/**
 * kafkajs 2.2.4 (its latest release) schedules its pending-request check with a negative delay when
 * the connection is not throttled (`throttledUntil` starts at -1). Node 23+ prints a
 * TimeoutNegativeWarning for that in every process that talks to Kafka; the delay was always taken
 * as 1 ms. This gives kafkajs the same schedule with the delay it meant, so operators see no warning.
 */
import { createRequire } from 'node:module';

interface RequestQueueLike {
  throttledUntil: number;
  throttleCheckTimeoutId: ReturnType<typeof setTimeout> | null;
  pending: unknown[];
  checkPendingRequests(): void;
}

const require = createRequire(import.meta.url);
const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as { prototype: RequestQueueLike & { scheduleCheckPendingRequests(): void } };
// kafkajs's own constant (CHECK_PENDING_REQUESTS_INTERVAL) for a queue with requests waiting.
const CHECK_PENDING_REQUESTS_INTERVAL = 10;

RequestQueue.prototype.scheduleCheckPendingRequests = function (this: RequestQueueLike) {
  if (this.throttleCheckTimeoutId) return;
  let scheduleAt = this.throttledUntil - Date.now();
  if (this.pending.length > 0 && scheduleAt <= 0) scheduleAt = CHECK_PENDING_REQUESTS_INTERVAL;
  this.throttleCheckTimeoutId = setTimeout(
    () => {
      this.throttleCheckTimeoutId = null;
      this.checkPendingRequests();
    },
    Math.max(1, scheduleAt),
  );
};
