/** The actor's pods, which isolate-workload and delete-workload act on. */
import { resolvePod, type ResolvedPod } from '../cluster.js';
import type { PlanContext } from '../context.js';
import { checkRefs, refText, type Checked, type Ref } from '../names.js';

export interface ActorPods extends Checked<Ref> {
  /** No audit event named the pod: the candidates are the incident's pods in the actor's namespace. */
  inferred: boolean;
  /** With a cluster inventory: what each name in `ok` is in the cluster (a pod, a workload, or gone), by `ns/name`. */
  resolved?: Map<string, ResolvedPod>;
  /** Inferred candidates the cluster shows running as another service account: left out. */
  notActor: Ref[];
}

/** The actor's pods: named by the audit events' bound-token pod, else the pod entities of its namespace it did not act on. */
export function actorPods(ctx: PlanContext): ActorPods {
  const named = ctx.incident.timeline.flatMap((e) => (e.attributes.actorPod ? [e.attributes.actorPod] : []));
  const found = named.length > 0 ? { ...checkRefs(named), inferred: false } : inferredPods(ctx);
  const inv = ctx.inventory;
  if (!inv) return { ...found, notActor: [] };
  const resolved = new Map<string, ResolvedPod>();
  const ok: Ref[] = [];
  const notActor: Ref[] = [];
  for (const p of found.ok) {
    const r = resolvePod(inv, p.namespace, p.name);
    // An inferred pod is the actor's only if it runs as the actor's service account.
    const runsAs = r.state === 'pod' ? r.pod.serviceAccount : r.state === 'workload' ? r.serviceAccount : undefined;
    if (found.inferred && ctx.sa && runsAs !== undefined && runsAs !== ctx.sa.name) {
      notActor.push(p);
      continue;
    }
    ok.push(p);
    resolved.set(refText(p), r);
  }
  return { ...found, ok, resolved, notActor };
}

function inferredPods(ctx: PlanContext): Checked<Ref> & { inferred: boolean } {
  const ns = ctx.incident.actor.namespace;
  if (!ns) return { ok: [], rejected: [], inferred: false };
  const targets = new Set(
    ctx.incident.timeline.flatMap((e) => (e.target.resource === 'pods' && e.target.name ? [`${e.target.namespace}/${e.target.name}`] : [])),
  );
  const prefix = `pod:${ns}/`;
  const candidates = ctx.incident.entities
    .filter((k) => k.startsWith(prefix))
    .map((k) => k.slice(4))
    .filter((p) => !targets.has(p));
  return { ...checkRefs(candidates), inferred: true };
}
