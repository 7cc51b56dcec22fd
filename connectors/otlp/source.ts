/** The OTLP trace source: schema and decoder for detection, rule tests and the Tempo poller. */
import type { SourceDescriptor } from '../kit/source.js';
import { OTLP_SCHEMA, normalizeSpan } from './normalize.js';
import { decodeOtlpValue, OtlpPayloadError } from './parse.js';

/** Spans: an OTLP/JSON ExportTraceServiceRequest, a Tempo trace answer, a single span as rules see it, or a list of these. */
export const OTLP_SOURCE: SourceDescriptor = {
  schema: OTLP_SCHEMA,
  decode(value, observedTime) {
    try {
      const batch = decodeOtlpValue(value);
      return { events: batch.spans.map((s) => normalizeSpan(s, observedTime)), invalid: batch.invalid.map((i) => i.reason) };
    } catch (e) {
      if (e instanceof OtlpPayloadError) return { events: [], invalid: [e.message] };
      throw e;
    }
  },
};
