/**
 * A small history router: the path picks the page, the query string holds a page's filters, so
 * every view is a shareable URL and a reload keeps it. Links are ordinary <a href> elements that
 * {@link interceptLinks} turns into pushState navigations.
 */
import { useEffect, useState } from 'preact/hooks';

export type Route =
  { page: 'incidents' } | { page: 'incident'; id: string } | { page: 'signals' } | { page: 'rules' } | { page: 'system' } | { page: 'not-found'; path: string };

export function parseRoute(pathname: string): Route {
  if (pathname === '/' || pathname === '/incidents' || pathname === '/incidents/') return { page: 'incidents' };
  const m = /^\/incidents\/([^/]+)\/?$/.exec(pathname);
  if (m) return { page: 'incident', id: decodeURIComponent(m[1]!) };
  if (pathname === '/signals') return { page: 'signals' };
  if (pathname === '/rules') return { page: 'rules' };
  if (pathname === '/system') return { page: 'system' };
  return { page: 'not-found', path: pathname };
}

const listeners = new Set<() => void>();
const notify = () => {
  for (const l of listeners) l();
};
let listening = false;

/** Goes to a URL inside the console (path and query). `replace` keeps the history entry (filters). */
export function navigate(url: string, replace = false): void {
  if (replace) history.replaceState(null, '', url);
  else {
    history.pushState(null, '', url);
    // A new page starts at its top (filters, which replace, keep the scroll position).
    window.scrollTo(0, 0);
  }
  notify();
}

/** The current location, re-rendering on navigation. */
export function useLocation(): { pathname: string; search: URLSearchParams } {
  const [, set] = useState(0);
  useEffect(() => {
    if (!listening) {
      window.addEventListener('popstate', notify);
      listening = true;
    }
    const l = () => set((n) => n + 1);
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, []);
  return { pathname: location.pathname, search: new URLSearchParams(location.search) };
}

/** Sets (or, with '' / undefined, removes) query parameters of the current page, keeping the path. */
export function setSearch(params: Record<string, string | undefined>): void {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(params))
    if (v) q.set(k, v);
    else q.delete(k);
  const s = q.toString();
  navigate(`${location.pathname}${s ? `?${s}` : ''}`, true);
}

/** Same-origin <a> clicks become history navigations (modifier clicks still open new tabs). */
export function interceptLinks(root: HTMLElement): void {
  root.addEventListener('click', (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = (e.target as Element | null)?.closest?.('a');
    if (!a || a.target || a.hasAttribute('download')) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
    // A link to a place on this page ("Skip to content") is the browser's to follow.
    if (url.hash && url.pathname === location.pathname && url.search === location.search) return;
    e.preventDefault();
    navigate(url.pathname + url.search + url.hash);
  });
}
