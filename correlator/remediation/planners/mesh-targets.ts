/** The namespaces the mesh planners harden, and why each. */
import { entriesWith, meshNamespaces, type PlanContext } from '../context.js';
import { checkNames, type Checked } from '../names.js';
import { secretsRead } from './secrets-read.js';

/**
 * Namespaces to harden in the mesh: where mTLS failed or was weakened, and where stolen credentials
 * lead, but only those the incident shows to be in the mesh (its mesh evidence names them): a
 * PeerAuthentication or AuthorizationPolicy does nothing where no sidecar enforces it, and advice
 * to install one there would be noise.
 */
export function meshTargets(ctx: PlanContext): Checked<string> & { fromMesh: Set<string> } {
  const inMesh = meshNamespaces(ctx);
  const fromMesh = new Set(entriesWith(ctx, 'mtls-gap').flatMap((e) => (e.target.namespace ? [e.target.namespace] : [])));
  const fromSecrets = secretsRead(ctx)
    .ok.map((r) => r.namespace)
    .filter((ns) => ns !== ctx.incident.actor.namespace);
  return { ...checkNames([...new Set([...fromMesh, ...fromSecrets])].filter((ns) => inMesh.has(ns)).sort()), fromMesh };
}

/** Why a namespace is a target, for the rationale. */
export function why(ns: string, fromMesh: ReadonlySet<string>): string {
  return fromMesh.has(ns)
    ? `Mutual TLS failed or was weakened in ${ns}.`
    : `The actor read credentials from ${ns}, so its services are the next target; the incident's mesh signals show ${ns} is in the mesh.`;
}
