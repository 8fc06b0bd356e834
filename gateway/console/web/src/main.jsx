import { render } from 'preact';
import { useEffect, useState, useCallback } from 'preact/hooks';
import { consoleApi, get, post, setCsrfToken, setUnauthorizedHandler } from './api.js';
import { Login } from './pages/Login.jsx';
import { FunctionsList } from './pages/Functions.jsx';
import { CreateFunction } from './pages/Create.jsx';
import { FunctionPage } from './pages/Function.jsx';
import './style.css';

// Routes live in the hash (#/functions/NAME/test), so the gateway serves
// one index.html and reloads keep the page.
function parseRoute(hash) {
  const parts = (hash || '').replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'create') return { page: 'create' };
  if (parts[0] === 'functions' && parts[1]) return { page: 'function', name: parts[1], tab: parts[2] || 'configuration' };
  return { page: 'functions' };
}

function useRoute() {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

// A gateway without the console session endpoint (or dev mode) needs no login.
const devSession = { mode: 'dev', authRequired: false, authenticated: true, csrfToken: '' };

function App() {
  const route = useRoute();
  const [session, setSession] = useState(null);
  const [sessionError, setSessionError] = useState('');

  const applySession = useCallback((s) => {
    setCsrfToken(s.csrfToken);
    setSession(s);
  }, []);

  useEffect(() => {
    get(consoleApi.session)
      .then(applySession)
      .catch((e) => {
        if (e.status === 404) applySession(devSession);
        else setSessionError(e.message);
      });
    setUnauthorizedHandler(() => setSession((s) => (s && s.authRequired ? { ...s, authenticated: false } : s)));
  }, [applySession]);

  useEffect(() => {
    const t = { functions: 'Functions', create: 'Create function', function: route.name }[route.page];
    document.title = `${t} · Nimbus console`;
  }, [route]);

  const logout = async () => {
    try {
      await post(consoleApi.logout);
    } finally {
      setCsrfToken('');
      setSession((s) => ({ ...s, authenticated: false, accessKeyId: '', csrfToken: '' }));
    }
  };

  const needLogin = session && session.authRequired && !session.authenticated;
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="#/functions">
          Nimbus <span>console</span>
        </a>
        {session && !needLogin && (
          <div class="who">
            <span class="badge" title="gateway mode">
              {session.mode || 'dev'}
            </span>
            {session.region && <span class="muted hide-narrow">{session.region}</span>}
            {session.accessKeyId && (
              <span class="muted hide-narrow">
                {session.accessKeyId}
                {session.scope ? ` (${session.scope})` : ''}
              </span>
            )}
            {session.authRequired && (
              <button type="button" class="btn small" onClick={logout}>
                Sign out
              </button>
            )}
          </div>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        {sessionError && (
          <p class="alert" role="alert">
            Cannot reach the gateway: {sessionError}
          </p>
        )}
        {!session && !sessionError && <p class="muted">Loading…</p>}
        {needLogin && <Login onLogin={applySession} />}
        {session && !needLogin && route.page === 'functions' && <FunctionsList />}
        {session && !needLogin && route.page === 'create' && <CreateFunction />}
        {session && !needLogin && route.page === 'function' && <FunctionPage name={route.name} tab={route.tab} session={session} />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app'));
