import { useEffect, useState, type ComponentType } from 'react';
import { ErrorBox, Loading } from './ui';

/**
 * A screen that lives in its own chunk, fetched the first time it is needed (or earlier, with
 * `preload`). Not React.lazy: a suspended screen's content is held back for React's fallback
 * throttle (300 ms) even when its chunk arrives sooner; this shows "Loading…" only while the chunk
 * is really on its way, and renders the screen in the same pass once it is there.
 */
export function screenChunk<P extends object>(load: () => Promise<ComponentType<P>>) {
  let ready: ComponentType<P> | undefined;
  let pending: Promise<ComponentType<P>> | undefined;
  const preload = (): Promise<ComponentType<P>> => {
    pending ??= load().then(
      (c) => (ready = c),
      (err: unknown) => {
        pending = undefined; // the next visit tries again
        throw err;
      },
    );
    return pending;
  };
  // biome-ignore lint/correctness/noComponentHookFactories: made once per screen at module level, never during a render
  function Screen(props: P) {
    const [, loaded] = useState(0);
    const [error, setError] = useState<unknown>();
    useEffect(() => {
      if (!ready) preload().then(() => loaded((n) => n + 1), setError);
    }, []);
    // The cell went away, or was updated while this page was open and the old build's files are gone.
    if (error)
      return (
        <section className="page">
          <ErrorBox error={error} title="This screen could not be loaded" />
          <button type="button" onClick={() => window.location.reload()}>
            Reload the console
          </button>
        </section>
      );
    if (!ready) return <Loading what="the screen" />;
    const Ready = ready;
    return <Ready {...props} />;
  }
  return Object.assign(Screen, { preload });
}
