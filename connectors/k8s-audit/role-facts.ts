/**
 * What the audit stream has shown about roles: which Roles and ClusterRoles grant everything
 * (`*` apiGroups, resources and verbs in one rule). A binding to such a role is a cluster-admin
 * grant whatever the role is called. Learned from role writes as they pass (request body, else the
 * response), forgotten on delete; bounded. Per process: an ingest replica knows the roles written
 * through it (the cluster inventory of issue #13 replaces this with the live RBAC objects).
 */
import { isObj } from '../../correlator/json-guards.js';
import type { AuditEvent } from './parse.js';

const MAX_ROLES = 10_000;
const ADMIN_ROLES = new Map<string, true>();

const keyOf = (kind: string, name: string, namespace?: string) => (kind === 'ClusterRole' ? `ClusterRole/${name}` : `Role/${namespace ?? ''}/${name}`);

/** True when one rule of `rules` grants every verb on every resource of every API group. */
export function grantsEverything(rules: unknown): boolean {
  if (!Array.isArray(rules)) return false;
  const has = (xs: unknown) => Array.isArray(xs) && xs.includes('*');
  return rules.some((r) => isObj(r) && has(r.apiGroups) && has(r.resources) && has(r.verbs));
}

/** Records what a role write shows (call for every audit event; it returns at once for others). */
export function learnRole(ev: AuditEvent): void {
  const ref = ev.objectRef;
  if (!ref || (ref.resource !== 'clusterroles' && ref.resource !== 'roles') || ref.subresource) return;
  const code = ev.responseStatus?.code;
  if (code !== undefined && code >= 300) return;
  const kind = ref.resource === 'clusterroles' ? 'ClusterRole' : 'Role';
  const obj = isObj(ev.responseObject) && Array.isArray(ev.responseObject.rules) ? ev.responseObject : ev.requestObject;
  const name = ref.name ?? (isObj(obj) && isObj(obj.metadata) && typeof obj.metadata.name === 'string' ? obj.metadata.name : undefined);
  if (!name) return;
  const key = keyOf(kind, name, ref.namespace);
  if (ev.verb === 'delete') {
    ADMIN_ROLES.delete(key);
    return;
  }
  if (ev.verb !== 'create' && ev.verb !== 'update' && ev.verb !== 'patch') return;
  if (!isObj(obj) || !Array.isArray(obj.rules)) return;
  if (grantsEverything(obj.rules)) {
    if (ADMIN_ROLES.size >= MAX_ROLES) ADMIN_ROLES.delete(ADMIN_ROLES.keys().next().value!);
    ADMIN_ROLES.set(key, true);
  } else ADMIN_ROLES.delete(key);
}

/** True when the binding of this event refers to a role seen granting everything. */
export function bindsAdminEquivalentRole(ev: AuditEvent): boolean {
  const pick = (o: unknown) => (isObj(o) && isObj(o.roleRef) ? o.roleRef : undefined);
  const roleRef = pick(ev.requestObject) ?? pick(ev.responseObject);
  if (!roleRef || typeof roleRef.name !== 'string' || typeof roleRef.kind !== 'string') return false;
  return ADMIN_ROLES.has(keyOf(roleRef.kind, roleRef.name, ev.objectRef?.namespace));
}

/** Forgets everything (tests). */
export function resetRoleFacts(): void {
  ADMIN_ROLES.clear();
}
