/**
 * What each service account legitimately does: its allowed API requests, counted per
 * (namespace, apiGroup, resource, subresource, verb), as audit2rbac collects them. The remediation
 * planner turns this into a least-privilege Role. Bounded per identity and in total.
 */
import type { UsageSource } from '../correlator/ports.js';
import type { PermissionUse } from '../correlator/ports.js';
import type { AuditEvent } from '../connectors/k8s-audit/parse.js';

/** Bounds of {@link UsageProfiler}. */
export interface UsageLimits {
  maxActors: number;
  maxPermissionsPerActor: number;
}

/** Collects allowed requests of service accounts from the audit stream. */
export class UsageProfiler implements UsageSource {
  private readonly byActor = new Map<string, Map<string, PermissionUse>>();
  /** Identities or permissions forgotten to stay within the bounds. */
  dropped = 0;

  constructor(private readonly limits: UsageLimits = { maxActors: 20_000, maxPermissionsPerActor: 128 }) {}

  /** Records a request if a service account made it and it was allowed (the audit source's stage calls this for each final event). */
  observe(raw: AuditEvent): void {
    {
      const user = (raw.impersonatedUser ?? raw.user).username;
      if (!user?.startsWith('system:serviceaccount:')) return;
      const code = raw.responseStatus?.code;
      const ref = raw.objectRef;
      const resource = ref?.resource;
      if (code === undefined || code >= 400 || !ref || !resource) return;
      const rest = user.slice('system:serviceaccount:'.length);
      const i = rest.indexOf(':');
      if (i <= 0) return;
      const actor = `sa:${rest.slice(0, i)}/${rest.slice(i + 1)}`;
      const key = `${ref.namespace ?? ''}|${ref.apiGroup ?? ''}|${resource}|${ref.subresource ?? ''}|${raw.verb}`;
      let perms = this.byActor.get(actor);
      if (!perms) {
        if (this.byActor.size >= this.limits.maxActors) {
          this.byActor.delete(this.byActor.keys().next().value as string);
          this.dropped++;
        }
        perms = new Map();
        this.byActor.set(actor, perms);
      }
      const p = perms.get(key);
      if (p) p.count++;
      else if (perms.size < this.limits.maxPermissionsPerActor) {
        const use: PermissionUse = { apiGroup: ref.apiGroup ?? '', resource, verb: raw.verb, count: 1 };
        if (ref.namespace) use.namespace = ref.namespace;
        if (ref.subresource) use.subresource = ref.subresource;
        perms.set(key, use);
      } else this.dropped++;
    }
  }

  usage(actorKey: string): PermissionUse[] {
    return [...(this.byActor.get(actorKey)?.values() ?? [])].map((p) => ({ ...p }));
  }
}
