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

/** One allowed request of a service account, as {@link UsageProfiler} counts it: whose, and which permission under which key. */
export interface UsageKey {
  /** The service account's entity key, `sa:NAMESPACE/NAME`. */
  actor: string;
  /** The permission's key among the actor's: namespace, API group, resource, subresource and verb. */
  key: string;
  use: Omit<PermissionUse, 'count'>;
}

/** A {@link UsageKey} seen `count` times. */
export interface UsageCount extends UsageKey {
  count: number;
}

const SA = 'system:serviceaccount:';

/** What the profiler counts of an audit event; undefined for a request that is not a service account's, or was not allowed. */
export function usageOf(raw: AuditEvent): UsageKey | undefined {
  const user = (raw.impersonatedUser ?? raw.user).username;
  if (!user?.startsWith(SA)) return undefined;
  const code = raw.responseStatus?.code;
  const ref = raw.objectRef;
  const resource = ref?.resource;
  if (code === undefined || code >= 400 || !ref || !resource) return undefined;
  const rest = user.slice(SA.length);
  const i = rest.indexOf(':');
  if (i <= 0) return undefined;
  const use: Omit<PermissionUse, 'count'> = { apiGroup: ref.apiGroup ?? '', resource, verb: raw.verb };
  if (ref.namespace) use.namespace = ref.namespace;
  if (ref.subresource) use.subresource = ref.subresource;
  return {
    actor: `sa:${rest.slice(0, i)}/${rest.slice(i + 1)}`,
    key: `${ref.namespace ?? ''}|${ref.apiGroup ?? ''}|${resource}|${ref.subresource ?? ''}|${raw.verb}`,
    use,
  };
}

/** Collects allowed requests of service accounts from the audit stream. */
export class UsageProfiler implements UsageSource {
  private readonly byActor = new Map<string, Map<string, PermissionUse>>();
  /** Identities or permissions forgotten to stay within the bounds. */
  dropped = 0;
  /** Told of every count recorded (correlation worker threads keep a copy of the profile). */
  onRecord?: (u: UsageKey, n: number) => void;

  constructor(private readonly limits: UsageLimits = { maxActors: 20_000, maxPermissionsPerActor: 128 }) {}

  /** Records a request if a service account made it and it was allowed (the audit source's stage calls this for each final event). */
  observe(raw: AuditEvent): void {
    const u = usageOf(raw);
    if (u) this.record(u, 1);
  }

  /** Counts `n` requests of one permission (the detection workers send them counted per body: {@link usageOf}). */
  record(u: UsageKey, n: number): void {
    this.onRecord?.(u, n);
    let perms = this.byActor.get(u.actor);
    if (!perms) {
      if (this.byActor.size >= this.limits.maxActors) {
        this.byActor.delete(this.byActor.keys().next().value as string);
        this.dropped++;
      }
      perms = new Map();
      this.byActor.set(u.actor, perms);
    }
    const p = perms.get(u.key);
    if (p) p.count += n;
    else if (perms.size < this.limits.maxPermissionsPerActor) {
      const { apiGroup, resource, verb, namespace, subresource } = u.use;
      const use: PermissionUse = { apiGroup, resource, verb, count: n };
      if (namespace) use.namespace = namespace;
      if (subresource) use.subresource = subresource;
      perms.set(u.key, use);
    } else this.dropped++;
  }

  usage(actorKey: string): PermissionUse[] {
    return [...(this.byActor.get(actorKey)?.values() ?? [])].map((p) => ({ ...p }));
  }
}
