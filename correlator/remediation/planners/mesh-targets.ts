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
export function meshTargets(ctx: PlanContext): Checked<string> & { fromMesh: Set<string>; inCluster: Set<string> } {
  const inMesh = meshNamespaces(ctx);
  // The cluster's own evidence (sidecar injection labels, PeerAuthentications, Linkerd annotations) counts too.
  const inCluster = new Set(ctx.inventory ? ctx.inventory.meshNamespaces().filter((ns) => !inMesh.has(ns)) : []);
  const fromMesh = new Set(entriesWith(ctx, 'mtls-gap').flatMap((e) => (e.target.namespace ? [e.target.namespace] : [])));
  const fromSecrets = secretsRead(ctx)
    .ok.map((r) => r.namespace)
    .filter((ns) => ns !== ctx.incident.actor.namespace);
  const candidates = [...new Set([...fromMesh, ...fromSecrets])].filter((ns) => inMesh.has(ns) || inCluster.has(ns));
  // A namespace the cluster no longer has takes no policy.
  const live = ctx.inventory ? candidates.filter((ns) => ctx.inventory!.namespaceExists(ns)) : candidates;
  return { ...checkNames(live.sort()), fromMesh, inCluster };
}

/** Why a namespace is a target, for the rationale. */
export function why(ns: string, fromMesh: ReadonlySet<string>, inCluster: ReadonlySet<string> = new Set()): string {
  if (fromMesh.has(ns)) return `Mutual TLS failed or was weakened in ${ns}.`;
  return inCluster.has(ns)
    ? `The actor read credentials from ${ns}, so its services are the next target; the cluster (inventory) shows ${ns} is in the mesh (sidecar injection or a mesh policy).`
    : `The actor read credentials from ${ns}, so its services are the next target; the incident's mesh signals show ${ns} is in the mesh.`;
}
