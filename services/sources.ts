/** Every source kubevigil ingests, registered in one place. */
import { ALERTMANAGER_SOURCE } from '../connectors/alertmanager/source.js';
import { AUDIT_SOURCE } from '../connectors/k8s-audit/source.js';
import { LOKI_SOURCE } from '../connectors/loki/source.js';
import { OTLP_SOURCE } from '../connectors/otlp/source.js';
import type { SourceDescriptor } from '../connectors/kit/source.js';

/** The registered sources, by name. */
export const SOURCES: ReadonlyMap<string, SourceDescriptor> = new Map([AUDIT_SOURCE, ALERTMANAGER_SOURCE, LOKI_SOURCE, OTLP_SOURCE].map((s) => [s.schema.name, s]));
