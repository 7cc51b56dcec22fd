/**
 * OPA Gatekeeper controller log lines written with `--log-denies` (pkg/webhook/policy.go): one JSON
 * object per admission decision a constraint took, with the constraint, the resource and the user.
 * Also the audit controller's `violation_audited` lines, which record existing violations (not
 * denials).
 */
import { clip } from './record.js';

/** One Gatekeeper decision, parsed. */
export interface GatekeeperDecision {
  /** `admission` (a request refused or warned about) or `audit` (an existing object that violates). */
  process: 'admission' | 'audit';
  /** `deny`, `warn` or `dryrun`; `deny` when the line does not say. */
  action: string;
  /** The request was refused. */
  denied: boolean;
  constraint: { name: string; kind?: string; group?: string; apiVersion?: string };
  resource: { group: string; apiVersion?: string; kind?: string; namespace?: string; name?: string };
  /** The Kubernetes username that made the request. */
  username?: string;
  /** The violation message, without Gatekeeper's `denied admission: ` prefix. */
  message: string;
  /** Time of the log line, ms since epoch. */
  time?: number;
}

const str = (o: Record<string, unknown>, k: string): string | undefined => {
  const v = o[k];
  return typeof v === 'string' && v !== '' ? clip(v) : undefined;
};

/** True when a JSON object is a Gatekeeper decision line. */
export function isGatekeeperJson(o: Record<string, unknown>): boolean {
  return typeof o.constraint_name === 'string' && (o.process === 'admission' || o.process === 'audit' || typeof o.event_type === 'string');
}

/** Parses a Gatekeeper `--log-denies` (or audit) line, already JSON-decoded. */
export function parseGatekeeper(o: Record<string, unknown>): GatekeeperDecision | undefined {
  if (!isGatekeeperJson(o)) return undefined;
  const process = o.process === 'audit' || o.event_type === 'violation_audited' ? 'audit' : 'admission';
  const action = str(o, 'constraint_action') ?? 'deny';
  const msg = str(o, 'msg') ?? '';
  const d: GatekeeperDecision = {
    process,
    action,
    denied: process === 'admission' && action === 'deny',
    constraint: { name: clip(o.constraint_name as string) },
    resource: { group: str(o, 'resource_group') ?? '' },
    message: msg.replace(/^denied admission:\s*/, ''),
  };
  const ck = str(o, 'constraint_kind');
  if (ck) d.constraint.kind = ck;
  const cg = str(o, 'constraint_group');
  if (cg) d.constraint.group = cg;
  const cv = str(o, 'constraint_api_version');
  if (cv) d.constraint.apiVersion = cv;
  const rv = str(o, 'resource_api_version');
  if (rv) d.resource.apiVersion = rv;
  const rk = str(o, 'resource_kind');
  if (rk) d.resource.kind = rk;
  const rn = str(o, 'resource_namespace');
  if (rn) d.resource.namespace = rn;
  const rname = str(o, 'resource_name');
  if (rname) d.resource.name = rname;
  const user = str(o, 'request_username');
  if (user) d.username = user;
  // zap's default "ts" is float seconds; some builds use ISO 8601.
  if (typeof o.ts === 'number' && Number.isFinite(o.ts)) d.time = Math.round(o.ts * 1000);
  else if (typeof o.ts === 'string' && Number.isFinite(Date.parse(o.ts))) d.time = Date.parse(o.ts);
  return d;
}
