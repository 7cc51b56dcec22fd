/**
 * The root cause: the correlator's summary, its confidence, and each piece of evidence with a
 * button that filters the timeline to exactly the signals behind it. The enabling binding (evidence
 * of type `enabler`) stands out: its own colour, border and label.
 */
import type { RootCause as RootCauseT } from '../types';
import type { TimelineFilter } from './Timeline';

const TYPE_LABEL: Record<string, string> = {
  enabler: 'Enabling binding',
  actor: 'Actor',
  'first-signal': 'First signal',
  credential: 'Credential',
  novelty: 'First time',
  'blocked-by': 'Blocked by',
  mesh: 'Mesh',
};

export function RootCause({
  rootCause,
  filter,
  onFilter,
}: {
  rootCause?: RootCauseT;
  filter?: TimelineFilter;
  onFilter: (f: TimelineFilter | undefined) => void;
}) {
  if (!rootCause) return <p class="muted">No root cause was derived for this incident.</p>;
  const confidence = typeof rootCause.confidence === 'number' ? Math.round(rootCause.confidence * 100) : undefined;
  return (
    <div data-testid="root-cause" class="root-cause">
      <p class="rc-summary">
        {rootCause.summary}
        {confidence !== undefined ? <span class="rc-conf"> Confidence {confidence}%</span> : null}
      </p>
      <ul class="evidence-list">
        {rootCause.evidence.map((ev, i) => {
          const key = `evidence:${i}`;
          const on = filter?.key === key;
          const label = TYPE_LABEL[ev.type] ?? ev.type;
          const n = ev.signalIds.length;
          return (
            <li key={key} data-testid="evidence" data-type={ev.type} class={`evidence${ev.type === 'enabler' ? ' enabler' : ''}`}>
              <span class={`ev-type t-${ev.type.replace(/[^a-z0-9-]/gi, '')}`}>{ev.type === 'enabler' ? `★ ${label}` : label}</span>
              <div class="ev-body">
                {ev.entity ? <div class="mono ev-entity">{ev.entity}</div> : null}
                <div class="ev-detail">{ev.detail}</div>
              </div>
              {n > 0 ? (
                <button
                  type="button"
                  class="secondary ev-signals"
                  aria-pressed={on}
                  aria-label={`${n} signal${n === 1 ? '' : 's'}: show in the timeline (${label})`}
                  onClick={() => {
                    onFilter(on ? undefined : { key, label: `${label.toLowerCase()} evidence${ev.entity ? ` ${ev.entity}` : ''}`, ids: new Set(ev.signalIds) });
                    if (!on) document.getElementById('timeline-section')?.scrollIntoView({ block: 'start' });
                  }}
                >
                  {n} signal{n === 1 ? '' : 's'}
                </button>
              ) : null}
            </li>
          );
        })}
      </ul>
    </div>
  );
}
