import { useState, type FormEvent } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { useSearch } from 'wouter';
import { navigate } from 'wouter/use-browser-location';
import { api, ApiError, setCsrf } from '../api';
import { homeOf, safeNext, useMe, type Me } from '../session';
import { ErrorBox, Field, Page, fieldError } from '../ui';

export function Login() {
  const qc = useQueryClient();
  const next = safeNext(new URLSearchParams(useSearch()).get('next'));
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const res = await api.post<{ user: Omit<Me, 'id'>; csrf_token: string }>(
        '/api/auth/login',
        { username, password },
        { quiet: true },
      );
      setCsrf(res.csrf_token);
      qc.clear();
      if (res.user.must_change_password) {
        navigate(`/change-password?next=${encodeURIComponent(next ?? homeOf(res.user.role))}`, { replace: true });
      } else {
        navigate(next && !(res.user.role === 'peer' && !next.startsWith('/portal')) ? next : homeOf(res.user.role), {
          replace: true,
        });
      }
    } catch (err) {
      setError(err);
      setPassword('');
    } finally {
      setBusy(false);
    }
  };

  return (
    <Page title="Sign in to your cell">
      <form className="card narrow" onSubmit={submit}>
        {next && <p className="muted">Sign in to continue to {next}.</p>}
        <Field
          label="Username"
          name="username"
          value={username}
          onChange={setUsername}
          autoComplete="username"
          required
        />
        <Field
          label="Password"
          name="password"
          type="password"
          value={password}
          onChange={setPassword}
          autoComplete="current-password"
          required
        />
        <ErrorBox error={error} title="Not signed in" />
        <button type="submit" className="primary" disabled={busy}>
          Sign in
        </button>
      </form>
    </Page>
  );
}

export function ChangePassword() {
  const qc = useQueryClient();
  const me = useMe();
  const next = safeNext(new URLSearchParams(useSearch()).get('next'));
  const [current, setCurrent] = useState('');
  const [fresh, setFresh] = useState('');
  const [again, setAgain] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState(false);
  const [busy, setBusy] = useState(false);

  if (me.error instanceof ApiError && me.error.status === 401) {
    navigate(`/login?next=${encodeURIComponent('/change-password')}`, { replace: true });
    return null;
  }
  const forced = me.data?.must_change_password === true;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    if (fresh !== again) {
      setError(
        new ApiError(400, 'passwords_differ', 'the two new passwords differ', {
          confirm: 'must repeat the new password',
        }),
      );
      return;
    }
    setBusy(true);
    try {
      await api.post('/api/auth/change-password', { current_password: current, new_password: fresh }, { quiet: true });
      setDone(true);
      setCurrent('');
      setFresh('');
      setAgain('');
      await qc.invalidateQueries({ queryKey: ['me'] });
      if (forced || next) navigate(next ?? homeOf(me.data?.role), { replace: true });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Page title="Change your password">
      <form className="card narrow" onSubmit={submit}>
        {forced && (
          <p className="notice" role="status">
            An administrator reset your password. Choose a new one before you continue.
          </p>
        )}
        <Field
          label="Current password"
          name="current_password"
          type="password"
          value={current}
          onChange={setCurrent}
          autoComplete="current-password"
          required
          error={fieldError(error, 'current_password')}
        />
        <Field
          label="New password"
          name="new_password"
          type="password"
          value={fresh}
          onChange={setFresh}
          autoComplete="new-password"
          required
          hint="At least 12 characters"
          error={fieldError(error, 'new_password')}
        />
        <Field
          label="New password again"
          name="confirm"
          type="password"
          value={again}
          onChange={setAgain}
          autoComplete="new-password"
          required
          error={fieldError(error, 'confirm')}
        />
        <ErrorBox error={error} title="Password not changed" />
        {done && (
          <p className="ok" role="status">
            Your password is changed. Other devices signed in as you were signed out.
          </p>
        )}
        <button type="submit" className="primary" disabled={busy}>
          Change password
        </button>
      </form>
    </Page>
  );
}
