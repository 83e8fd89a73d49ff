import { Type } from '@sinclair/typebox';

/** Usernames: 2-32 characters, lowercase, starting with a letter. */
export const Username = Type.String({
  pattern: '^[a-z][a-z0-9_.-]{1,31}$',
  errorMessage: 'must be 2-32 characters: lowercase letters, digits, _ . -, starting with a letter',
});

export const MIN_PASSWORD = 12;
export const Password = Type.String({
  minLength: MIN_PASSWORD,
  maxLength: 1024,
  errorMessage: `must be ${MIN_PASSWORD} to 1024 characters`,
});
