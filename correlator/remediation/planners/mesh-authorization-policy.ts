/** mesh-authorization-policy: deny the actor's mesh identity in the target namespaces. */
import type { Remediation } from '../../incident.js';
import { manifest, metadata, remediation, withRejections } from '../building-blocks.js';
import { rejectedActor, type PlanContext } from '../context.js';
import { refText } from '../names.js';
import { meshTargets, why } from './mesh-targets.js';

export function meshAuthorizationPolicy(ctx: PlanContext): Remediation[] {
  const { ok, rejected, fromMesh, inCluster } = meshTargets(ctx);
  const sa = ctx.sa;
  if (!sa) return ok.length > 0 ? withRejections([], rejectedActor(ctx), 'mesh-authorization-policy', 'Deny the actor in the target namespaces') : [];
  const principal = `cluster.local/ns/${sa.namespace}/sa/${sa.name}`;
  const name = `kubevigil-deny-${sa.namespace}-${sa.name}`;
  const out = ok
    .filter((ns) => ns !== sa.namespace)
    .map((ns) => {
      const file = `authorizationpolicy-${ns}-${name}.yaml`;
      const doc = {
        apiVersion: 'security.istio.io/v1',
        kind: 'AuthorizationPolicy',
        metadata: metadata(ctx, name, ns),
        spec: { action: 'DENY', rules: [{ from: [{ source: { principals: [principal] } }] }] },
      };
      return remediation(
        'mesh-authorization-policy',
        `Deny ${refText(sa)} in namespace ${ns}`,
        `${why(ns, fromMesh, inCluster)} This DENY policy refuses every request to ${ns} from the actor's mesh identity ${principal}, whichever pod carries it.`,
        `Legitimate calls from ${refText(sa)} to ${ns} are refused too (narrow the rule with to.operation.ports to the database port if the service must keep calling ${ns}). The principal only exists over mutual TLS, so plaintext requests are not matched unless ${ns} is STRICT; the trust domain is assumed to be cluster.local (check meshConfig.trustDomain).`,
        [`kubectl apply -f ${file}`, `kubectl -n ${ns} get authorizationpolicy ${name}`],
        [manifest(file, [doc])],
      );
    });
  return withRejections(out, rejected, 'mesh-authorization-policy', 'Deny the actor in the target namespaces');
}
