/**
 * Durable Object SQL binds at most 100 values per statement, and its per-statement overhead
 * dominates the per-row cost, so batches are inserted as multi-row VALUES lists of as many
 * rows as fit. (A `json_each` insert was measured slower: it re-parses each row per column.)
 */
export const MAX_BOUND_VALUES = 100;

export function insertRows(
  sql: SqlStorage,
  table: string,
  columns: readonly string[],
  rows: ReadonlyArray<readonly SqlStorageValue[]>,
): void {
  const perStatement = Math.max(1, Math.floor(MAX_BOUND_VALUES / columns.length));
  const tuple = `(${columns.map(() => '?').join(', ')})`;
  const head = `INSERT INTO ${table} (${columns.join(', ')}) VALUES `;
  const statement = (n: number) => head + Array(n).fill(tuple).join(', ');
  const full = statement(perStatement);
  for (let i = 0; i < rows.length; i += perStatement) {
    const chunk = rows.slice(i, i + perStatement);
    sql.exec(chunk.length === perStatement ? full : statement(chunk.length), ...chunk.flat());
  }
}
