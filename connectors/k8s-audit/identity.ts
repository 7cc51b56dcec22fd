/**
 * What an audit event says about workload identity: a request made with a bound service-account
 * token names its pod (`authentication.kubernetes.io/pod-name`) and comes from the pod's IP; a pod
 * create or status update carries the pod's IP and service account.
 */
import type { IdentityFact } from '../../correlator/identity.js';
import type { AuditEvent } from './parse.js';
import { isObj } from '../../correlator/json-guards.js';

const SA = 'system:serviceaccount:';

/** The identity facts of one audit event (usually none). */
export function identityFacts(ev: AuditEvent, time: number): IdentityFact[] {
  const out: IdentityFact[] = [];
  const user = ev.impersonatedUser ?? ev.user;
  const pod = user.extra?.['authentication.kubernetes.io/pod-name']?.[0];
  if (pod && user.username?.startsWith(SA)) {
    const [ns, name] = user.username.slice(SA.length).split(':');
    if (ns && name)
      out.push({ pod: { namespace: ns, name: pod }, serviceAccount: { namespace: ns, name }, ...(ev.sourceIPs?.[0] ? { ip: ev.sourceIPs[0] } : {}), time });
  }
  const ref = ev.objectRef;
  if (ref?.resource === 'pods' && ref.namespace && (ev.verb === 'create' || ref.subresource === 'status')) {
    for (const obj of [ev.responseObject, ev.requestObject]) {
      if (!isObj(obj)) continue;
      const meta = isObj(obj.metadata) ? obj.metadata : {};
      const name = typeof meta.name === 'string' ? meta.name : ref.name;
      const status = isObj(obj.status) ? obj.status : {};
      const spec = isObj(obj.spec) ? obj.spec : {};
      const ip = typeof status.podIP === 'string' ? status.podIP : undefined;
      const sa = typeof spec.serviceAccountName === 'string' ? spec.serviceAccountName : undefined;
      if (name && (ip || sa)) {
        out.push({
          pod: { namespace: ref.namespace, name },
          ...(ip ? { ip } : {}),
          ...(sa ? { serviceAccount: { namespace: ref.namespace, name: sa } } : {}),
          time,
        });
        break;
      }
    }
  }
  return out;
}
