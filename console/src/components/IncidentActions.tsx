/**
 * Acknowledge, resolve and mute (mark benign) an incident. Writes need the write token: a 403 makes
 * api.ts show the token prompt, and the error is repeated here. The page takes the new state from
 * the answer, so the status badge changes at once (the event stream confirms it elsewhere).
 */
import { useState } from 'preact/hooks';
import { ApiError, send } from '../api';
import { formatTime } from '../format';
import type { Incident, IncidentStatus, Note } from '../types';

const errorText = (e: unknown): string =>
  e instanceof ApiError
    ? e.status === 403 || e.status === 401
      ? `Not allowed: ${e.message}`
      : `${e.message} (HTTP ${e.status})`
    : e instanceof Error
      ? e.message
      : String(e);

export function IncidentActions({ incident, onUpdate }: { incident: Incident; onUpdate: (inc: Incident) => void }) {
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [confirming, setConfirming] = useState(false);
  const [duration, setDuration] = useState('7d');
  const [muted, setMuted] = useState<string | undefined>();
  const base = `/api/v1/incidents/${encodeURIComponent(incident.id)}`;

  const transition = async (status: Exclude<IncidentStatus, 'open'>) => {
    setBusy(status);
    setError(undefined);
    try {
      const next = await send<Incident>('PATCH', base, {
        status,
        note: note.trim() || `${status === 'resolved' ? 'Resolved' : 'Acknowledged'} from the console`,
        by: 'console',
      });
      setNote('');
      onUpdate(next);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(undefined);
    }
  };

  const mute = async () => {
    setBusy('mute');
    setError(undefined);
    try {
      const res = await send<{ silenceID: string }>('POST', `${base}/benign`, {
        duration,
        createdBy: 'console',
        ...(note.trim() ? { comment: note.trim() } : {}),
      });
      setMuted(`Muted for ${duration}: silence ${res.silenceID} matches actor ${incident.actor.key} and this incident's ${incident.rules.length} rules.`);
      setConfirming(false);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(undefined);
    }
  };

  const s = incident.status;
  return (
    <div class="actions">
      <label for="action-note">Note (optional)</label>
      <input
        id="action-note"
        type="text"
        maxLength={800}
        value={note}
        placeholder="what you did or found"
        onInput={(e) => setNote((e.target as HTMLInputElement).value)}
      />
      <div class="row">
        <button type="button" data-testid="ack" disabled={s !== 'open' || busy !== undefined} onClick={() => void transition('acknowledged')}>
          {busy === 'acknowledged' ? 'Acknowledging…' : 'Acknowledge'}
        </button>
        <button type="button" data-testid="resolve" disabled={s === 'resolved' || busy !== undefined} onClick={() => void transition('resolved')}>
          {busy === 'resolved' ? 'Resolving…' : 'Resolve'}
        </button>
        <button
          type="button"
          class="secondary"
          data-testid="mute"
          disabled={busy !== undefined || confirming || muted !== undefined}
          aria-expanded={confirming}
          onClick={() => {
            setError(undefined);
            setConfirming(true);
          }}
        >
          Mute actor
        </button>
      </div>
      {confirming ? (
        <div class="confirm" role="group" aria-label="Confirm muting the actor">
          <p>
            Silence new signals of <span class="mono">{incident.actor.key}</span> for this incident's {incident.rules.length} rules? They stop raising incidents
            until the silence ends.
          </p>
          <div class="row">
            <label for="mute-duration">For</label>
            <select id="mute-duration" value={duration} onChange={(e) => setDuration((e.target as HTMLSelectElement).value)}>
              <option value="1h">1 hour</option>
              <option value="24h">24 hours</option>
              <option value="7d">7 days</option>
              <option value="30d">30 days</option>
            </select>
            <button type="button" data-testid="mute-confirm" class="danger" disabled={busy !== undefined} onClick={() => void mute()}>
              {busy === 'mute' ? 'Muting…' : 'Confirm mute'}
            </button>
            <button type="button" class="secondary" onClick={() => setConfirming(false)}>
              Cancel
            </button>
          </div>
        </div>
      ) : null}
      {muted ? (
        <p class="ok" role="status">
          {muted}
        </p>
      ) : null}
      {error ? (
        <p class="error" role="alert" data-testid="action-error">
          {error}
        </p>
      ) : null}
    </div>
  );
}

export function Notes({ notes }: { notes: Note[] }) {
  if (!notes.length) return <p class="muted">No notes yet.</p>;
  return (
    <ol class="notes">
      {notes.map((n, i) => (
        <li key={i}>
          <div class="row">
            <time class="mono muted" dateTime={n.time}>
              {formatTime(n.time)}
            </time>
            {n.status ? <span class={`badge status-${n.status}`}>{n.status}</span> : null}
            {n.by ? <span class="muted">by {n.by}</span> : null}
          </div>
          <div>{n.note}</div>
        </li>
      ))}
    </ol>
  );
}
