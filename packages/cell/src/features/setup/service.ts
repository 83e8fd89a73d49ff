import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.js';
import { readSetting, writeSetting } from '../../db/settings.js';
import { errors } from '../../http/errors.js';
import { nowIso } from '../../lib/tokens.js';
import { passwordProblem } from '../../lib/password-strength.js';
import { createUser, countAdmins, type PublicUser } from '../users/service.js';
import { checkIdentity, checkNetwork, type Identity, type Network } from '../config/schema.js';
import { readCellSettings, writeIdentity, writeNetwork } from '../config/service.js';
import { STEPS, STEP_SCHEMAS, type AdminStep, type StepName } from './schema.js';

const SETUP_KEY = 'setup';

/** Where the wizard stands: the next step to submit, 'complete' once reviewed, null once finished. */
export interface SetupProgress {
  step: StepName | 'complete' | null;
  complete: boolean;
  completed_at?: string;
}

const FRESH: SetupProgress = { step: 'admin', complete: false };

/**
 * In-memory mirror of the wizard's progress, so the API guard can ask "is setup complete?"
 * on every request without a query. The database stays the source of truth.
 */
export class SetupState {
  private progress: SetupProgress = FRESH;

  async load(db: Kysely<Database>): Promise<void> {
    this.progress = (await readSetting<SetupProgress>(db, SETUP_KEY)) ?? FRESH;
  }

  get current(): SetupProgress {
    return this.progress;
  }

  isComplete(): boolean {
    return this.progress.complete;
  }

  /** Call after the transaction that wrote `progress` has committed. */
  committed(progress: SetupProgress): void {
    this.progress = progress;
  }
}

export function presentStatus(progress: SetupProgress) {
  return {
    complete: progress.complete,
    step: progress.step,
    steps: STEPS,
    completed_at: progress.completed_at ?? null,
  };
}

/** The current step's name, its JSON schema and the values to prefill. */
export async function describeStep(db: Kysely<Database>, progress: SetupProgress) {
  const step = progress.step;
  if (step === null || step === 'complete') return { step, data: {}, schema: null };
  const settings = await readCellSettings(db);
  const data: Record<string, unknown> =
    step === 'admin'
      ? { username: 'admin' }
      : step === 'identity'
        ? settings.identity
        : step === 'network'
          ? settings.network
          : { identity: settings.identity, network: settings.network, admins: await countAdmins(db) };
  return { step, data, schema: STEP_SCHEMAS[step] };
}

export type StepResult = { progress: SetupProgress; createdAdmin?: PublicUser };

/** The schema and extra checks for a step's body. */
export function stepValidator(step: SetupProgress['step']) {
  switch (step) {
    case 'admin':
      return { schema: STEP_SCHEMAS.admin };
    case 'identity':
      return { schema: STEP_SCHEMAS.identity, check: (b: Identity) => checkIdentity(b) };
    case 'network':
      return { schema: STEP_SCHEMAS.network, check: (b: Network) => checkNetwork(b) };
    case 'review':
      return { schema: STEP_SCHEMAS.review };
    default:
      return undefined;
  }
}

/**
 * The admin step's password must not be easy to guess: 422 naming why. `body` was validated
 * against the step's schema. Before the transaction: the check may load its dictionaries.
 */
export async function checkAdminPassword(step: SetupProgress['step'], body: unknown): Promise<void> {
  if (step !== 'admin') return;
  const { username, password } = body as AdminStep;
  const problem = await passwordProblem(password, [username]);
  if (problem) throw errors.validation({ password: problem }, `password ${problem}`);
}

/**
 * Stores the validated body of step `step` and advances, inside `trx`. The step is re-read in the
 * transaction, so two browsers cannot both submit it, and a body validated for a step that has
 * since moved on is refused.
 */
export async function submitStep(
  trx: Kysely<Database>,
  step: SetupProgress['step'],
  body: unknown,
  hashAdminPassword: (password: string) => Promise<string>,
): Promise<StepResult> {
  const progress = (await readSetting<SetupProgress>(trx, SETUP_KEY)) ?? FRESH;
  if (progress.complete || progress.step === null) throw errors.conflict('setup is already complete');
  if (progress.step === 'complete') throw errors.conflict('every step is done; POST /api/setup/complete to finish');
  if (progress.step !== step) throw errors.conflict(`the current step is now "${progress.step}"; reload it`);

  let createdAdmin: PublicUser | undefined;
  if (step === 'admin') {
    const { username, password } = body as AdminStep;
    createdAdmin = await createUser(trx, { username, role: 'admin', passwordHash: await hashAdminPassword(password) });
  } else if (step === 'identity') {
    await writeIdentity(trx, body as Identity);
  } else if (step === 'network') {
    await writeNetwork(trx, body as Network);
  }
  const next: SetupProgress = { step: nextStep(progress.step), complete: false };
  await writeSetting(trx, SETUP_KEY, next);
  return { progress: next, createdAdmin };
}

function nextStep(step: StepName): StepName | 'complete' {
  const i = STEPS.indexOf(step);
  return STEPS[i + 1] ?? 'complete';
}

export async function completeSetup(trx: Kysely<Database>): Promise<SetupProgress> {
  const progress = (await readSetting<SetupProgress>(trx, SETUP_KEY)) ?? FRESH;
  if (progress.complete) throw errors.conflict('setup is already complete');
  if (progress.step !== 'complete') {
    throw errors.conflict(`setup is not finished: the current step is "${progress.step}"`);
  }
  const done: SetupProgress = { step: null, complete: true, completed_at: nowIso() };
  await writeSetting(trx, SETUP_KEY, done);
  return done;
}
