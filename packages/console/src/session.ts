import { useQuery } from '@tanstack/react-query';
import { api, type ApiError } from './api';

export interface Me {
  id: number;
  username: string;
  role: 'admin' | 'peer';
  must_change_password: boolean;
}

/** Who is signed in; undefined data with a 401 error when nobody is. */
export function useMe() {
  return useQuery<Me, ApiError>({
    queryKey: ['me'],
    queryFn: async () => (await api.get<{ user: Me }>('/api/auth/me', { quiet: true })).user,
    staleTime: 60_000,
  });
}

export const homeOf = (role: 'admin' | 'peer' | undefined): string => (role === 'peer' ? '/portal' : '/dashboard');

/** A `next` parameter that stays inside the console (never another origin, never the API). */
export function safeNext(next: string | null): string | undefined {
  // a path of this origin only: "/x…", never "//host" or "/\\host" (browsers read a backslash as a slash)
  if (
    !next ||
    !/^\/(?![/\\])/.test(next) ||
    /[\\\s]/.test(next) ||
    next.startsWith('/api/') ||
    next.startsWith('/login')
  ) {
    return undefined;
  }
  return next;
}
