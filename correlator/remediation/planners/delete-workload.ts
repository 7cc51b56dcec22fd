/**
 * delete-workload: end the pod, and with it its bound service-account token. With the cluster
 * inventory, the advice follows what the name is in the cluster: a pod (its owner named), a
 * workload (restarted, never `delete pod`), or nothing any more (said, with no command).
 */
import type { Remediation, WorkloadOwner } from '../../incident.js';
import { noteOnly, remediation, withRejections } from '../building-blocks.js';
import { RESTARTABLE, workloadText, type ResolvedPod } from '../cluster.js';
import { attackShown, type PlanContext } from '../context.js';
import { isName, refText, type Ref } from '../names.js';
import { actorPods } from './actor-pods.js';

function deletePod(p: Ref): Remediation {
  return remediation(
    'delete-workload',
    `Delete pod ${refText(p)}`,
    `Deleting the pod ends its bound service-account token wherever that token was copied to. Its logs are saved first, and its owner printed: the owning controller re-creates the pod with the same service account, so remove the binding that granted the access before this step, and isolate the pod first if it needs examining.`,
    `Whatever the attacker left in the container's filesystem or memory is lost. The workload runs one replica short until the controller replaces the pod, with the same image and service account.`,
    [
      `kubectl -n ${p.namespace} get pod ${p.name} -o jsonpath='{range .metadata.ownerReferences[*]}{.kind}/{.name}{"\\n"}{end}'`,
      `kubectl -n ${p.namespace} logs ${p.name} --all-containers --timestamps > ${p.namespace}-${p.name}.log`,
      `kubectl -n ${p.namespace} delete pod ${p.name}`,
    ],
  );
}

/** How a workload's kind is written on kubectl's command line. */
const resourceOf = (w: WorkloadOwner): string => w.kind.toLowerCase();

/** What re-creates a deleted pod of this owner, in words. */
function replacement(w: WorkloadOwner): string {
  if (w.kind === 'Job') return `${workloadText(w)} starts another pod while it has retries left (backoffLimit)`;
  if (w.kind === 'CronJob') return `${workloadText(w)} starts its pods on schedule: the running Job starts another pod while it has retries left`;
  return `${workloadText(w)} starts a replacement with the same image and service account`;
}

/** A pod the cluster has: deleted by name, its owner named. */
function deleteLivePod(p: Ref, owner: WorkloadOwner | undefined): Remediation {
  const log = `kubectl -n ${p.namespace} logs ${p.name} --all-containers --timestamps > ${p.namespace}-${p.name}.log`;
  if (!owner)
    return remediation(
      'delete-workload',
      `Delete pod ${refText(p)}`,
      `Deleting the pod ends its bound service-account token wherever that token was copied to. No controller owns it (cluster inventory), so nothing re-creates it: its manifest and logs are saved first. Isolate it first if it needs examining.`,
      `Whatever the attacker left in the container's filesystem or memory is lost, and the pod is not replaced: re-create it from the saved manifest (without status and uid) only if it is legitimate.`,
      [`kubectl -n ${p.namespace} get pod ${p.name} -o yaml > pod-${p.namespace}-${p.name}.backup.yaml`, log, `kubectl -n ${p.namespace} delete pod ${p.name}`],
    );
  const restart = RESTARTABLE.has(owner.kind)
    ? ` If every pod of it may carry the stolen token or the attacker's changes, restart it instead (kubectl -n ${owner.namespace} rollout restart ${resourceOf(owner)}/${owner.name}).`
    : '';
  return remediation(
    'delete-workload',
    `Delete pod ${refText(p)} of ${workloadText(owner)}`,
    `Deleting the pod ends its bound service-account token wherever that token was copied to. The cluster (inventory) shows it belongs to ${workloadText(owner)}: ${replacement(owner)}, so remove the binding that granted the access before this step, and isolate the pod first if it needs examining. Its logs are saved first.${restart}`,
    `Whatever the attacker left in the container's filesystem or memory is lost. ${workloadText(owner)} runs one pod short until the replacement is ready.`,
    [log, `kubectl -n ${p.namespace} delete pod ${p.name}`],
  );
}

/** A name the audit data gave as a pod that the cluster has as a workload: restarted (or its pods deleted), never `delete pod <workload>`. */
function restartWorkload(p: Ref, w: WorkloadOwner, pods: readonly string[]): Remediation {
  const said = `The audit data names ${refText(p)} as the actor's pod, but in the cluster (inventory) that name is ${workloadText(w)}, not a pod, so no pod of that name can be deleted.`;
  const res = resourceOf(w);
  if (RESTARTABLE.has(w.kind))
    return remediation(
      'delete-workload',
      `Restart ${workloadText(w)}`,
      `${said} A restart replaces every pod of it, and each replaced pod's bound service-account token ends with it; its logs are saved first. To stop it altogether instead, scale it to zero (kubectl -n ${w.namespace} scale ${res}/${w.name} --replicas=0)${w.kind === 'DaemonSet' ? ', or, for a DaemonSet, delete it after a backup' : ''}.`,
      `Its pods are replaced one by one (as its update strategy allows), with the same image and service account: remove the binding that granted the access first. Whatever the attacker left in the containers is lost.`,
      [
        `kubectl -n ${w.namespace} logs ${res}/${w.name} --all-containers --timestamps > ${w.namespace}-${w.name}.log`,
        `kubectl -n ${w.namespace} rollout restart ${res}/${w.name}`,
        `kubectl -n ${w.namespace} rollout status ${res}/${w.name}`,
      ],
    );
  if (pods.length === 0)
    return noteOnly('delete-workload', `${workloadText(w)} has no running pod`, `${said} It has no live pod, so there is no token of it to end.`);
  return remediation(
    'delete-workload',
    `Delete the pods of ${workloadText(w)}`,
    `${said} ${w.kind} cannot be restarted with kubectl rollout: its live pods are deleted by name, which ends their bound service-account tokens; ${replacement(w)}.`,
    `Whatever the attacker left in the containers is lost.`,
    [`kubectl -n ${w.namespace} delete pod ${pods.join(' ')}`],
  );
}

function gone(p: Ref, r: Extract<ResolvedPod, { state: 'gone' }>): Remediation {
  const owner = r.deleted?.workload;
  return noteOnly(
    'delete-workload',
    `Pod ${refText(p)} is already gone`,
    `The cluster (inventory) has no pod ${refText(p)} any more: its bound service-account token ended with it, and there is nothing to delete.${
      owner ? ` It belonged to ${workloadText(owner)}, whose current pods run with the same service account: remove the binding that granted the access.` : ''
    }`,
  );
}

export function deleteWorkload(ctx: PlanContext): Remediation[] {
  // Only denials, only low signals or only records of changes: nothing shows the pod is compromised.
  if (!attackShown(ctx)) return [];
  const pods = actorPods(ctx);
  const out = pods.ok.map((p) => {
    const r = pods.resolved?.get(refText(p));
    if (!r) return deletePod(p);
    if (r.state === 'pod') return deleteLivePod(p, r.workload);
    if (r.state === 'workload') return restartWorkload(p, r.workload, r.pods.map((x) => x.name).filter(isName));
    return gone(p, r);
  });
  return withRejections(out, pods.rejected, 'delete-workload', "Delete the actor's pod");
}
