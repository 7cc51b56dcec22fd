/** The namespaces the mesh planners harden, and why each. */
import { entriesWith, type PlanContext } from '../context.js';
import { checkNames, type Checked } from '../names.js';
import { secretsRead } from './secrets-read.js';

/** Namespaces to harden in the mesh: where mTLS failed or was weakened, and where stolen credentials lead. */
export function meshTargets(ctx: PlanContext): Checked<string> & { fromMesh: Set<string> } {
  const fromMesh = new Set(entriesWith(ctx, 'mtls-gap').flatMap((e) => (e.target.namespace ? [e.target.namespace] : [])));
  const fromSecrets = secretsRead(ctx)
    .ok.map((r) => r.namespace)
    .filter((ns) => ns !== ctx.incident.actor.namespace);
  return { ...checkNames([...fromMesh, ...fromSecrets].sort()), fromMesh };
}

/** Why a namespace is a target, for the rationale. */
export function why(ns: string, fromMesh: ReadonlySet<string>): string {
  return fromMesh.has(ns) ? `Mutual TLS failed or was weakened in ${ns}.` : `The actor read credentials from ${ns}, so its services are the next target.`;
}
