import { useEffect, type ReactNode } from 'react';
import { Link, Redirect, Route, Switch, useLocation } from 'wouter';
import { navigate } from 'wouter/use-browser-location';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, ApiError, setAuthProblemHandler, setCsrf } from './api';
import { homeOf, useMe } from './session';
import { ErrorBox, Loading } from './ui';
import { Login, ChangePassword } from './screens/Auth';
import { screenChunk } from './screen-chunk';

// The login is the first screen most visits show, so it is in the first bundle; every other screen
// is its own chunk, fetched when it is opened (the first load stays small and parses fast).
const Setup = screenChunk(() => import('./screens/Setup').then((m) => m.Setup));
const Dashboard = screenChunk(() => import('./screens/Dashboard').then((m) => m.Dashboard));
const Peers = screenChunk(() => import('./screens/Peers').then((m) => m.Peers));
const PeerDetail = screenChunk(() => import('./screens/Peers').then((m) => m.PeerDetail));
const Store = screenChunk(() => import('./screens/Store').then((m) => m.Store));
const Portal = screenChunk(() => import('./screens/Portal').then((m) => m.Portal));
const Vault = screenChunk(() => import('./screens/Vault').then((m) => m.Vault));
const Audit = screenChunk(() => import('./screens/Audit').then((m) => m.Audit));
const Users = screenChunk(() => import('./screens/Users').then((m) => m.Users));

// The screen the page opens on starts loading now, alongside the session check, not after it.
const opening: Record<string, { preload(): Promise<unknown> }> = {
  setup: Setup,
  dashboard: Dashboard,
  peers: window.location.pathname.split('/').length > 2 ? PeerDetail : Peers,
  store: Store,
  portal: Portal,
  vault: Vault,
  audit: Audit,
  users: Users,
};
void opening[window.location.pathname.split('/')[1] ?? '']?.preload().catch(() => undefined);

const here = () => window.location.pathname + window.location.search;

setAuthProblemHandler((kind) => {
  const path = window.location.pathname;
  if (kind === 'login' && !path.startsWith('/login') && !path.startsWith('/setup')) {
    navigate(`/login?next=${encodeURIComponent(here())}`);
  } else if (kind === 'change-password' && !path.startsWith('/change-password')) {
    navigate(`/change-password?next=${encodeURIComponent(here())}`);
  }
});

/** `/`: the wizard before setup, the login after it, or the signed-in user's home. */
function Root() {
  const status = useQuery({
    queryKey: ['setup-status'],
    queryFn: () => api.get<{ complete: boolean }>('/api/setup/status', { quiet: true }),
    retry: false,
  });
  const me = useMe();
  if (status.isPending) return <Loading what="the cell" />;
  // After setup the status needs a session: a 401 here means "set up, nobody signed in".
  if (status.error instanceof ApiError && status.error.status === 401) return <Redirect to="/login" replace />;
  if (status.error) return <ErrorBox error={status.error} title="Cannot reach the cell" />;
  if (!status.data.complete) return <Redirect to="/setup" replace />;
  if (me.isPending) return <Loading what="your session" />;
  if (me.error) return <Redirect to="/login" replace />;
  return <Redirect to={homeOf(me.data.role)} replace />;
}

/** Screens for one role: nobody signed in → login (and back here after), the wrong role → its own home. */
function RequireRole({ role, children }: { role: 'admin' | 'peer'; children: ReactNode }) {
  const me = useMe();
  if (me.isPending) return <Loading what="your session" />;
  if (me.error?.status === 401) return <Redirect to={`/login?next=${encodeURIComponent(here())}`} replace />;
  if (me.error) return <ErrorBox error={me.error} title="Cannot tell who is signed in" />;
  if (me.data.must_change_password)
    return <Redirect to={`/change-password?next=${encodeURIComponent(here())}`} replace />;
  if (me.data.role !== role) return <Redirect to={homeOf(me.data.role)} replace />;
  return <>{children}</>;
}

/** The screens each role can open. */
const SCREENS_OF = { admin: [Dashboard, Peers, Store, Vault, Audit, Users], peer: [Portal] };

function Nav() {
  const me = useMe();
  const qc = useQueryClient();
  const [location] = useLocation();
  const role = me.data?.role;
  // Once we know who is signed in, their screens load in the background, so following a link
  // renders the screen at once (and its heading can take the focus) instead of "Loading…".
  useEffect(() => {
    if (!role) return;
    const t = setTimeout(() => {
      for (const s of SCREENS_OF[role]) void s.preload().catch(() => undefined);
    }, 500);
    return () => clearTimeout(t);
  }, [role]);
  const logout = useMutation({
    mutationFn: () => api.post('/api/auth/logout'),
    onSuccess: () => {
      setCsrf(undefined);
      qc.clear();
      navigate('/login');
    },
  });
  if (!me.data) return null;
  const links =
    me.data.role === 'admin'
      ? [
          ['/dashboard', 'Dashboard'],
          ['/peers', 'Peers'],
          ['/store', 'Store'],
          ['/vault', 'Vault'],
          ['/audit', 'Audit'],
          ['/users', 'Users'],
        ]
      : [['/portal', 'My connection']];
  return (
    <header className="top">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <span className="brand">PIC</span>
      <nav aria-label="Main">
        <ul>
          {links.map(([href, label]) => (
            <li key={href}>
              <Link href={href!} aria-current={location.startsWith(href!) ? 'page' : undefined}>
                {label}
              </Link>
            </li>
          ))}
        </ul>
      </nav>
      <div className="me">
        <span className="muted">{me.data.username}</span>
        <Link href="/change-password">Change password</Link>
        <button type="button" onClick={() => logout.mutate()} disabled={logout.isPending}>
          Log out
        </button>
      </div>
      <ErrorBox error={logout.error} title="Logging out failed" />
    </header>
  );
}

/** Moves focus to the new screen's heading, so keyboard and screen reader users know the page changed. */
function useFocusOnNavigate() {
  const [location] = useLocation();
  // biome-ignore lint/correctness/useExhaustiveDependencies: `location` is the trigger: run on every navigation
  useEffect(() => {
    const h1 = document.getElementById('page-title');
    if (h1 && document.activeElement === document.body) h1.focus({ preventScroll: true });
  }, [location]);
}

export function App() {
  useFocusOnNavigate();
  return (
    <>
      <Nav />
      <main id="main">
        <Switch>
          <Route path="/" component={Root} />
          <Route path="/setup" component={Setup} />
          <Route path="/login" component={Login} />
          <Route path="/change-password" component={ChangePassword} />
          <Route path="/dashboard">
            <RequireRole role="admin">
              <Dashboard />
            </RequireRole>
          </Route>
          <Route path="/peers">
            <RequireRole role="admin">
              <Peers />
            </RequireRole>
          </Route>
          <Route path="/peers/:name">
            {(params) => (
              <RequireRole role="admin">
                <PeerDetail name={params.name} />
              </RequireRole>
            )}
          </Route>
          <Route path="/store">
            <RequireRole role="admin">
              <Store />
            </RequireRole>
          </Route>
          <Route path="/vault">
            <RequireRole role="admin">
              <Vault />
            </RequireRole>
          </Route>
          <Route path="/audit">
            <RequireRole role="admin">
              <Audit />
            </RequireRole>
          </Route>
          <Route path="/users">
            <RequireRole role="admin">
              <Users />
            </RequireRole>
          </Route>
          <Route path="/portal">
            <RequireRole role="peer">
              <Portal />
            </RequireRole>
          </Route>
          <Route>
            <section className="page">
              <h1 id="page-title">Not found</h1>
              <p>
                There is no such screen. <Link href="/">Go to the start</Link>.
              </p>
            </section>
          </Route>
        </Switch>
      </main>
    </>
  );
}
