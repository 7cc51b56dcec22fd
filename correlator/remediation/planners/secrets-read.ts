/** The secrets the actor read: rotate-credentials rotates them, the mesh planners shield their namespaces. */
import { entriesWith, type PlanContext } from '../context.js';
import { checkRefs, type Checked, type Ref } from '../names.js';

/** The secrets named by allowed reads, sorted; unsafe names rejected. */
export function secretsRead(ctx: PlanContext): Checked<Ref> {
  const read = entriesWith(ctx, 'secret-read', true).flatMap((e) => (e.target.namespace && e.target.name ? [`${e.target.namespace}/${e.target.name}`] : []));
  return checkRefs(read.sort());
}
