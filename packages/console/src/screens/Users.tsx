import { useState } from 'react';
import { useMutation, useQuery } from '@tanstack/react-query';
import { api } from '../api';
import { ConfirmButton, CopyButton, ErrorBox, Loading, Page, formatTime } from '../ui';

interface User {
  id: number;
  username: string;
  role: string;
  disabled: boolean;
  must_change_password: boolean;
  created_at: string;
}

export function Users() {
  const [offset, setOffset] = useState(0);
  const list = useQuery({
    queryKey: ['users', offset],
    queryFn: () => api.get<{ users: User[]; total: number }>(`/api/auth/users?limit=100&offset=${offset}`),
  });
  const reset = useMutation({
    mutationFn: (username: string) =>
      api.post<{ username: string; password: string }>('/api/auth/admin/reset-password', { username }),
  });
  return (
    <Page title="Users">
      <ErrorBox error={list.error} title="Cannot list the users" />
      <ErrorBox error={reset.error} title="Password not reset" />
      {reset.data && (
        <div className="secret" role="status">
          New password for <strong>{reset.data.username}</strong>: <span className="mono">{reset.data.password}</span>{' '}
          <CopyButton value={reset.data.password} label="new password" />. Shown only now; they must change it when they
          sign in.
        </div>
      )}
      {list.isPending && <Loading what="users" />}
      {list.data && (
        <>
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">User</th>
                  <th scope="col">Role</th>
                  <th scope="col">State</th>
                  <th scope="col">Created</th>
                  <th scope="col">Action</th>
                </tr>
              </thead>
              <tbody>
                {list.data.users.map((u) => (
                  <tr key={u.id}>
                    <td>{u.username}</td>
                    <td>{u.role}</td>
                    <td>{u.disabled ? 'disabled' : u.must_change_password ? 'must change password' : 'active'}</td>
                    <td>{formatTime(u.created_at)}</td>
                    <td>
                      <ConfirmButton
                        label={`Reset password of ${u.username}`}
                        confirm={`Reset ${u.username}'s password? They are signed out.`}
                        onConfirm={() => reset.mutate(u.username)}
                      />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <nav className="pager" aria-label="Pages of users">
            <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - 100))}>
              Previous
            </button>
            <span>{list.data.total} users</span>
            <button type="button" disabled={offset + 100 >= list.data.total} onClick={() => setOffset(offset + 100)}>
              Next
            </button>
          </nav>
        </>
      )}
    </Page>
  );
}
