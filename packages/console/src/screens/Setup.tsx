import { useEffect, useState, type FormEvent } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { Redirect } from 'wouter';
import { navigate } from 'wouter/use-browser-location';
import { api, ApiError, setCsrf } from '../api';
import { ErrorBox, Field, Loading, Page, fieldError } from '../ui';

interface JsonSchema {
  type?: string;
  required?: string[];
  properties?: Record<string, PropSchema>;
}
interface PropSchema {
  type?: string;
  anyOf?: PropSchema[];
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  errorMessage?: string;
}
interface StepAnswer {
  step: string;
  data: Record<string, unknown>;
  schema: JsonSchema | null;
}

const STEP_TITLES: Record<string, string> = {
  admin: 'Create the administrator',
  identity: 'Name your cell',
  network: 'The VPN network',
  review: 'Review and finish',
  complete: 'Finish setup',
};
const LABELS: Record<string, string> = {
  username: 'Admin username',
  password: 'Admin password',
  cell_name: 'Cell name',
  domain: 'Domain',
  wireguard_port: 'WireGuard port',
  subnet: 'VPN subnet (CIDR)',
  endpoint: 'Public endpoint (host:port)',
};

const typeOf = (p: PropSchema): string => p.type ?? p.anyOf?.find((a) => a.type !== 'null')?.type ?? 'string';
const nullable = (p: PropSchema): boolean => p.anyOf?.some((a) => a.type === 'null') ?? false;

function hintFor(p: PropSchema): string | undefined {
  if (p.errorMessage) return p.errorMessage.replace(/^must be/, 'Must be');
  const inner = p.anyOf?.find((a) => a.type !== 'null') ?? p;
  if (inner.minimum !== undefined && inner.maximum !== undefined)
    return `A number from ${inner.minimum} to ${inner.maximum}`;
  if (inner.maxLength !== undefined)
    return `Up to ${inner.maxLength} characters${nullable(p) ? ', may be left empty' : ''}`;
  return undefined;
}

/** The first-run wizard: each step's fields, prefill and rules come from GET /api/setup/step. */
export function Setup() {
  const qc = useQueryClient();
  const status = useQuery({
    queryKey: ['setup-status'],
    queryFn: () =>
      api.get<{ complete: boolean; step: string | null; steps: string[] }>('/api/setup/status', { quiet: true }),
    retry: false,
  });
  const step = useQuery<StepAnswer, ApiError>({
    queryKey: ['setup-step'],
    queryFn: () => api.get<StepAnswer>('/api/setup/step', { quiet: true }),
    enabled: status.data?.complete === false,
    retry: false,
  });
  const [values, setValues] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!step.data?.schema?.properties) return;
    const v: Record<string, string> = {};
    for (const name of Object.keys(step.data.schema.properties)) {
      const pre = step.data.data[name];
      v[name] = pre === null || pre === undefined ? '' : String(pre);
    }
    setValues(v);
    setError(null);
  }, [step.data]);

  if (status.error instanceof ApiError && status.error.status === 401) return <Redirect to="/login" replace />;
  if (status.data?.complete) return <Redirect to="/" replace />;
  if (status.error) return <ErrorBox error={status.error} title="Cannot read the setup status" />;
  if (step.error?.status === 401) return <Redirect to={`/login?next=${encodeURIComponent('/setup')}`} replace />;
  if (step.error) return <ErrorBox error={step.error} title="Cannot read the setup step" />;
  if (!step.data || !status.data) return <Loading what="the setup wizard" />;

  const { schema } = step.data;
  const current = step.data.step;
  const steps = status.data.steps;
  const props = schema?.properties ?? {};
  const required = new Set(schema?.required ?? []);

  const finish = async () => {
    await api.post('/api/setup/complete', {});
    const csrf = await api.get<{ token: string }>('/api/auth/csrf-token', { quiet: true });
    setCsrf(csrf.token);
    await qc.invalidateQueries();
    navigate('/dashboard', { replace: true });
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body: Record<string, unknown> = {};
      for (const [name, p] of Object.entries(props)) {
        const raw = values[name] ?? '';
        if (raw === '' && nullable(p)) body[name] = null;
        else if (raw === '' && !required.has(name)) continue;
        else
          body[name] =
            typeOf(p) === 'integer' || typeOf(p) === 'number' ? (/^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw) : raw;
      }
      const res = await api.post<{ step: string; csrf_token?: string }>('/api/setup/step', body, { quiet: true });
      if (res.csrf_token) setCsrf(res.csrf_token);
      if (res.step === 'complete') await finish();
      else await qc.invalidateQueries({ queryKey: ['setup-step'] });
      await qc.invalidateQueries({ queryKey: ['setup-status'] });
      await qc.invalidateQueries({ queryKey: ['me'] });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const review =
    current === 'review'
      ? (step.data.data as { identity?: Record<string, unknown>; network?: Record<string, unknown> })
      : undefined;
  const index = steps.indexOf(current);
  return (
    <Page title={`Set up your cell: ${STEP_TITLES[current] ?? current}`}>
      <ol className="steps" aria-label="Setup steps">
        {steps.map((s, i) => (
          <li
            key={s}
            aria-current={s === current ? 'step' : undefined}
            className={i < index || current === 'complete' ? 'done' : ''}
          >
            {STEP_TITLES[s] ?? s}
          </li>
        ))}
      </ol>
      <form onSubmit={submit} noValidate className="card">
        {Object.entries(props).map(([name, p]) => (
          <Field
            key={name}
            name={name}
            label={LABELS[name] ?? name}
            type={name === 'password' ? 'password' : typeOf(p) === 'integer' ? 'number' : 'text'}
            autoComplete={name === 'password' ? 'new-password' : name === 'username' ? 'username' : 'off'}
            value={values[name] ?? ''}
            onChange={(v) => setValues((old) => ({ ...old, [name]: v }))}
            required={required.has(name)}
            hint={hintFor(p)}
            error={fieldError(error, name)}
          />
        ))}
        {review && (
          <dl className="kv">
            {Object.entries({ ...review.identity, ...review.network }).map(([k, v]) => (
              <div key={k}>
                <dt>{LABELS[k] ?? k}</dt>
                <dd>{v === null || v === undefined ? '–' : String(v)}</dd>
              </div>
            ))}
          </dl>
        )}
        <ErrorBox error={error} title="This step was not accepted" />
        {current === 'complete' ? (
          <button type="button" className="primary" disabled={busy} onClick={() => void finish().catch(setError)}>
            Finish setup
          </button>
        ) : (
          <button type="submit" className="primary" disabled={busy}>
            {current === 'review' ? 'Finish setup' : 'Continue'}
          </button>
        )}
      </form>
    </Page>
  );
}
