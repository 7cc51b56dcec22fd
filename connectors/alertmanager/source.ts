/** The Alertmanager source: schema and decoder for detection, rule tests and replay. */
import type { SourceEvent } from '../../correlator/detection/source-event.js';
import type { SourceDescriptor } from '../kit/source.js';
import { ALERTMANAGER_SCHEMA, normalizeAlert, type AlertNormalizeOptions } from './normalize.js';
import { AlertmanagerPayloadError, decodeAlert, decodeAlertmanagerValue, emptyGroup } from './parse.js';
import { isObj } from '../../correlator/json-guards.js';

/** An Alertmanager source whose actors follow the given label conventions. */
export function alertmanagerSource(opts: AlertNormalizeOptions = {}): SourceDescriptor {
  const decodeOne = (value: unknown, observedTime: number, events: SourceEvent[], invalid: string[]): void => {
    // A bare alert (as rule tests write them) has no payload around it.
    if (isObj(value) && !('alerts' in value)) {
      const r = decodeAlert(value);
      if ('alert' in r) events.push(normalizeAlert(r.alert, emptyGroup(r.alert.status), observedTime, opts));
      else invalid.push(r.problem);
      return;
    }
    try {
      const p = decodeAlertmanagerValue(value);
      for (const a of p.alerts) events.push(normalizeAlert(a, p.group, observedTime, opts));
      for (const i of p.invalid) invalid.push(`alerts[${i.index}]: ${i.reason}`);
    } catch (e) {
      if (e instanceof AlertmanagerPayloadError) invalid.push(e.message);
      else throw e;
    }
  };
  return {
    schema: ALERTMANAGER_SCHEMA,
    decode(value, observedTime) {
      const events: SourceEvent[] = [];
      const invalid: string[] = [];
      if (Array.isArray(value)) for (const v of value) decodeOne(v, observedTime, events, invalid);
      else decodeOne(value, observedTime, events, invalid);
      return { events, invalid };
    },
  };
}

/** Alertmanager webhook payloads (version 4; Grafana's 1), single alerts, or arrays of either; actors by the default conventions. */
export const ALERTMANAGER_SOURCE: SourceDescriptor = alertmanagerSource();
