/**
 * What every connector declares about its source, so detection, rule tests and the CLI treat all
 * sources alike: the schema rules compile against, and a decoder from one raw value (a JSON object
 * as a sender would send it, or as written in a rule test file) to normalized source events.
 */
import type { SourceEvent, SourceSchema } from '../../correlator/detection/source-event.js';

/** A source as detection sees it. */
export interface SourceDescriptor {
  schema: SourceSchema;
  /** Decodes one raw value into source events; problems are returned, never thrown. */
  decode(value: unknown, observedTime: number): { events: SourceEvent[]; invalid: string[] };
}
