/** Small shared pieces: severity and status badges, source chips. Text only, never markup from data. */
import type { IncidentStatus, Severity } from '../types';

export function SeverityBadge({ severity }: { severity: Severity }) {
  return <span class={`badge sev-${severity}`}>{severity}</span>;
}

export function StatusBadge({ status }: { status: IncidentStatus }) {
  return (
    <span class={`badge status-${status}`} data-testid="status">
      {status}
    </span>
  );
}

export function SourceChips({ sources }: { sources: readonly string[] }) {
  return (
    <span class="chips">
      {sources.map((s) => (
        <span class={`chip src-${s.replace(/[^a-z0-9-]/gi, '')}`} key={s}>
          {s}
        </span>
      ))}
    </span>
  );
}
