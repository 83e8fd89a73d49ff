// The parts every list screen (peers, audit, users, vault) shares: a filter form, a select with its
// label, a table that scrolls on its own on a narrow screen, and a pager over the API's offset paging.
import { useId, type ReactNode } from 'react';

/** The filters above a list: a search landmark whose fields filter as you type (nothing to submit). */
export function Filters({ label, children }: { label: string; children: ReactNode }) {
  return (
    // biome-ignore lint/a11y/useSemanticElements: <form role="search"> is the landmark every browser knows; <search> is newer than some phones' browsers
    <form className="filters" role="search" aria-label={label} onSubmit={(e) => e.preventDefault()}>
      {children}
    </form>
  );
}

/** A labelled select; `options` are [value, text] pairs. */
export function SelectField({
  label,
  value,
  onChange,
  options,
  className = 'field',
}: {
  className?: string;
  label: string;
  value: string;
  onChange: (v: string) => void;
  options: ReadonlyArray<readonly [string, string]>;
}) {
  const id = useId();
  return (
    <div className={className}>
      <label htmlFor={id}>{label}</label>
      <select id={id} value={value} onChange={(e) => onChange(e.target.value)}>
        {options.map(([v, text]) => (
          <option key={v} value={v}>
            {text}
          </option>
        ))}
      </select>
    </div>
  );
}

/** A table with column headers; on a 360 px screen it scrolls sideways inside its box, not the page. */
export function Table({
  columns,
  className,
  children,
}: {
  columns: ReactNode[];
  className?: string;
  children: ReactNode;
}) {
  return (
    <div className="table-wrap">
      <table className={className}>
        <thead>
          <tr>
            {columns.map((c, i) => (
              // biome-ignore lint/suspicious/noArrayIndexKey: the columns are fixed for a table's life
              <th scope="col" key={i}>
                {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}

/** Back and forward through an offset-paged list of `total`, `size` a page; `children` say where we are. */
export function Pager({
  label,
  offset,
  size,
  total,
  onOffset,
  previous = 'Previous page',
  next = 'Next page',
  children,
}: {
  label: string;
  offset: number;
  size: number;
  total: number;
  onOffset: (offset: number) => void;
  previous?: string;
  next?: string;
  children: ReactNode;
}) {
  return (
    <nav className="pager" aria-label={label}>
      <button type="button" disabled={offset === 0} onClick={() => onOffset(Math.max(0, offset - size))}>
        {previous}
      </button>
      <span>{children}</span>
      <button type="button" disabled={offset + size >= total} onClick={() => onOffset(offset + size)}>
        {next}
      </button>
    </nav>
  );
}
