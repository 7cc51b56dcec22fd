/** The Falco source: schema and decoder for detection, rule tests and replay. */
import type { SourceEvent } from '../../correlator/detection/source-event.js';
import type { SourceDescriptor } from '../kit/source.js';
import { FALCO_SCHEMA, normalizeFalcoEvent } from './normalize.js';
import { decodeFalcoValues } from './parse.js';

/** Falco alerts as Falco's http_output and Falcosidekick post them: one alert object, or an array of them. */
export const FALCO_SOURCE: SourceDescriptor = {
  schema: FALCO_SCHEMA,
  decode(value, observedTime) {
    const r = decodeFalcoValues(Array.isArray(value) ? value : [value]);
    const events: SourceEvent[] = r.events.map((e) => normalizeFalcoEvent(e, observedTime));
    return { events, invalid: r.invalid.map((i) => `${Array.isArray(value) ? `[${i.index}] ` : ''}${i.reason}`) };
  },
};
