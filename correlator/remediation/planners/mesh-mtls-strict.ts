/** mesh-mtls-strict: STRICT mutual TLS in the namespaces where it failed or was weakened, or that are next. */
import type { Remediation } from '../../incident.js';
import { manifest, metadata, remediation, withRejections } from '../building-blocks.js';
import type { PlanContext } from '../context.js';
import { meshTargets, why } from './mesh-targets.js';

export function meshMtlsStrict(ctx: PlanContext): Remediation[] {
  const { ok, rejected, fromMesh, inCluster } = meshTargets(ctx);
  const out = ok.map((ns) => {
    const file = `peerauthentication-${ns}.yaml`;
    const doc = { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: metadata(ctx, 'default', ns), spec: { mtls: { mode: 'STRICT' } } };
    return remediation(
      'mesh-mtls-strict',
      `Require mutual TLS in namespace ${ns}`,
      `${why(ns, fromMesh, inCluster)} A namespace-wide PeerAuthentication in STRICT mode makes every workload in ${ns} refuse plaintext, so each caller must present a verifiable mesh identity, which an AuthorizationPolicy can then deny. It is named default because Istio honours only one namespace-wide policy (the oldest): this replaces the usual one rather than competing with it.`,
      `Clients without a sidecar (jobs, probes from outside the mesh, ingress not in the mesh, other namespaces outside the mesh) can no longer connect to ${ns}. Check the existing policies with the first command; an existing default policy is overwritten.`,
      [`kubectl -n ${ns} get peerauthentication`, `kubectl apply -f ${file}`],
      [manifest(file, [doc])],
    );
  });
  return withRejections(out, rejected, 'mesh-mtls-strict', 'Require mutual TLS in the target namespaces');
}
