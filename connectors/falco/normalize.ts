/**
 * One Falco alert → {@link SourceEvent}. Falco watches syscalls on the node, so the actor is the
 * workload that made them: the pod its `k8s.ns.name` / `k8s.pod.name` fields name (the same
 * `pod:<ns>/<name>` key the mesh logs and traces use, which identity resolution turns into the
 * pod's service account), else the node (`hostname`) for host processes. The key is Falco's
 * `uuid`, or a hash of what identifies the alert for senders that do not set one.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { actorFields } from '../../correlator/detection/fields.js';
import type { EventDetails, SourceEvent, SourceSchema } from '../../correlator/detection/source-event.js';
import { actorFromPod, ipKey, nodeKey, nsKey, podKey, userKey, type Actor } from '../../correlator/entities.js';
import { boundedRedactedCopy, redactText, truncate } from '../../correlator/redact.js';
import type { Target } from '../../correlator/signal.js';
import { FALCO_PRIORITIES, type FalcoEvent } from './parse.js';

/** Falco's placeholder for a field it could not fill. */
const NA = '<NA>';

/** The string a field holds, or undefined when absent, empty or `<NA>`. */
function str(f: FalcoEvent['output_fields'], ...names: string[]): string | undefined {
  for (const n of names) {
    const v = f[n];
    if (typeof v === 'string' && v !== '' && v !== NA) return v;
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  }
  return undefined;
}

function num(f: FalcoEvent['output_fields'], name: string): number | undefined {
  const v = f[name];
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

/** `10.0.3.17:43210->169.254.169.254:80` → the remote side (Falco's `fd.name` of a connected socket). */
export function remoteOfConnection(fdName: string): { ip: string; port?: number } | undefined {
  const m = /->\[?([0-9a-fA-F:.]+?)\]?:(\d+)$/.exec(fdName);
  if (!m || !isIP(m[1]!)) return undefined;
  return { ip: m[1]!, port: Number(m[2]) };
}

/** The pod of an alert: Falco's container-engine fields, or the k8smeta plugin's. */
interface PodRef {
  namespace?: string;
  pod?: string;
}

/**
 * Computed fields of one alert, reachable from rules by their top-level name (see
 * {@link FALCO_SCHEMA}); they follow Falco's own field names, without `<NA>` placeholders.
 */
export class FalcoDerived {
  private _actor?: Actor;

  constructor(private readonly ev: FalcoEvent) {}

  private get f(): FalcoEvent['output_fields'] {
    return this.ev.output_fields;
  }

  /** 7 for Emergency … 0 for Debug, so rules can say "Warning or worse" as `gte: 3`. */
  get level(): number {
    return FALCO_PRIORITIES.length - 1 - FALCO_PRIORITIES.indexOf(this.ev.priority);
  }

  /** The pod the syscall came from. */
  get k8s(): PodRef {
    return { namespace: str(this.f, 'k8s.ns.name', 'k8smeta.ns.name'), pod: str(this.f, 'k8s.pod.name', 'k8smeta.pod.name') };
  }

  /** The container (`id` is `host` for a process outside any container). */
  get container(): { id?: string; name?: string; image?: string; tag?: string; privileged?: boolean } {
    const p = this.f['container.privileged'];
    return {
      id: str(this.f, 'container.id'),
      name: str(this.f, 'container.name'),
      image: str(this.f, 'container.image.repository', 'container.image'),
      tag: str(this.f, 'container.image.tag'),
      ...(typeof p === 'boolean' ? { privileged: p } : p === 'true' || p === 'false' ? { privileged: p === 'true' } : {}),
    };
  }

  /** True when the process ran in a container (not on the host). */
  get inContainer(): boolean {
    const id = this.container.id;
    return (id !== undefined && id !== 'host') || this.k8s.pod !== undefined;
  }

  /** The process. */
  get proc(): { name?: string; cmdline?: string; exepath?: string; pname?: string; pcmdline?: string; tty?: number } {
    return {
      name: str(this.f, 'proc.name'),
      cmdline: str(this.f, 'proc.cmdline'),
      exepath: str(this.f, 'proc.exepath'),
      pname: str(this.f, 'proc.pname'),
      pcmdline: str(this.f, 'proc.pcmdline'),
      tty: num(this.f, 'proc.tty'),
    };
  }

  /** The file or socket: `name` as Falco gives it; for a connection its remote address and port. */
  get fd(): { name?: string; rip?: string; rport?: number; l4proto?: string } {
    const name = str(this.f, 'fd.name');
    const remote = name ? remoteOfConnection(name) : undefined;
    const rip = str(this.f, 'fd.rip') ?? remote?.ip;
    const rport = num(this.f, 'fd.rport') ?? remote?.port;
    return { name, rip, ...(rport !== undefined ? { rport } : {}), l4proto: str(this.f, 'fd.l4proto') };
  }

  /** `user.name`. */
  get userName(): string | undefined {
    return str(this.f, 'user.name');
  }

  /** MITRE technique ids among the rule's tags (`T1059`, `T1552.005`). */
  get mitre(): string[] {
    return this.ev.tags.filter((t) => /^T\d{4}(\.\d{3})?$/.test(t));
  }

  /** Where it happened, for outputs: `ns/pod`, else `container <name or id> on <host>`, else `host <host>`. */
  get where(): string {
    const { namespace, pod } = this.k8s;
    if (namespace && pod) return `${namespace}/${pod}`;
    const c = this.container;
    const host = this.ev.hostname || 'unknown host';
    if (c.id && c.id !== 'host') return `container ${c.name ?? c.id} on ${host}`;
    return `host ${host}`;
  }

  /** The pod, else the node, else the rule: who did it. */
  get actor(): Actor {
    if (this._actor) return this._actor;
    const { namespace, pod } = this.k8s;
    if (namespace && pod) return (this._actor = actorFromPod(namespace, pod));
    if (this.ev.hostname) return (this._actor = { key: nodeKey(this.ev.hostname), type: 'node', name: this.ev.hostname });
    const who = `falco/${this.ev.rule}`;
    return (this._actor = { key: userKey(who), type: 'user', name: who });
  }
}

/** The Falco source as detection sees it; rules are indexed on the rule name. */
export const FALCO_SCHEMA: SourceSchema = {
  name: 'falco',
  derived: ['level', 'k8s', 'container', 'inContainer', 'proc', 'fd', 'userName', 'mitre', 'where', 'actor'],
  indexField: 'rule',
  fields: [
    { name: 'rule', type: 'string', description: 'Name of the Falco rule that fired, e.g. `Terminal shell in container`.' },
    {
      name: 'priority',
      type: 'string',
      description: 'Falco priority: `Emergency`, `Alert`, `Critical`, `Error`, `Warning`, `Notice`, `Informational`, `Debug`.',
    },
    { name: 'output', type: 'string', description: 'The rule’s formatted output line (empty when `json_include_output_property` is false).' },
    { name: 'time', type: 'string', description: 'When the event happened (RFC 3339, nanoseconds).' },
    { name: 'uuid', type: 'string', description: 'Falco’s id of the alert (recent Falco versions; absent from older ones).' },
    { name: 'source', type: 'string', description: 'Event source: `syscall`, `k8s_audit` or a plugin’s (`aws_cloudtrail`…); `syscall` when absent.' },
    { name: 'tags', type: 'string[]', description: 'The rule’s tags, e.g. `container`, `shell`, `mitre_execution`, `T1059`.' },
    { name: 'hostname', type: 'string', description: 'Host Falco runs on (the node name under the Helm chart).' },
    {
      name: 'output_fields.*',
      type: 'any',
      description:
        'Falco fields of the alert by their Falco name, e.g. `output_fields["proc.cmdline"]`, `output_fields["fd.name"]` (`<NA>` when Falco could not fill one).',
    },
    {
      name: 'level',
      type: 'number',
      description: 'The priority as a number: 7 Emergency, 6 Alert, 5 Critical, 4 Error, 3 Warning, 2 Notice, 1 Informational, 0 Debug.',
    },
    { name: 'k8s.namespace', type: 'string', description: 'Namespace of the pod (`k8s.ns.name`, or the k8smeta plugin’s `k8smeta.ns.name`).' },
    { name: 'k8s.pod', type: 'string', description: 'Name of the pod (`k8s.pod.name` or `k8smeta.pod.name`).' },
    { name: 'container.id', type: 'string', description: 'Container id; `host` for a process outside containers.' },
    { name: 'container.name', type: 'string', description: 'Container name.' },
    { name: 'container.image', type: 'string', description: 'Image repository (`container.image.repository`).' },
    { name: 'container.tag', type: 'string', description: 'Image tag.' },
    { name: 'container.privileged', type: 'boolean', description: 'The container runs privileged (`container.privileged`).' },
    { name: 'inContainer', type: 'boolean', description: 'The process ran in a container or a pod, not on the host.' },
    { name: 'proc.name', type: 'string', description: 'Process name.' },
    { name: 'proc.cmdline', type: 'string', description: 'Command line.' },
    { name: 'proc.exepath', type: 'string', description: 'Path of the executable.' },
    { name: 'proc.pname', type: 'string', description: 'Parent process name.' },
    { name: 'proc.pcmdline', type: 'string', description: 'Parent command line.' },
    { name: 'proc.tty', type: 'number', description: 'Controlling terminal; 0 for none.' },
    { name: 'fd.name', type: 'string', description: 'File path, or `client:port->server:port` for a socket.' },
    { name: 'fd.rip', type: 'string', description: 'Remote address of a connection (`fd.rip`, else read from `fd.name`).' },
    { name: 'fd.rport', type: 'number', description: 'Remote port of a connection.' },
    { name: 'fd.l4proto', type: 'string', description: '`tcp`, `udp`…' },
    { name: 'userName', type: 'string', description: 'User the process ran as (`user.name`).' },
    { name: 'mitre', type: 'string[]', description: 'MITRE ATT&CK technique ids among the tags (`T1059`).' },
    { name: 'where', type: 'string', description: 'Where it happened, for outputs: `namespace/pod`, `container <name> on <host>` or `host <host>`.' },
    ...actorFields('the workload that made the syscall: its pod (`pod:<ns>/<pod>`), else the node (`node:<hostname>`), else `user:falco/<rule>`'),
  ],
};

const hash = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 24);

/** The deduplication key of an alert: Falco's uuid, else a hash of host, time, rule and output. */
export function falcoKey(e: FalcoEvent): string {
  return e.uuid ?? `h:${hash(JSON.stringify([e.hostname, e.time, e.rule, e.output]))}`;
}

/** A Falco alert as detection sees it; details are computed only for alerts a rule matched. */
export class FalcoSourceEvent implements SourceEvent {
  readonly source = 'falco' as const;
  readonly final = true;
  readonly derived: FalcoDerived;
  readonly key: string;
  private _details?: EventDetails;

  constructor(
    readonly raw: FalcoEvent,
    readonly observedTime: number,
  ) {
    this.derived = new FalcoDerived(raw);
    this.key = falcoKey(raw);
  }

  details(): EventDetails {
    return (this._details ??= falcoDetails(this.raw, this.derived, this.observedTime));
  }
}

/** Normalizes one validated alert; `observedTime` is when kubevigil received it. */
export function normalizeFalcoEvent(e: FalcoEvent, observedTime: number): FalcoSourceEvent {
  return new FalcoSourceEvent(e, observedTime);
}

const MAX_ATTR = 256;

function set(attrs: Record<string, string>, k: string, v: string | number | undefined): void {
  if (v !== undefined && v !== '') attrs[k] = truncate(redactText(String(v)), MAX_ATTR);
}

function falcoDetails(e: FalcoEvent, d: FalcoDerived, observedTime: number): EventDetails {
  const actor = d.actor;
  const pod = d.k8s;
  const c = d.container;
  const p = d.proc;
  const fd = d.fd;
  const target: Target = {};
  if (pod.namespace) target.namespace = pod.namespace;
  if (pod.pod) {
    target.resource = 'pods';
    target.name = pod.pod;
  }
  const evtType = typeof e.output_fields['evt.type'] === 'string' ? e.output_fields['evt.type'] : undefined;
  if (evtType && evtType !== NA) target.verb = evtType;

  const entities = new Set<string>();
  if (pod.namespace) entities.add(nsKey(pod.namespace));
  if (pod.namespace && pod.pod) entities.add(podKey(pod.namespace, pod.pod));
  if (e.hostname) entities.add(nodeKey(e.hostname));
  if (fd.rip && isIP(fd.rip)) entities.add(ipKey(fd.rip));
  entities.delete(actor.key);

  const attributes: Record<string, string> = {};
  set(attributes, 'falcoRule', e.rule);
  set(attributes, 'priority', e.priority);
  set(attributes, 'falcoSource', e.source);
  set(attributes, 'uuid', e.uuid);
  set(attributes, 'hostname', e.hostname);
  set(attributes, 'containerId', c.id);
  set(attributes, 'containerName', c.name);
  set(attributes, 'image', c.image && c.tag ? `${c.image}:${c.tag}` : c.image);
  set(attributes, 'process', p.name);
  set(attributes, 'cmdline', p.cmdline);
  set(attributes, 'parent', p.pname);
  set(attributes, 'user', d.userName);
  if (fd.rip) set(attributes, 'connection', fd.name);
  else set(attributes, 'file', fd.name);
  set(attributes, 'tags', e.tags.join(','));
  if (pod.namespace && pod.pod) attributes.actorPod = `${pod.namespace}/${pod.pod}`;

  const time = Date.parse(e.time);
  const excerpt = boundedRedactedCopy({
    uuid: e.uuid,
    rule: e.rule,
    priority: e.priority,
    time: e.time,
    source: e.source,
    hostname: e.hostname,
    tags: e.tags,
    output: truncate(redactText(e.output), 1024),
    output_fields: e.output_fields,
  }) as Record<string, unknown>;
  // Falco reports what happened on the node: nothing refused it.
  return { time: Number.isFinite(time) ? time : observedTime, actor, target, outcome: 'allowed', entities: [...entities], attributes, excerpt };
}
