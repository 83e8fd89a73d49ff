import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api } from '../api';
import { ConfirmButton, CopyButton, ErrorBox, Loading, Page, formatTime } from '../ui';
import { Pager, Table } from '../lists';

interface User {
  id: number;
  username: string;
  role: string;
  disabled: boolean;
  must_change_password: boolean;
  created_at: string;
}

const PAGE = 100;

export function Users() {
  const [offset, setOffset] = useState(0);
  const list = useQuery({
    queryKey: ['users', offset],
    queryFn: () => api.get<{ users: User[]; total: number }>(`/api/auth/users?limit=${PAGE}&offset=${offset}`),
  });
  const qc = useQueryClient();
  const reset = useMutation({
    mutationFn: (username: string) =>
      api.post<{ username: string; password: string }>('/api/auth/admin/reset-password', { username }),
    // the user's state is now "must change password"
    onSuccess: () => void qc.invalidateQueries({ queryKey: ['users'] }),
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
          <Table columns={['User', 'Role', 'State', 'Created', 'Action']}>
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
          </Table>
          <Pager label="Pages of users" offset={offset} size={PAGE} total={list.data.total} onOffset={setOffset}>
            {list.data.total} users
          </Pager>
        </>
      )}
    </Page>
  );
}
