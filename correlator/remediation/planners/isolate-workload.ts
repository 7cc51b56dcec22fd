/** isolate-workload: cut the actor's pod off the network, keeping it for forensics. */
import type { Remediation } from '../../incident.js';
import { manifest, metadata, remediation, withRejections } from '../building-blocks.js';
import { attackShown, type PlanContext } from '../context.js';
import type { Ref } from '../names.js';
import { actorPods } from './actor-pods.js';

function groupByNamespace(refs: readonly Ref[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of refs) out.set(r.namespace, [...(out.get(r.namespace) ?? []), r.name]);
  return out;
}

const QUARANTINE_LABEL = 'kubevigil.io/quarantine';

export function isolateWorkload(ctx: PlanContext): Remediation[] {
  // Only denials, only low signals or only records of changes: nothing shows the pod is compromised.
  if (!attackShown(ctx)) return [];
  const pods = actorPods(ctx);
  const out = [...groupByNamespace(pods.ok)].map(([ns, names]) => {
    const file = `quarantine-${ns}.yaml`;
    const policy = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: metadata(ctx, 'kubevigil-quarantine', ns),
      spec: { podSelector: { matchLabels: { [QUARANTINE_LABEL]: 'true' } }, policyTypes: ['Ingress', 'Egress'] },
    };
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
      `${source} Labelling it and applying a NetworkPolicy that selects the label with no rules cuts all its traffic while the pod stays available for forensics.`,
      `The workload stops serving: nothing reaches it and it reaches nothing, DNS included. NetworkPolicies add up, so traffic another policy in ${ns} allows to this pod stays allowed (check the output of \`kubectl get networkpolicy\`); the policy needs a CNI that enforces NetworkPolicy, and some keep established connections open. The pod's token stays valid until the pod is deleted.`,
      commands,
      [manifest(file, [policy])],
    );
  });
  return withRejections(out, pods.rejected, 'isolate-workload', "Isolate the actor's pod");
}
