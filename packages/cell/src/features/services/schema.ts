import { Type, type Static } from '@sinclair/typebox';
import type { FieldErrors } from '../../http/errors.js';
import { USERNAME_PATTERN } from './accounts.js';

/** `{"peer": "<peer name>"}` (the username is the peer's name) or `{"username": "…"}`: exactly one. */
export const CreateAccountBody = Type.Object(
  {
    peer: Type.Optional(Type.String({ minLength: 1, maxLength: 63 })),
    username: Type.Optional(
      Type.String({
        pattern: USERNAME_PATTERN,
        errorMessage: 'must be 1-64 of a-z 0-9 . _ -, starting with a letter or digit',
      }),
    ),
  },
  { additionalProperties: false },
);
export type CreateAccountBody = Static<typeof CreateAccountBody>;

export function checkCreateAccount(input: CreateAccountBody): FieldErrors {
  if ((input.peer === undefined) === (input.username === undefined))
    return { peer: 'give exactly one of peer and username' };
  return {};
}
