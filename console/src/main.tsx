/**
 * kubevigil's console: the app shell (navigation, token prompt) and the page for the URL.
 * Served by kubevigil at / from dist/console; talks only to this origin's /api/v1.
 */
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, onTokenChange, tokenGeneration } from './api';
import { TokenForm, useAuthProblem } from './components/TokenGate';
import { IncidentPage } from './pages/Incident';
import { IncidentList } from './pages/IncidentList';
import { RulesPage } from './pages/Rules';
import { SignalsPage } from './pages/Signals';
import { SystemPage } from './pages/System';
import { interceptLinks, parseRoute, useLocation } from './router';
import './styles.css';

const NAV: { href: string; label: string; pages: string[] }[] = [
  { href: '/', label: 'Incidents', pages: ['incidents', 'incident'] },
  { href: '/signals', label: 'Signals', pages: ['signals'] },
  { href: '/rules', label: 'Rules', pages: ['rules'] },
  { href: '/system', label: 'System', pages: ['system'] },
];

function App() {
  const loc = useLocation();
  const route = parseRoute(loc.pathname);
  const problem = useAuthProblem();
  // One probe at start, and again when the user gives a token after a 401, so a protected API asks
  // for the token before any page loads. Only that re-probes and reloads the page: a 401 or 403 also
  // notifies token listeners (re-probing on those would loop), and a write token given after a 403
  // keeps the page as it is (the note typed, the scroll position).
  const [generation, setGeneration] = useState(tokenGeneration());
  useEffect(() => onTokenChange(() => setGeneration(tokenGeneration())), []);
  useEffect(() => {
    api('/api/v1/rules').catch(() => undefined);
  }, [generation]);

  // After a navigation, focus goes to the new page (screen readers announce it; the link that was
  // clicked may be gone), not on the first load.
  const firstPath = useRef(loc.pathname);
  useEffect(() => {
    if (firstPath.current === loc.pathname) return;
    firstPath.current = '';
    document.getElementById('main')?.focus({ preventScroll: true });
  }, [loc.pathname]);

  useEffect(() => {
    const t = route.page === 'incident' ? `Incident ${route.id}` : (NAV.find((n) => n.pages.includes(route.page))?.label ?? 'Not found');
    document.title = `${t} · kubevigil`;
  }, [loc.pathname]);

  const blocked = problem && problem.status === 401;
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="/">
          kubevigil
        </a>
        <nav aria-label="Main">
          {NAV.map((n) => (
            <a key={n.href} href={n.href} aria-current={n.pages.includes(route.page) ? 'page' : undefined}>
              {n.label}
            </a>
          ))}
        </nav>
      </header>
      <main id="main" tabIndex={-1} key={generation}>
        {problem && problem.status === 403 ? <TokenForm problem={problem} /> : null}
        {blocked ? (
          <TokenForm problem={problem} />
        ) : route.page === 'incidents' ? (
          <IncidentList />
        ) : route.page === 'incident' ? (
          <IncidentPage key={route.id} id={route.id} />
        ) : route.page === 'signals' ? (
          <SignalsPage />
        ) : route.page === 'rules' ? (
          <RulesPage />
        ) : route.page === 'system' ? (
          <SystemPage />
        ) : (
          <section>
            <h1>Not found</h1>
            <p>
              Nothing at {route.path}. <a href="/">Back to the incidents</a>.
            </p>
          </section>
        )}
      </main>
    </>
  );
}

const root = document.getElementById('app')!;
interceptLinks(document.body);
render(<App />, root);
