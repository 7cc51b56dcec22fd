/**
 * Facts read out of an audit event's URI and bodies for rules: the command of an exec, what a
 * CertificateSigningRequest asks for, and the object in words. Every reader is bounded: the URI and
 * the PEM come from the client.
 */
import { isObj } from '../../correlator/json-guards.js';
import { truncate } from '../../correlator/redact.js';
import type { AuditEvent } from './parse.js';

/** What an exec or attach request runs. */
export interface ExecFacts {
  command: string;
  container?: string;
  interactive: boolean;
}

const MAX_COMMAND = 4096;

/** The `command=` arguments of an exec URI, joined by spaces; `container=`; and whether a terminal or stdin was asked for. */
export function execFacts(requestURI: string): ExecFacts {
  const q = requestURI.indexOf('?');
  const params = new URLSearchParams(q < 0 ? '' : requestURI.slice(q + 1, q + 1 + 4 * MAX_COMMAND));
  const command = truncate(params.getAll('command').join(' '), MAX_COMMAND);
  const container = params.get('container') ?? undefined;
  const interactive = params.get('tty') === 'true' || params.get('stdin') === 'true' || params.get('tty') === '1' || params.get('stdin') === '1';
  return { command, ...(container ? { container } : {}), interactive };
}

/** What a CertificateSigningRequest asks for, and on an approval who asked and who approves. */
export interface CsrFacts {
  commonName?: string;
  organizations: string[];
  signerName?: string;
  usages: string[];
  requester?: string;
  approved: boolean;
  selfApproved: boolean;
}

export function csrFacts(ev: AuditEvent, approver: string): CsrFacts {
  const obj = isObj(ev.requestObject) && isObj(ev.requestObject.spec) ? ev.requestObject : isObj(ev.responseObject) ? ev.responseObject : undefined;
  const spec = obj && isObj(obj.spec) ? obj.spec : {};
  const subject = typeof spec.request === 'string' ? csrSubject(spec.request) : undefined;
  const usages = Array.isArray(spec.usages) ? spec.usages.filter((u): u is string => typeof u === 'string') : [];
  const requester = typeof spec.username === 'string' && spec.username !== '' ? spec.username : undefined;
  const status = obj && isObj(obj.status) ? obj.status : {};
  const conditions = Array.isArray(status.conditions) ? status.conditions : [];
  const approved = ev.objectRef?.subresource === 'approval' && conditions.some((c) => isObj(c) && c.type === 'Approved' && c.status !== 'False');
  return {
    ...(subject?.commonName !== undefined ? { commonName: subject.commonName } : {}),
    organizations: subject?.organizations ?? [],
    ...(typeof spec.signerName === 'string' ? { signerName: spec.signerName } : {}),
    usages,
    ...(requester ? { requester } : {}),
    approved,
    selfApproved: approved && requester !== undefined && requester === approver,
  };
}

// --- PKCS#10 subject, from the PEM the CSR carries (base64 in spec.request) -------------------------

const OID_CN = '2.5.4.3';
const OID_O = '2.5.4.10';

interface Tlv {
  tag: number;
  start: number;
  end: number;
}

function readTlv(b: Uint8Array, at: number, limit: number): Tlv | undefined {
  if (at + 2 > limit) return undefined;
  const tag = b[at]!;
  let len = b[at + 1]!;
  let p = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || p + n > limit) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | b[p + i]!;
    p += n;
  }
  if (p + len > limit) return undefined;
  return { tag, start: p, end: p + len };
}

function children(b: Uint8Array, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = t.start; p < t.end && out.length < 64;) {
    const c = readTlv(b, p, t.end);
    if (!c) break;
    out.push(c);
    p = c.end;
  }
  return out;
}

function oid(b: Uint8Array, t: Tlv): string {
  const parts: number[] = [];
  let v = 0;
  for (let i = t.start; i < t.end; i++) {
    v = (v << 7) | (b[i]! & 0x7f);
    if (!(b[i]! & 0x80)) {
      if (parts.length === 0) parts.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

/** The subject's common name and organizations of a PEM (or base64 of a PEM) certificate request; undefined when unreadable. */
export function csrSubject(request: string): { commonName?: string; organizations: string[] } | undefined {
  if (request.length > 64 * 1024) return undefined;
  let pem = request;
  if (!pem.includes('-----BEGIN')) pem = Buffer.from(pem, 'base64').toString('latin1');
  const m = /-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----([\s\S]*?)-----END/.exec(pem);
  if (!m) return undefined;
  const der = new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
  const outer = readTlv(der, 0, der.length);
  const info = outer && children(der, outer)[0];
  const name = info && children(der, info)[1];
  if (!name || name.tag !== 0x30) return undefined;
  const out: { commonName?: string; organizations: string[] } = { organizations: [] };
  for (const rdn of children(der, name))
    for (const atv of children(der, rdn)) {
      const [id, value] = children(der, atv);
      if (!id || !value || id.tag !== 0x06) continue;
      const text = Buffer.from(der.subarray(value.start, value.end)).toString('utf8');
      const o = oid(der, id);
      if (o === OID_CN) out.commonName = text;
      else if (o === OID_O) out.organizations.push(text);
    }
  return out;
}

// --- The object in words --------------------------------------------------------------------------

const KIND_NAMES: Record<string, string> = {
  clusterrolebindings: 'ClusterRoleBinding',
  rolebindings: 'RoleBinding',
  clusterroles: 'ClusterRole',
  roles: 'Role',
  mutatingwebhookconfigurations: 'MutatingWebhookConfiguration',
  validatingwebhookconfigurations: 'ValidatingWebhookConfiguration',
  certificatesigningrequests: 'CertificateSigningRequest',
  customresourcedefinitions: 'CustomResourceDefinition',
};

const singular = (r: string) =>
  KIND_NAMES[r] ?? (r.endsWith('ies') ? `${r.slice(0, -3)}y` : r.endsWith('sses') ? r.slice(0, -2) : r.endsWith('s') ? r.slice(0, -1) : r);

function nameOf(obj: unknown): string | undefined {
  if (!isObj(obj) || !isObj(obj.metadata)) return undefined;
  const n = obj.metadata.name ?? obj.metadata.generateName;
  return typeof n === 'string' && n !== '' ? n : undefined;
}

/** The object a request acted on, in words. */
export function describeObject(ev: AuditEvent): string {
  const ref = ev.objectRef;
  if (!ref?.resource) return ev.requestURI ? `the path ${truncate(ev.requestURI, 200)}` : 'an unnamed object';
  const name = ref.name ?? nameOf(ev.requestObject) ?? nameOf(ev.responseObject);
  const sub = ref.subresource ? ` (${ref.subresource})` : '';
  if (!name) {
    const where = ref.namespace ? `in ${ref.namespace}` : clusterScoped(ref.resource) ? 'cluster-wide' : 'in every namespace';
    return `${ref.resource}${sub} ${where}`;
  }
  const kind = singular(ref.resource);
  return ref.namespace ? `${kind} ${ref.namespace}/${name}${sub}` : `${kind} ${name}${sub}`;
}

const CLUSTER_SCOPED = new Set([
  'namespaces',
  'nodes',
  'persistentvolumes',
  'clusterroles',
  'clusterrolebindings',
  'mutatingwebhookconfigurations',
  'validatingwebhookconfigurations',
  'validatingadmissionpolicies',
  'validatingadmissionpolicybindings',
  'certificatesigningrequests',
  'customresourcedefinitions',
  'storageclasses',
  'priorityclasses',
  'selfsubjectaccessreviews',
  'selfsubjectrulesreviews',
  'selfsubjectreviews',
  'tokenreviews',
  'subjectaccessreviews',
]);

const clusterScoped = (resource: string) => CLUSTER_SCOPED.has(resource);
