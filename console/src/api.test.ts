import { afterEach, describe, expect, it, vi } from 'vitest';
import { api, ApiError, dismissAuthProblem, lastAuthProblem, setToken } from './api';

const problem = (detail: string, status = 401) => new Response(JSON.stringify({ title: 'Unauthorized', detail }), { status, statusText: 'Unauthorized' });

afterEach(() => {
  vi.unstubAllGlobals();
  dismissAuthProblem();
  setToken(undefined);
});

describe('api() and the token prompt', () => {
  /** A wrong token in use, refused by the API: the prompt explains why. */
  async function refuseWrongToken(): Promise<void> {
    setToken('wrong-token');
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => problem('the bearer token is not valid for api')),
    );
    await expect(api('/api/v1/rules')).rejects.toBeInstanceOf(ApiError);
  }

  it('reports a 401 with the server explanation of the token in use', async () => {
    await refuseWrongToken();
    expect(lastAuthProblem()).toEqual({ status: 401, message: 'the bearer token is not valid for api' });
  });

  it('does not let a request its page aborted replace the explanation (its body cannot be read)', async () => {
    await refuseWrongToken();
    const ctrl = new AbortController();
    // The 401 arrives, then the page goes away before its body is read: what the browser does when
    // another request's 401 puts up the prompt and unmounts the list.
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => {
        const body = new ReadableStream({ start: (c) => ctrl.signal.addEventListener('abort', () => c.error(new DOMException('aborted', 'AbortError'))) });
        const res = new Response(body, { status: 401, statusText: 'Unauthorized' });
        ctrl.abort();
        return res;
      }),
    );
    await expect(api('/api/v1/incidents', { signal: ctrl.signal })).rejects.toBeInstanceOf(ApiError);
    expect(lastAuthProblem()).toEqual({ status: 401, message: 'the bearer token is not valid for api' });
  });

  it('ignores the answer to a request sent with a token the user has since replaced', async () => {
    let answer!: (r: Response) => void;
    vi.stubGlobal(
      'fetch',
      vi.fn(() => new Promise<Response>((r) => (answer = r))),
    );
    const stale = api('/api/v1/rules'); // sent without a token
    setToken('new-token');
    answer(problem('send Authorization: Bearer <token> (the api token)'));
    await expect(stale).rejects.toBeInstanceOf(ApiError);
    expect(lastAuthProblem()).toBeUndefined();
  });
});
