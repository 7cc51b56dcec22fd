/** isolate-workload: cut the actor's pod off the network, keeping it for forensics. */
import type { Remediation } from '../../incident.js';
import { manifest, metadata, remediation, withRejections } from '../building-blocks.js';
import { workloadText } from '../cluster.js';
import { attackShown, type PlanContext } from '../context.js';
import { isName, refText, type Ref } from '../names.js';
import { actorPods, type ActorPods } from './actor-pods.js';

function groupByNamespace(refs: readonly Ref[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of refs) out.set(r.namespace, [...(out.get(r.namespace) ?? []), r.name]);
  return out;
}

const QUARANTINE_LABEL = 'kubevigil.io/quarantine';

function quarantinePolicy(ctx: PlanContext, ns: string): object {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: metadata(ctx, 'kubevigil-quarantine', ns),
    spec: { podSelector: { matchLabels: { [QUARANTINE_LABEL]: 'true' } }, policyTypes: ['Ingress', 'Egress'] },
  };
}

const CUT = 'Labelling it and applying a NetworkPolicy that selects the label with no rules cuts all its traffic while the pod stays available for forensics.';
const riskIn = (ns: string) =>
  `The workload stops serving: nothing reaches it and it reaches nothing, DNS included. NetworkPolicies add up, so traffic another policy in ${ns} allows to this pod stays allowed (check the output of \`kubectl get networkpolicy\`); the policy needs a CNI that enforces NetworkPolicy, and some keep established connections open. The pod's token stays valid until the pod is deleted.`;

/** The pods to label, per namespace, from what the cluster says each name is: a pod, a workload (its live pods), or nothing (left out). */
function isolateInCluster(ctx: PlanContext, pods: ActorPods): Remediation[] {
  const byNs = new Map<string, { names: string[]; said: string[]; workloads: string[] }>();
  for (const p of pods.ok) {
    const r = pods.resolved!.get(refText(p))!;
    if (r.state === 'gone') continue; // delete-workload says it is gone
    const at = byNs.get(p.namespace) ?? { names: [], said: [], workloads: [] };
    byNs.set(p.namespace, at);
    if (r.state === 'pod') {
      at.names.push(p.name);
      at.said.push(`pod ${refText(p)} ${r.workload ? `belongs to ${workloadText(r.workload)}` : 'has no controller'}`);
      if (r.workload) at.workloads.push(workloadText(r.workload));
    } else {
      const live = r.pods.map((x) => x.name).filter(isName);
      at.names.push(...live);
      at.workloads.push(workloadText(r.workload));
      at.said.push(
        `${refText(p)} is not a pod but ${workloadText(r.workload)}, so its ${live.length === 1 ? 'live pod is' : `${live.length} live pods are`} isolated${live.length ? ` (${live.join(', ')})` : ''}`,
      );
    }
  }
  const source = pods.inferred
    ? `No audit event named the actor's pod; the cluster (inventory) shows these run as the actor's service account: `
    : `The audit events name the pod whose service-account token made the requests; in the cluster (inventory), `;
  const notActor = pods.notActor.length
    ? ` Left out: ${pods.notActor.map(refText).join(', ')}, which the cluster shows running as another service account.`
    : '';
  return [...byNs]
    .filter(([, at]) => at.names.length > 0)
    .map(([ns, at]) => {
      const file = `quarantine-${ns}.yaml`;
      const names = [...new Set(at.names)];
      const workloads = [...new Set(at.workloads)];
      const owned = workloads.length
        ? ` Labelling changes no selector, so ${workloads.join(', ')} keeps ${names.length === 1 ? 'the pod' : 'the pods'} and starts no replacement; a pod it starts later is not isolated, so remove the binding that granted the access before anything restarts it.`
        : '';
      return remediation(
        'isolate-workload',
        names.length === 1 ? `Isolate pod ${ns}/${names[0]}${workloads.length === 1 ? ` (${workloads[0]})` : ''}` : `Isolate ${names.length} pods in ${ns}`,
        `${source}${at.said.join('; ')}. ${CUT}${owned}${notActor}`,
        riskIn(ns),
        [
          `kubectl -n ${ns} get networkpolicy`,
          `kubectl apply -f ${file}`,
          ...names.map((n) => `kubectl -n ${ns} label pod ${n} ${QUARANTINE_LABEL}=true --overwrite`),
        ],
        [manifest(file, [quarantinePolicy(ctx, ns)])],
      );
    });
}

export function isolateWorkload(ctx: PlanContext): Remediation[] {
  // Only denials, only low signals or only records of changes: nothing shows the pod is compromised.
  if (!attackShown(ctx)) return [];
  const pods = actorPods(ctx);
  if (pods.resolved) return withRejections(isolateInCluster(ctx, pods), pods.rejected, 'isolate-workload', "Isolate the actor's pod");
  const out = [...groupByNamespace(pods.ok)].map(([ns, names]) => {
    const file = `quarantine-${ns}.yaml`;
    const policy = quarantinePolicy(ctx, ns);
    const verify = pods.inferred ? names.map((n) => `kubectl -n ${ns} get pod ${n} -o jsonpath='{.spec.serviceAccountName}{"\\n"}'`) : [];
    const commands = [
      ...verify,
      `kubectl -n ${ns} get networkpolicy`,
      `kubectl apply -f ${file}`,
      ...names.map((n) => `kubectl -n ${ns} label pod ${n} ${QUARANTINE_LABEL}=true --overwrite`),
    ];
    const source = pods.inferred
      ? `No audit event named the actor's pod; ${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} inferred from the incident's pods in ${ns} it did not act on, so check the first ${names.length === 1 ? 'command prints' : 'commands print'} its service account before acting.`
      : `The audit events name ${names.map((n) => `${ns}/${n}`).join(', ')} as the pod whose service-account token made the requests.`;
    return remediation(
      'isolate-workload',
      `Isolate ${names.length === 1 ? `pod ${ns}/${names[0]}` : `${names.length} pods in ${ns}`}`,
      `${source} ${CUT}`,
      riskIn(ns),
      commands,
      [manifest(file, [policy])],
    );
  });
  return withRejections(out, pods.rejected, 'isolate-workload', "Isolate the actor's pod");
}
