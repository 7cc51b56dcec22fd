/** delete-workload: end the pod, and with it its bound service-account token. */
import type { Remediation } from '../../incident.js';
import { remediation, withRejections } from '../building-blocks.js';
import { attackShown, type PlanContext } from '../context.js';
import { refText } from '../names.js';
import { actorPods } from './actor-pods.js';

export function deleteWorkload(ctx: PlanContext): Remediation[] {
  // Only denials, only low signals or only records of changes: nothing shows the pod is compromised.
  if (!attackShown(ctx)) return [];
  const pods = actorPods(ctx);
  const out = pods.ok.map((p) =>
    remediation(
      'delete-workload',
      `Delete pod ${refText(p)}`,
      `Deleting the pod ends its bound service-account token wherever that token was copied to. Its logs are saved first, and its owner printed: the owning controller re-creates the pod with the same service account, so remove the binding that granted the access before this step, and isolate the pod first if it needs examining.`,
      `Whatever the attacker left in the container's filesystem or memory is lost. The workload runs one replica short until the controller replaces the pod, with the same image and service account.`,
      [
        `kubectl -n ${p.namespace} get pod ${p.name} -o jsonpath='{range .metadata.ownerReferences[*]}{.kind}/{.name}{"\\n"}{end}'`,
        `kubectl -n ${p.namespace} logs ${p.name} --all-containers --timestamps > ${p.namespace}-${p.name}.log`,
        `kubectl -n ${p.namespace} delete pod ${p.name}`,
      ],
    ),
  );
  return withRejections(out, pods.rejected, 'delete-workload', "Delete the actor's pod");
}
