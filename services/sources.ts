/** Every source kubevigil ingests, registered in one place. */
import { ALERTMANAGER_SOURCE } from '../connectors/alertmanager/source.js';
import { AUDIT_SOURCE } from '../connectors/k8s-audit/source.js';
import type { SourceDescriptor } from '../connectors/shared/source.js';

/** The registered sources, by name. */
export const SOURCES: ReadonlyMap<string, SourceDescriptor> = new Map([AUDIT_SOURCE, ALERTMANAGER_SOURCE].map((s) => [s.schema.name, s]));
