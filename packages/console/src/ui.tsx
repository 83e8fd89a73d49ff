import { useId, useState, type ReactNode } from 'react';
import { ApiError } from './api';

/** An API error in words: the cell's message, the field messages, and the code for searching the wiki. */
export function ErrorBox({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  const e = error instanceof ApiError ? error : undefined;
  const message = e ? e.message : error instanceof Error ? error.message : String(error);
  const fields = e ? Object.entries(e.fields) : [];
  return (
    <div className="error" role="alert">
      <strong>{title ?? 'Something went wrong'}:</strong> {message}
      {e && (
        <span className="code">
          {' '}
          ({e.code}, HTTP {e.status || 'no answer'})
        </span>
      )}
      {fields.length > 0 && (
        <ul>
          {fields.map(([k, v]) => (
            <li key={k}>
              <code>{k}</code>: {v}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function fieldError(error: unknown, name: string): string | undefined {
  return error instanceof ApiError ? error.fields[name] : undefined;
}

interface FieldProps {
  label: string;
  name: string;
  value: string;
  onChange: (v: string) => void;
  type?: string;
  error?: string;
  hint?: string;
  required?: boolean;
  autoComplete?: string;
  placeholder?: string;
}

/** A labelled input whose error (from the API's `fields`) is announced with it. */
export function Field({
  label,
  name,
  value,
  onChange,
  type = 'text',
  error,
  hint,
  required,
  autoComplete,
  placeholder,
}: FieldProps) {
  const id = useId();
  const errId = `${id}-err`;
  const hintId = `${id}-hint`;
  const describedBy = [error ? errId : '', hint ? hintId : ''].filter(Boolean).join(' ') || undefined;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        name={name}
        type={type}
        value={value}
        required={required}
        autoComplete={autoComplete}
        placeholder={placeholder}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy}
        onChange={(e) => onChange(e.target.value)}
      />
      {hint && (
        <small id={hintId} className="hint">
          {hint}
        </small>
      )}
      {error && (
        <small id={errId} className="field-error">
          {error}
        </small>
      )}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="loading" role="status">
      Loading {what}…
    </p>
  );
}

export function Page({ title, children, actions }: { title: string; children: ReactNode; actions?: ReactNode }) {
  return (
    <section className="page" aria-labelledby="page-title">
      <header className="page-head">
        <h1 id="page-title" tabIndex={-1}>
          {title}
        </h1>
        {actions && <div className="actions">{actions}</div>}
      </header>
      {children}
    </section>
  );
}

/** Copies a value to the clipboard and says so (or says why not). */
export function CopyButton({ value, label }: { value: string; label: string }) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  const copy = async () => {
    try {
      if (navigator.clipboard && window.isSecureContext) await navigator.clipboard.writeText(value);
      else copyThroughSelection(value);
      setState('copied');
    } catch {
      setState('failed');
    }
    setTimeout(() => setState('idle'), 2000);
  };
  return (
    <button type="button" className="small" onClick={copy} aria-label={`Copy ${label}`}>
      {state === 'copied' ? 'Copied' : state === 'failed' ? 'Copy failed: select and copy by hand' : 'Copy'}
    </button>
  );
}

/** Where the Clipboard API is missing (plain http to the cell's address): the older copy command. */
function copyThroughSelection(value: string): void {
  const area = document.createElement('textarea');
  area.value = value;
  area.setAttribute('readonly', '');
  area.className = 'offscreen';
  document.body.append(area);
  area.select();
  const ok = document.execCommand('copy');
  area.remove();
  if (!ok) throw new Error('copy refused');
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export interface Series {
  name: string;
  points: Array<{ t: number; v: number }>;
  className: string;
}

/** A small line chart in inline SVG: time on x, value on y, with a text summary for screen readers. */
export function LineChart({
  series,
  label,
  format,
}: {
  series: Series[];
  label: string;
  format: (v: number) => string;
}) {
  const W = 600;
  const H = 160;
  const P = 28;
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return <p className="muted">No data yet for {label.toLowerCase()}.</p>;
  const t0 = Math.min(...all.map((p) => p.t));
  const t1 = Math.max(...all.map((p) => p.t));
  const vMax = Math.max(1e-9, ...all.map((p) => p.v));
  const x = (t: number) => P + ((t - t0) / Math.max(1, t1 - t0)) * (W - 2 * P);
  const y = (v: number) => H - P - (v / vMax) * (H - 2 * P);
  return (
    <figure className="chart">
      <svg
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-label={`${label}: up to ${format(vMax)}`}
        preserveAspectRatio="none"
      >
        <line x1={P} y1={H - P} x2={W - P} y2={H - P} className="axis" />
        <line x1={P} y1={P} x2={P} y2={H - P} className="axis" />
        <text x={P + 2} y={P - 8} className="tick">
          {format(vMax)}
        </text>
        <text x={P} y={H - 8} className="tick">
          {new Date(t0).toLocaleTimeString()}
        </text>
        <text x={W - P} y={H - 8} className="tick" textAnchor="end">
          {new Date(t1).toLocaleTimeString()}
        </text>
        {series.map((s) => (
          <polyline
            key={s.name}
            className={`line ${s.className}`}
            points={s.points.map((p) => `${x(p.t)},${y(p.v)}`).join(' ')}
          />
        ))}
      </svg>
      <figcaption>
        {label}
        {series.length > 1 && (
          <span className="legend">
            {series.map((s) => (
              <span key={s.name} className={`key ${s.className}`}>
                {s.name}
              </span>
            ))}
          </span>
        )}
      </figcaption>
    </figure>
  );
}

/** A two-step confirmation in place: the first press asks, the second does it. */
export function ConfirmButton({
  label,
  confirm,
  onConfirm,
  disabled,
}: {
  label: string;
  confirm: string;
  onConfirm: () => void;
  disabled?: boolean;
}) {
  const [asking, setAsking] = useState(false);
  if (!asking)
    return (
      <button type="button" className="danger" disabled={disabled} onClick={() => setAsking(true)}>
        {label}
      </button>
    );
  return (
    // biome-ignore lint/a11y/useSemanticElements: a question and its buttons inline, not form fields for a <fieldset>
    <span className="confirm" role="group" aria-label={confirm}>
      <span>{confirm}</span>
      <button
        type="button"
        className="danger"
        // biome-ignore lint/a11y/noAutofocus: the confirmation replaces the button that had focus; focus follows it
        autoFocus
        onClick={() => {
          setAsking(false);
          onConfirm();
        }}
      >
        Yes, {label.toLowerCase()}
      </button>
      <button type="button" onClick={() => setAsking(false)}>
        Cancel
      </button>
    </span>
  );
}
