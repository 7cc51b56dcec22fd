/**
 * Names from the audit data, checked before they go into a command. Every name placed in a command
 * comes from data an attacker can influence and will be pasted into a shell, so it must be a valid
 * Kubernetes name; anything else is left out and said so (see withRejections in building-blocks.ts).
 */

/** A namespaced object. */
export interface Ref {
  namespace: string;
  name: string;
}

/** Names from the audit data refused for commands; reported in the rationale instead. */
export interface Checked<T> {
  ok: T[];
  rejected: string[];
}

const DNS_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
// RBAC objects are commonly named `system:…`; `:` is inert in a shell.
const RBAC_NAME = /^[a-z0-9]([-a-z0-9.:]*[a-z0-9])?$/;
const MAX_NAME = 253;

export const isName = (s: string): boolean => s.length <= MAX_NAME && DNS_NAME.test(s);
export const isRbacName = (s: string): boolean => s.length <= MAX_NAME && RBAC_NAME.test(s);

/** A value from the audit data, quoted and shortened, for prose only. */
export function display(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

/** `ns/name` as a ref; undefined without a namespace. */
function splitRef(value: string): Ref | undefined {
  const i = value.indexOf('/');
  return i > 0 ? { namespace: value.slice(0, i), name: value.slice(i + 1) } : undefined;
}

/** Splits `ns/name` values into safe refs and rejected raw values. */
export function checkRefs(values: Iterable<string>): Checked<Ref> {
  const out: Checked<Ref> = { ok: [], rejected: [] };
  for (const v of new Set(values)) {
    const ref = splitRef(v);
    if (ref && isName(ref.namespace) && isName(ref.name)) out.ok.push(ref);
    else out.rejected.push(v);
  }
  return out;
}

/** Splits names into valid Kubernetes names and rejected raw values. */
export function checkNames(values: Iterable<string>): Checked<string> {
  const out: Checked<string> = { ok: [], rejected: [] };
  for (const v of new Set(values)) (isName(v) ? out.ok : out.rejected).push(v);
  return out;
}

/** `ns/name` of a ref. */
export const refText = (r: Ref): string => `${r.namespace}/${r.name}`;
