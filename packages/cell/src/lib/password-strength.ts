/**
 * The password rule beyond length (the schemas keep 12-1024 characters): not whitespace only, and
 * not easy to guess, as judged by zxcvbn-ts (a strength estimator that knows ~40,000 common
 * passwords, keyboard rows, repeats, sequences, dates and l33t spellings).
 *
 * Its dictionaries are ~400 kB of code, needed only when a password is chosen (the wizard,
 * change-password), so they are loaded on first use, in a chunk of their own (scripts/bundle-cell.mjs).
 */
import type { ZxcvbnFactory } from '@zxcvbn-ts/core';

/** zxcvbn's score 0-4; 3 is "safely unguessable" (about 10^10 guesses), what a chosen password needs. */
export const MIN_SCORE = 3;

/** Why zxcvbn found it weak, in words (it gives keys; its English translations are a package of their own). */
const REASONS: Record<string, string> = {
  straightRow: 'it is a row of keys',
  keyPattern: 'it is a keyboard pattern',
  simpleRepeat: 'it repeats a character',
  extendedRepeat: 'it repeats a pattern',
  sequences: 'it is a sequence like abc or 123',
  recentYears: 'it contains a recent year',
  dates: 'it contains a date',
  topTen: 'it is among the ten most used passwords',
  topHundred: 'it is among the hundred most used passwords',
  common: 'it is a common password',
  similarToCommon: 'it is close to a common password',
  wordByItself: 'it is a single word',
  namesByThemselves: 'it is a name',
  commonNames: 'it is made of common names',
  userInputs: 'it contains the user name or the cell name',
};

let estimator: Promise<ZxcvbnFactory> | undefined;

/**
 * Both packages ship CommonJS as `main` (and ES modules as `module`): Node names their exports, but
 * in the bundle a dynamic import of CommonJS gives them under `default`. Either way, the exports.
 */
function cjsExports<T extends object>(mod: T): T {
  const inner = (mod as { default?: unknown }).default;
  return Object.keys(mod).length <= 1 && inner && typeof inner === 'object' ? (inner as T) : mod;
}

function loadEstimator(): Promise<ZxcvbnFactory> {
  estimator ??= (async () => {
    const [core, common] = await Promise.all([import('@zxcvbn-ts/core'), import('@zxcvbn-ts/language-common')]).then(
      ([c, l]) => [cjsExports(c), cjsExports(l)] as const,
    );
    return new core.ZxcvbnFactory({ dictionary: { ...common.dictionary }, graphs: common.adjacencyGraphs });
  })().catch((err: unknown) => {
    estimator = undefined; // try again next time rather than keep a failed load
    throw err;
  });
  return estimator;
}

/**
 * What is wrong with a password someone chose, as a field message, or undefined when it is fine.
 * `related` are words a guesser would try first: the user name, the cell's name and domain.
 */
export async function passwordProblem(password: string, related: string[] = []): Promise<string | undefined> {
  if (/^\s*$/u.test(password)) return 'must not be only spaces';
  const zxcvbn = await loadEstimator();
  const result = await zxcvbn.check(
    password,
    related.filter((w) => w.length > 0),
  );
  if (result.score >= MIN_SCORE) return undefined;
  const reason = REASONS[result.feedback.warning ?? ''];
  return `is too easy to guess${reason ? ` (${reason})` : ''}; use a longer phrase of unrelated words`;
}
