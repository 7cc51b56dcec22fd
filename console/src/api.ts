/**
 * The console's only way to the API: same-origin fetch with the bearer token the user gave (kept in
 * this tab's sessionStorage, never in a URL or a cookie), problem+json errors turned into
 * {@link ApiError}s whose message is the server's own explanation.
 */

const TOKEN_KEY = 'kubevigil.token';

/** An API answer that was not 2xx. `status` 401 means no or a wrong token, 403 a read token on a write. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

type TokenListener = () => void;
const tokenListeners = new Set<TokenListener>();
let authProblem: { status: number; message: string } | undefined;
/** Bumped when a token is given after a 401 (or forgotten): the pages load again with it. */
let generation = 0;

export function getToken(): string | undefined {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? memoryToken;
  } catch {
    return memoryToken;
  }
}

let memoryToken: string | undefined;

/**
 * Keeps `token` for this tab. `reload` (the default) makes the pages load again: wanted after a 401,
 * not after a 403 on a write, where the page and what the user typed stay as they are.
 */
export function setToken(token: string | undefined, opts: { reload?: boolean } = {}): void {
  memoryToken = token;
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: the token lives in memory until the page goes */
  }
  if (opts.reload !== false) generation++;
  authProblem = undefined;
  for (const l of tokenListeners) l();
}

/** Changes each time the pages should load again with a new token (see {@link setToken}). */
export function tokenGeneration(): number {
  return generation;
}

/**
 * Whether a 401/403 to a request sent with `sentWith` speaks for the token in use now. A request its
 * page aborted (the page went away, often because another request's 401 put up the prompt) has no
 * readable body, and one sent before the user gave another token answers for the old one: either
 * would replace the server's explanation of the current token with a wrong one.
 */
function answersCurrentToken(sentWith: string | undefined, signal?: AbortSignal | null): boolean {
  return !signal?.aborted && getToken() === sentWith;
}

/** Records a 401/403 and tells the token prompt; api() does it for every call, the event stream too. */
export function reportAuthProblem(status: number, message: string): void {
  authProblem = { status, message };
  for (const l of tokenListeners) l();
}

/** Puts the prompt away without a new token (a write the user gives up). */
export function dismissAuthProblem(): void {
  authProblem = undefined;
  for (const l of tokenListeners) l();
}

/** Whether the API accepts `token` at all (a read): a mistyped token is refused before it replaces a working one. */
export async function tokenAccepted(token: string): Promise<{ ok: boolean; message: string }> {
  const res = await fetch('/api/v1/rules', {
    headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
    credentials: 'omit',
    cache: 'no-store',
  });
  if (res.ok || res.status === 403) return { ok: true, message: '' };
  return { ok: false, message: res.status === 401 ? await problemOf(res) : `HTTP ${res.status}` };
}

/** The last 401/403 the API answered, for the token prompt to explain itself. */
export function lastAuthProblem(): { status: number; message: string } | undefined {
  return authProblem;
}

/** Called whenever the token changes or the API asks for one. */
export function onTokenChange(l: TokenListener): () => void {
  tokenListeners.add(l);
  return () => tokenListeners.delete(l);
}

export function authHeaders(): Record<string, string> {
  const t = getToken();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

async function problemOf(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as { detail?: string; title?: string };
    return body.detail ?? body.title ?? res.statusText;
  } catch {
    return res.statusText || `HTTP ${res.status}`;
  }
}

/** Fetches JSON from the API; throws {@link ApiError} with the server's explanation otherwise. */
export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const sentWith = getToken();
  const headers: Record<string, string> = { Accept: 'application/json', ...authHeaders(), ...(init.headers as Record<string, string> | undefined) };
  const res = await fetch(path, { ...init, headers, credentials: 'omit', cache: 'no-store' });
  if (!res.ok) {
    const message = await problemOf(res);
    if ((res.status === 401 || res.status === 403) && answersCurrentToken(sentWith, init.signal)) reportAuthProblem(res.status, message);
    throw new ApiError(res.status, message);
  }
  return (await res.json()) as T;
}

/** Sends a JSON body (PATCH, POST) and reads the JSON answer. */
export function send<T>(method: 'PATCH' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
  return api<T>(path, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } }),
  });
}

/** A query string from the parameters that are set (empty strings and undefined left out). */
export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
