/**
 * The attack graph, drawn as plain SVG from graph.ts's model: columns actor → pod → binding → role →
 * targets → blocking policy. Allowed edges are solid, denied/failed ones dashed, red and labelled ✕
 * (never colour alone); the enabling binding is thicker and labelled. Every node is a focusable
 * button: clicking it (or Enter/Space) filters the timeline to the signals touching it.
 */
import type { GraphModel, GraphNode } from '../graph';

export interface AttackGraphProps {
  model: GraphModel;
  /** The node whose signals the timeline shows, if any. */
  active?: string;
  onNode: (node: GraphNode) => void;
}

const KIND_WORD: Record<string, string> = {
  actor: 'Actor',
  pod: 'Pod',
  binding: 'Binding',
  role: 'Role',
  namespace: 'Namespace',
  secret: 'Secret',
  service: 'Service',
  workload: 'Workload',
  resource: 'Resource',
  policy: 'Policy',
  ip: 'IP address',
  node: 'Node',
  more: 'More',
  entity: 'Entity',
};

/**
 * The accessible name: the node's visible text first, in order (WCAG 2.5.3, "label in name"), then
 * its kind and full name when the drawing truncated it.
 */
function nodeName(n: GraphNode): string {
  const count = n.signalIds.length;
  const visible = `${n.enabler ? `${ENABLER_TAG} ` : ''}${n.type} ${n.label} ${count} signal${count === 1 ? '' : 's'}`;
  const whole = n.kind === 'more' ? `: ${n.full}` : `, ${KIND_WORD[n.kind] ?? n.kind} ${n.full}${n.enabler ? ', enabling binding' : ''}`;
  return `${visible}${whole}`;
}

const ENABLER_TAG = '★ Enabling binding';

export function AttackGraph({ model, active, onNode }: AttackGraphProps) {
  if (model.nodes.length === 0) return <p class="muted">No entities to draw.</p>;
  const activeNode = active ? model.nodes.find((n) => n.key === active) : undefined;
  const activeIds = activeNode ? new Set(activeNode.signalIds) : undefined;
  return (
    <div class="graph-wrap">
      <svg
        data-testid="attack-graph"
        class="attack-graph"
        role="group"
        aria-label={`Attack graph: ${model.nodes.length} entities, ${model.edges.length} relations. Activate a node to filter the timeline.`}
        viewBox={`0 0 ${model.width} ${model.height}`}
        width={model.width}
        height={model.height}
      >
        <defs>
          <marker id="kv-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" class="m-allowed" />
          </marker>
          <marker id="kv-arrow-muted" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" class="m-structural" />
          </marker>
          <marker id="kv-cross" viewBox="0 0 12 12" refX="11" refY="6" markerWidth="9" markerHeight="9" orient="auto">
            <path d="M2,2 L10,10 M10,2 L2,10" class="m-denied" />
          </marker>
        </defs>
        {model.columns.map((c) => (
          <text key={c.title} class="col-title" x={c.x} y={18} text-anchor="middle">
            {c.title}
          </text>
        ))}
        <g class="edges">
          {model.edges.map((e) => {
            const structural = e.relation === 'runs-as' || e.relation === 'bound-by' || e.relation === 'grants';
            const bad = e.outcome === 'denied' || e.outcome === 'failed';
            const enabler = structural && model.nodes.some((n) => n.enabler && (n.key === e.from || n.key === e.to));
            const dim = activeIds !== undefined && !e.signalIds.some((id) => activeIds.has(id));
            const cls = ['edge', `o-${e.outcome}`, `r-${e.relation}`, structural ? 'structural' : '', enabler ? 'enabler' : '', dim ? 'dim' : '']
              .filter(Boolean)
              .join(' ');
            return (
              <g key={e.id} data-testid="graph-edge" data-outcome={e.outcome} data-relation={e.relation} data-from={e.from} data-to={e.to} class={cls}>
                <title>{`${e.from} → ${e.to}: ${e.label} (${e.outcome}, ${e.count} signal${e.count === 1 ? '' : 's'})`}</title>
                <path d={e.path} marker-end={bad ? 'url(#kv-cross)' : structural && !enabler ? 'url(#kv-arrow-muted)' : 'url(#kv-arrow)'} />
              </g>
            );
          })}
        </g>
        {/* Labels after all the lines, so no line crosses a label (their outline masks what is below). */}
        <g class="edge-labels" aria-hidden="true">
          {model.edges
            .filter((e) => e.label)
            .map((e) => {
              const dim = activeIds !== undefined && !e.signalIds.some((id) => activeIds.has(id));
              return (
                <text key={e.id} x={e.labelX} y={e.labelY} text-anchor="middle" class={`edge-label o-${e.outcome} r-${e.relation}${dim ? ' dim' : ''}`}>
                  {e.label}
                </text>
              );
            })}
        </g>
        <g class="nodes">
          {model.nodes.map((n) => {
            const on = active === n.key;
            const activate = () => onNode(n);
            return (
              <g
                key={n.key}
                data-testid="graph-node"
                data-entity={n.key}
                data-kind={n.kind}
                data-enabler={n.enabler ? 'true' : undefined}
                class={`node k-${n.kind}${n.enabler ? ' enabler' : ''}${on ? ' active' : ''}`}
                transform={`translate(${n.x},${n.y})`}
                tabindex={0}
                role="button"
                aria-pressed={on}
                aria-label={nodeName(n)}
                onClick={activate}
                onKeyDown={(ev) => {
                  if (ev.key === 'Enter' || ev.key === ' ') {
                    ev.preventDefault();
                    activate();
                  }
                }}
              >
                <title>{n.kind === 'more' ? n.full : `${n.full}${n.enabler ? ' (enabling binding)' : ''}`}</title>
                {n.enabler ? (
                  <text class="enabler-tag" x={0} y={-6}>
                    {`${ENABLER_TAG} `}
                  </text>
                ) : null}
                <rect width={n.w} height={n.h} rx={6} />
                <rect class="kind-bar" width={4} height={n.h} rx={2} />
                <text class="n-type" x={12} y={15}>
                  {`${n.type} `}
                </text>
                <text class="n-name" x={12} y={31}>
                  {`${n.label} `}
                </text>
                <text class="n-count" x={n.w - 8} y={15} text-anchor="end">
                  {n.signalIds.length}
                </text>
              </g>
            );
          })}
        </g>
      </svg>
      <ul class="graph-legend" aria-label="Legend">
        <li>
          <span class="lg lg-allowed" aria-hidden="true" /> allowed (solid)
        </li>
        <li>
          <span class="lg lg-denied" aria-hidden="true" /> ✕ denied or failed (dashed)
        </li>
        <li>
          <span class="lg lg-enabler" aria-hidden="true" /> enabling binding (thick, ★)
        </li>
        <li class="muted">Numbers are signal counts. Click a node to filter the timeline; click it again to clear.</li>
      </ul>
    </div>
  );
}
