/**
 * Asks for the API token when the API answers 401 (no or wrong token) or 403 (a read token on a
 * write). The token goes to this tab's sessionStorage and, from then on, into every request's
 * Authorization header; nothing is shown until the API accepts it.
 */
import { useEffect, useState } from 'preact/hooks';
import { dismissAuthProblem, getToken, lastAuthProblem, onTokenChange, setToken, tokenAccepted } from '../api';

export function useAuthProblem(): { status: number; message: string } | undefined {
  const [p, set] = useState(lastAuthProblem());
  useEffect(() => onTokenChange(() => set(lastAuthProblem())), []);
  return p;
}

export function TokenForm({ problem }: { problem: { status: number; message: string } }) {
  const [value, setValue] = useState('');
  const [refused, setRefused] = useState<string | undefined>();
  const [checking, setChecking] = useState(false);
  const write = problem.status === 403;
  return (
    <form
      class="token-form"
      data-testid="token-form"
      onSubmit={(e) => {
        e.preventDefault();
        const token = value.trim();
        if (!token) return;
        if (!write) {
          setToken(token);
          return;
        }
        // Asked for on a write: the page and what the user typed stay; a mistyped token is refused
        // here rather than replacing the read token that works.
        setChecking(true);
        tokenAccepted(token)
          .then((r) => (r.ok ? setToken(token, { reload: false }) : setRefused(r.message)))
          .catch((err: unknown) => setRefused(String(err)))
          .finally(() => setChecking(false));
      }}
    >
      <h2>{write ? 'This action needs the API write token' : 'kubevigil needs an API token'}</h2>
      <p>
        {write
          ? 'The token in use may only read. Give the write token (KUBEVIGIL_API_TOKEN), then repeat the action: what you typed on the page is kept.'
          : 'The API is protected. Give the read token (KUBEVIGIL_API_READ_TOKEN) or the write token (KUBEVIGIL_API_TOKEN).'}
      </p>
      <p class="muted">Server said: {problem.message}</p>
      {refused ? (
        <p class="error" role="alert">
          That token was refused: {refused}
        </p>
      ) : null}
      <label for="token-input">API token</label>
      <input id="token-input" type="password" autocomplete="off" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
      <div class="row">
        <button type="submit" disabled={checking}>
          Use token
        </button>
        {write ? (
          <button type="button" class="secondary" onClick={() => dismissAuthProblem()}>
            Cancel
          </button>
        ) : getToken() ? (
          <button type="button" class="secondary" onClick={() => setToken(undefined)}>
            Forget token
          </button>
        ) : null}
      </div>
      <p class="muted">Kept in this browser tab only (sessionStorage), sent as a bearer token to this kubevigil.</p>
    </form>
  );
}
