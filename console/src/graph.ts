/**
 * The attack graph's model: who acted (actor), from which pod, through which binding and role, on
 * what (namespaces, secrets, pods, services…), and which policy blocked it. Pure (no DOM): it
 * computes nodes, edges and their positions in layered columns left to right; AttackGraph.tsx only
 * draws them. Bounded: each column keeps its busiest nodes and folds the rest into a "+N more" node.
 */
import type { Entry } from './timeline';
import type { Evidence, Outcome } from './types';

export type NodeKind =
  'actor' | 'pod' | 'binding' | 'role' | 'namespace' | 'secret' | 'service' | 'workload' | 'resource' | 'policy' | 'ip' | 'node' | 'entity' | 'more';
export type Relation = 'runs-as' | 'bound-by' | 'grants' | 'access' | 'blocked-by';

export interface GraphNode {
  key: string;
  kind: NodeKind;
  column: number;
  /** The small line above the name: "ClusterRoleBinding", "Secret", "ServiceAccount"… */
  type: string;
  /** The name as drawn (truncated with … when long). */
  label: string;
  /** The whole name, for the tooltip and the accessible name. */
  full: string;
  enabler: boolean;
  /** The signals touching this node (for the timeline filter). */
  signalIds: string[];
  /** For a "+N more" node: the keys folded into it. */
  folded?: string[];
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface GraphEdge {
  id: string;
  from: string;
  to: string;
  relation: Relation;
  outcome: Outcome;
  count: number;
  signalIds: string[];
  /** Drawn next to the edge: "runs as", "get ×2", "✕ denied ×3" ('' when too many edges reach its node). */
  label: string;
  /** SVG path (a cubic curve from the source's right side to the target's left side). */
  path: string;
  labelX: number;
  labelY: number;
}

export interface GraphModel {
  nodes: GraphNode[];
  edges: GraphEdge[];
  columns: { title: string; x: number }[];
  width: number;
  height: number;
  /** Nodes folded into "+N more" nodes. */
  folded: number;
}

export const NODE_W = 184;
export const NODE_H = 40;
const COL_GAP = 96;
const ROW_H = 64;
const PAD_X = 16;
const PAD_TOP = 40;
const PAD_BOTTOM = 16;
/** Most nodes a column shows before folding the rest into "+N more" (about 40 nodes in all). */
export const COLUMN_CAP = [3, 5, 6, 6, 10, 4] as const;
const COLUMN_TITLES = ['Actor', 'Pod / workload', 'Binding', 'Role', 'Targets', 'Blocked by'] as const;
const LABEL_CHARS = 24;
const MAX_STACK = 4;

const KIND_OF_PREFIX: Record<string, NodeKind> = {
  sa: 'actor',
  user: 'actor',
  group: 'actor',
  pod: 'pod',
  binding: 'binding',
  role: 'role',
  ns: 'namespace',
  namespace: 'namespace',
  secret: 'secret',
  svc: 'service',
  service: 'service',
  workload: 'workload',
  resource: 'resource',
  policy: 'policy',
  ip: 'ip',
  node: 'node',
};

export function kindOf(key: string): NodeKind {
  const i = key.indexOf(':');
  return (i < 0 ? undefined : KIND_OF_PREFIX[key.slice(0, i)]) ?? 'entity';
}

const nameOf = (key: string): string => {
  const i = key.indexOf(':');
  return i < 0 ? key : key.slice(i + 1);
};

export function truncate(s: string, max = LABEL_CHARS): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** The type line and the name of an entity key, e.g. binding:ClusterRoleBinding/x → ["ClusterRoleBinding", "x"]. */
export function describe(key: string): { type: string; name: string } {
  const kind = kindOf(key);
  const name = nameOf(key);
  const slash = name.indexOf('/');
  switch (kind) {
    case 'actor':
      return { type: key.startsWith('sa:') ? 'ServiceAccount' : key.startsWith('group:') ? 'Group' : 'User', name };
    case 'binding':
    case 'role':
      return slash < 0 ? { type: kind === 'binding' ? 'Binding' : 'Role', name } : { type: name.slice(0, slash), name: name.slice(slash + 1) };
    case 'policy':
      return slash < 0 ? { type: 'Policy', name } : { type: `${name.slice(0, slash)} policy`, name: name.slice(slash + 1) };
    case 'resource':
      return { type: 'All namespaces', name };
    case 'namespace':
      return { type: 'Namespace', name };
    case 'secret':
      return { type: 'Secret', name };
    case 'service':
      return { type: 'Service', name };
    case 'pod':
      return { type: 'Pod', name };
    case 'workload':
      return { type: 'Workload', name };
    case 'ip':
      return { type: 'IP address', name };
    case 'node':
      return { type: 'Node', name };
    default:
      return { type: 'Entity', name: key };
  }
}

const COLUMN_OF: Partial<Record<NodeKind, number>> = { actor: 0, binding: 2, role: 3, policy: 5 };

const RESOURCE_PREFIX: Record<string, string> = {
  secrets: 'secret',
  pods: 'pod',
  services: 'svc',
  namespaces: 'ns',
  workloads: 'workload',
  deployments: 'workload',
  statefulsets: 'workload',
  daemonsets: 'workload',
  replicasets: 'workload',
  jobs: 'workload',
  cronjobs: 'workload',
};
const CHAIN = new Set<NodeKind>(['actor', 'binding', 'role', 'policy', 'ip', 'node', 'namespace']);
const prefixed = (prefix: string, v: string): string => (v.includes(':') && v.startsWith(`${prefix}:`) ? v : `${prefix}:${v}`);

/** The pod a signal's actor acted from (audit `actorPod`, traces `pod`). */
export function actorPodOf(e: Entry): string | undefined {
  const p = e.attributes.actorPod ?? e.attributes.pod;
  return p ? prefixed('pod', p) : undefined;
}

/** What a signal acted on, as an entity key. */
export function targetOf(e: Entry): string {
  const t = e.target ?? {};
  const ns = typeof t.namespace === 'string' ? t.namespace : undefined;
  const name = typeof t.name === 'string' ? t.name : undefined;
  const resource = typeof t.resource === 'string' ? t.resource : undefined;
  if (resource) {
    if (resource === 'namespaces' && name) return `ns:${name}`;
    const p = RESOURCE_PREFIX[resource];
    if (p && name) return `${p}:${ns ? `${ns}/` : ''}${name}`;
    if (name) return `resource:${resource}/${ns ? `${ns}/` : ''}${name}`;
    if (ns) return `resource:${resource} in ${ns}`;
    return `resource:${resource}`;
  }
  // No resource (mesh logs): the most specific entity the signal names that is not its own chain.
  const pod = actorPodOf(e);
  const cand = e.entities.find((k) => k !== pod && k !== e.actor && !CHAIN.has(kindOf(k)));
  if (cand) return cand;
  if (ns && name) return `workload:${ns}/${name}`;
  if (typeof t.service === 'string' && t.service) return prefixed('svc', t.service);
  if (ns) return `ns:${ns}`;
  const nsEntity = e.entities.find((k) => kindOf(k) === 'namespace');
  return nsEntity ?? 'resource:unknown';
}

/** The admission policies that blocked a signal: `policy:` entities, or audit's admission attributes. */
export function policiesOf(e: Entry): string[] {
  const out = new Set(e.entities.filter((k) => kindOf(k) === 'policy'));
  const engine = e.attributes.admissionEngine;
  const names = e.attributes.admissionPolicies;
  if (engine && names)
    for (const n of names.split(',')) {
      const v = n.trim();
      if (v) out.add(`policy:${engine}/${v}`);
    }
  return [...out];
}

/** The enabling bindings named by the root cause (evidence of type `enabler`). */
export function enablersOf(evidence: readonly Evidence[] | undefined): Set<string> {
  return new Set((evidence ?? []).filter((e) => e.type === 'enabler' && e.entity).map((e) => e.entity!));
}

const outcomeRank: Record<Outcome, number> = { allowed: 0, denied: 1, failed: 2, unknown: 3 };

interface RawEdge {
  from: string;
  to: string;
  relation: Relation;
  outcome: Outcome;
  ids: Set<string>;
  verbs: Set<string>;
}

/**
 * The graph of an incident: `entries` are its signals, `actor` its actor's key (for signals
 * without one), `evidence` the root cause's (for the enabling binding).
 */
export function buildGraph(entries: readonly Entry[], actor: string, evidence?: readonly Evidence[]): GraphModel {
  const enablers = enablersOf(evidence);
  const touch = new Map<string, Set<string>>();
  const add = (key: string, id: string) => {
    let s = touch.get(key);
    if (!s) touch.set(key, (s = new Set()));
    s.add(id);
  };
  const raw = new Map<string, RawEdge>();
  // Pods the actor ran in sit in the pod column; other pods are targets.
  const actorPods = new Set<string>();
  const columnOf = (k: string): number => {
    const kind = kindOf(k);
    return kind === 'pod' || kind === 'workload' ? (actorPods.has(k) ? 1 : 4) : (COLUMN_OF[kind] ?? 4);
  };
  const edge = (from: string, to: string, relation: Relation, outcome: Outcome, id: string, verb?: string) => {
    if (from === to) return;
    const structural = relation !== 'access' && relation !== 'blocked-by';
    const k = structural ? `${from}|${to}|${relation}` : `${from}|${to}|${relation}|${outcome}`;
    let r = raw.get(k);
    if (!r) raw.set(k, (r = { from, to, relation, outcome, ids: new Set(), verbs: new Set() }));
    r.ids.add(id);
    if (verb) r.verbs.add(verb);
  };

  for (const e of entries) {
    const a = e.actor || actor;
    const pod = actorPodOf(e);
    const binding = e.attributes.binding ? prefixed('binding', e.attributes.binding) : undefined;
    const role = e.attributes.role ? prefixed('role', e.attributes.role) : undefined;
    const target = targetOf(e);
    const policies = policiesOf(e);
    for (const k of [a, pod, binding, role, target, ...policies]) if (k) add(k, e.id);
    for (const k of e.entities) if (touch.has(k)) add(k, e.id);
    // Relations are facts, not requests: the pod ran as the actor; a binding named in a signal is the
    // one the authorizer allowed the request through (a later admission denial does not undo that).
    if (pod) {
      actorPods.add(pod);
      edge(a, pod, 'runs-as', 'allowed', e.id);
    }
    if (binding) edge(a, binding, 'bound-by', 'allowed', e.id);
    if (binding && role) edge(binding, role, 'grants', 'allowed', e.id);
    else if (role) edge(a, role, 'grants', 'allowed', e.id);
    const verb = typeof e.target?.verb === 'string' ? e.target.verb : undefined;
    edge(role ?? a, target, 'access', e.outcome, e.id, verb);
    for (const p of policies) edge(target, p, 'blocked-by', 'denied', e.id);
  }
  // Entities other signals touch (namespaces, IPs…) join only as nodes something links to.
  const keys = new Set<string>();
  for (const r of raw.values()) keys.add(r.from).add(r.to);
  if (actor) keys.add(actor);
  for (const e of enablers) if (touch.has(e)) keys.add(e);

  // Columns, busiest first, then folded to their caps.
  const cols: string[][] = [[], [], [], [], [], []];
  for (const k of keys) cols[columnOf(k)]!.push(k);
  const count = (k: string) => touch.get(k)?.size ?? 0;
  const redirect = new Map<string, string>();
  const folded = new Map<string, string[]>();
  cols.forEach((col, c) => {
    col.sort((a, b) => Number(enablers.has(b)) - Number(enablers.has(a)) || count(b) - count(a) || a.localeCompare(b));
    const cap = COLUMN_CAP[c] ?? 6;
    if (col.length > cap) {
      const more = `more:${c}`;
      const rest = col.splice(cap - 1);
      for (const k of rest) redirect.set(k, more);
      folded.set(more, rest);
      col.push(more);
    }
  });
  const to = (k: string) => redirect.get(k) ?? k;

  // Edges between the drawn nodes (folded ones merged into their "+N more").
  const merged = new Map<string, RawEdge>();
  for (const r of raw.values()) {
    const from = to(r.from);
    const dest = to(r.to);
    if (from === dest) continue;
    const k = `${from}|${dest}|${r.relation}|${r.outcome}`;
    const m = merged.get(k);
    if (!m) merged.set(k, { ...r, from, to: dest, ids: new Set(r.ids), verbs: new Set(r.verbs) });
    else {
      for (const i of r.ids) m.ids.add(i);
      for (const v of r.verbs) m.verbs.add(v);
    }
  }

  // Rows: after the first column, order each by where its neighbours sit (fewer crossings).
  const row = new Map<string, number>();
  const used = cols.map((c) => c.length > 0);
  cols.forEach((col, c) => {
    if (c > 0) {
      const bary = (k: string): number => {
        const ys: number[] = [];
        for (const m of merged.values()) {
          if (m.to === k && row.has(m.from)) ys.push(row.get(m.from)!);
          if (m.from === k && row.has(m.to)) ys.push(row.get(m.to)!);
        }
        return ys.length ? ys.reduce((s, y) => s + y, 0) / ys.length : Infinity;
      };
      const b = new Map(col.map((k) => [k, bary(k)]));
      col.sort((x, y) => {
        if (x.startsWith('more:')) return 1;
        if (y.startsWith('more:')) return -1;
        return b.get(x)! - b.get(y)! || kindOf(x).localeCompare(kindOf(y)) || x.localeCompare(y);
      });
    }
    const offset = (Math.max(...cols.map((cc) => cc.length)) - col.length) / 2;
    col.forEach((k, i) => row.set(k, i + offset));
  });

  // Positions: only columns with nodes take space.
  const colX: number[] = [];
  let x = PAD_X;
  const columns: { title: string; x: number }[] = [];
  cols.forEach((_, c) => {
    colX[c] = x;
    if (used[c]) {
      columns.push({ title: COLUMN_TITLES[c]!, x: x + NODE_W / 2 });
      x += NODE_W + COL_GAP;
    }
  });
  const width = Math.max(x - COL_GAP + PAD_X, NODE_W + 2 * PAD_X);
  const rows = Math.max(1, ...cols.map((c) => c.length));
  const height = PAD_TOP + rows * ROW_H - (ROW_H - NODE_H) + PAD_BOTTOM + 12;

  const nodes: GraphNode[] = [];
  const byKey = new Map<string, GraphNode>();
  cols.forEach((col, c) =>
    col.forEach((k) => {
      const f = folded.get(k);
      const d = f ? { type: `${f.length} more`, name: f.length === 1 ? f[0]! : `+${f.length} more` } : describe(k);
      const ids = new Set<string>();
      for (const kk of f ?? [k]) for (const i of touch.get(kk) ?? []) ids.add(i);
      const n: GraphNode = {
        key: k,
        kind: f ? 'more' : kindOf(k),
        column: c,
        type: f ? 'Folded' : d.type,
        label: truncate(f ? `+${f.length} more` : d.name),
        full: f ? `${f.slice(0, 8).join(', ')}${f.length > 8 ? ` and ${f.length - 8} more` : ''}` : `${d.type} ${d.name}`,
        enabler: enablers.has(k),
        signalIds: [...ids],
        ...(f ? { folded: f } : {}),
        x: colX[c]!,
        y: PAD_TOP + 12 + row.get(k)! * ROW_H,
        w: NODE_W,
        h: NODE_H,
      };
      nodes.push(n);
      byKey.set(k, n);
    }),
  );

  // Geometry: parallel edges between the same two nodes are spread apart.
  const groups = new Map<string, RawEdge[]>();
  for (const m of merged.values()) {
    const g = `${m.from}|${m.to}`;
    groups.set(g, [...(groups.get(g) ?? []), m]);
  }
  const edges: GraphEdge[] = [];
  for (const g of groups.values()) {
    g.sort((a, b) => outcomeRank[a.outcome] - outcomeRank[b.outcome]);
    g.forEach((m, i) => {
      const a = byKey.get(m.from)!;
      const b = byKey.get(m.to)!;
      const spread = (i - (g.length - 1) / 2) * 8;
      const x1 = a.x + a.w;
      const y1 = a.y + a.h / 2 + spread;
      const x2 = b.x;
      const y2 = b.y + b.h / 2 + spread;
      // An edge skipping columns runs through the gaps between the nodes of each column it crosses.
      const pts: [number, number][] = [[x1, y1]];
      for (let c = a.column + 1; c < b.column; c++) {
        if (!used[c]) continue;
        const cx = colX[c]!;
        const lin = y1 + ((y2 - y1) * (cx + NODE_W / 2 - x1)) / Math.max(1, x2 - x1);
        const gy =
          freeY(
            nodes.filter((nn) => nn.column === c),
            lin,
          ) + spread;
        pts.push([cx, gy], [cx + NODE_W, gy]);
      }
      pts.push([x2, y2]);
      let path = `M${r1(x1)},${r1(y1)}`;
      for (let k = 1; k < pts.length; k++) {
        const [px, py] = pts[k - 1]!;
        const [qx, qy] = pts[k]!;
        if (k % 2 === 0 && pts.length > 2) path += ` L${r1(qx)},${r1(qy)}`;
        else {
          const dx = Math.max(24, (qx - px) / 2);
          path += ` C${r1(px + dx)},${r1(py)} ${r1(qx - dx)},${r1(qy)} ${r1(qx)},${r1(qy)}`;
        }
      }
      // The label sits on the edge's last stretch, just before the node it points at: nodes are a row
      // apart, so labels of edges into different nodes never collide.
      const labelX = x2 - 40;
      const labelY = y2 - 7 + spread * 1.6;
      const n = m.ids.size;
      const verbs = [...m.verbs].sort().join('/');
      const label =
        m.relation === 'runs-as'
          ? 'runs as'
          : m.relation === 'bound-by'
            ? 'bound by'
            : m.relation === 'grants'
              ? 'grants'
              : m.relation === 'blocked-by'
                ? `blocked ×${n}`
                : m.outcome === 'allowed'
                  ? `${verbs ? `${verbs} ` : ''}×${n}`
                  : `✕ ${m.outcome} ×${n}`;
      edges.push({
        id: `${m.from}|${m.to}|${m.relation}|${m.outcome}`,
        from: m.from,
        to: m.to,
        relation: m.relation,
        outcome: m.outcome,
        count: n,
        signalIds: [...m.ids],
        label,
        path,
        labelX: r1(labelX),
        labelY: r1(labelY),
      });
    });
  }
  // Labels of edges into one node are stacked (in the order their sources sit) instead of drawn over
  // each other; past MAX_STACK the rest go unlabelled (their markers, colours and tooltips remain).
  const into = new Map<string, GraphEdge[]>();
  for (const e of edges) into.set(e.to, [...(into.get(e.to) ?? []), e]);
  for (const [k, list] of into) {
    if (list.length < 2) continue;
    const b = byKey.get(k)!;
    list.sort((p, q) => byKey.get(p.from)!.y - byKey.get(q.from)!.y || outcomeRank[p.outcome] - outcomeRank[q.outcome]);
    const shown = Math.min(list.length, MAX_STACK);
    list.forEach((e, i) => {
      if (i >= MAX_STACK) e.label = '';
      else e.labelY = r1(b.y + b.h / 2 - 7 + (i - (shown - 1) / 2) * 13);
    });
  }
  edges.sort((p, q) => outcomeRank[p.outcome] - outcomeRank[q.outcome] || p.id.localeCompare(q.id));
  return { nodes, edges, columns, width, height, folded: [...folded.values()].reduce((s, f) => s + f.length, 0) };
}

const r1 = (n: number) => Math.round(n * 10) / 10;

/** A height to cross a column at, near `y`, clear of its nodes (and of the tag above an enabler). */
function freeY(col: readonly GraphNode[], y: number): number {
  const blocked = col.map((n) => [n.y - (n.enabler ? 20 : 6), n.y + n.h + 6] as const);
  const free = (v: number) => blocked.every(([lo, hi]) => v < lo || v > hi);
  if (free(y)) return y;
  const cands = blocked.flatMap(([lo, hi]) => [lo - 6, hi + 6]).filter(free);
  return cands.length ? cands.reduce((best, v) => (Math.abs(v - y) < Math.abs(best - y) ? v : best)) : y;
}
