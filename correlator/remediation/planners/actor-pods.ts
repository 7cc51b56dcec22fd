/** The actor's pods, which isolate-workload and delete-workload act on. */
import type { PlanContext } from '../context.js';
import { checkRefs, type Checked, type Ref } from '../names.js';

/** The actor's pods: named by the audit events' bound-token pod, else the pod entities of its namespace it did not act on. */
export function actorPods(ctx: PlanContext): Checked<Ref> & { inferred: boolean } {
  const named = ctx.incident.timeline.flatMap((e) => (e.attributes.actorPod ? [e.attributes.actorPod] : []));
  if (named.length > 0) return { ...checkRefs(named), inferred: false };
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
