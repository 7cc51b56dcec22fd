/** The Kubernetes audit source: schema and decoder for detection and rule tests. */
import type { SourceDescriptor } from '../kit/source.js';
import { AUDIT_SCHEMA, normalizeAuditEvent } from './normalize.js';
import { AuditPayloadError, decodeAuditValue } from './parse.js';

/** Audit events: an Event, an EventList or an array. */
export const AUDIT_SOURCE: SourceDescriptor = {
  schema: AUDIT_SCHEMA,
  decode(value, observedTime) {
    try {
      const batch = decodeAuditValue(value);
      return { events: batch.events.map((e) => normalizeAuditEvent(e, observedTime)), invalid: batch.invalid.map((i) => i.reason) };
    } catch (e) {
      if (e instanceof AuditPayloadError) return { events: [], invalid: [e.message] };
      throw e;
    }
  },
};
