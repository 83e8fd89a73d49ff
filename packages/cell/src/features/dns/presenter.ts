export function presentRecord(r: { id: number; name: string; type: string; value: string; created_at: string }) {
  return { id: r.id, name: r.name, type: r.type, value: r.value, created_at: r.created_at };
}
