/** The one session koa-stack.mjs knows (its cookie value), shared with core.mjs. */
export const SESSION_ID = 'bench-session-id-0123456789abcdefghijklmnopq';
