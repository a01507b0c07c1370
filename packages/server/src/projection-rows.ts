/** Bounds of the row cache (see `ProjectionRows`). */
const ROW_CACHE_CHARS = 4_000_000;
const ROW_CACHE_ROWS = 20_000;

/**
 * A ProjectionDO's rows: one SQLite row per key, its state as JSON text, and a bounded cache
 * of the stored text of recently read or written rows (`null`: no row), newest last. Only its
 * object writes the rows, and the cache is updated only after the page's transaction commits
 * (`remember`), so an entry always equals the stored row: a page folds from the stored state
 * without reading it again. Lost on restart.
 */
export class ProjectionRows {
  private readonly cache = new Map<string, string | null>();
  private cacheChars = 0;

  constructor(private readonly sql: SqlStorage) {
    sql.exec('CREATE TABLE IF NOT EXISTS rows (key TEXT PRIMARY KEY, state TEXT NOT NULL)');
  }

  /** The states of `keys` as stored (absent for a key with no row), each parsed afresh. */
  current(keys: Iterable<string>): Map<string, unknown> {
    const current = new Map<string, unknown>();
    const missing: string[] = [];
    for (const key of keys) {
      const text = this.cache.get(key);
      if (text === undefined) missing.push(key);
      else if (text !== null) current.set(key, JSON.parse(text));
    }
    if (missing.length > 0) {
      const found = new Set<string>();
      for (const row of this.read(missing)) {
        found.add(row.key);
        current.set(row.key, JSON.parse(row.state));
        this.keep(row.key, row.state);
      }
      for (const key of missing) if (!found.has(key)) this.keep(key, null);
    }
    return current;
  }

  /**
   * Writes a page's rows (`null` deletes the key's row); the caller runs it in the page's
   * transaction and calls `remember` once that has committed, or `forget` if it failed. One
   * statement for the upserts and one for the deletes: `json_each` hands SQLite the keys, so
   * the per-statement cost is paid once per page, not once per row.
   */
  write(texts: ReadonlyMap<string, string | null>): void {
    const upserts: Array<[string, string]> = [];
    const deletes: string[] = [];
    for (const [key, text] of texts) {
      if (text === null) deletes.push(key);
      else upserts.push([key, text]);
    }
    if (upserts.length > 0)
      this.sql.exec(
        `INSERT INTO rows (key, state) SELECT value ->> 0, value ->> 1 FROM json_each(?) WHERE true
           ON CONFLICT(key) DO UPDATE SET state = excluded.state`,
        JSON.stringify(upserts),
      );
    if (deletes.length > 0)
      this.sql.exec(
        'DELETE FROM rows WHERE key IN (SELECT value FROM json_each(?))',
        JSON.stringify(deletes),
      );
  }

  /** After the page's transaction committed: its rows as the cache's newest entries. */
  remember(texts: ReadonlyMap<string, string | null>): void {
    for (const [key, text] of texts) this.keep(key, text);
  }

  /** After a failed transaction the rows stayed as they were: forget what we knew of them rather than guess. */
  forget(): void {
    this.cache.clear();
    this.cacheChars = 0;
  }

  private read(keys: string[]): Iterable<{ key: string; state: string }> {
    return this.sql.exec<{ key: string; state: string }>(
      'SELECT key, state FROM rows WHERE key IN (SELECT value FROM json_each(?))',
      JSON.stringify(keys),
    );
  }

  private keep(key: string, text: string | null): void {
    const before = this.cache.get(key);
    if (before !== undefined) {
      this.cache.delete(key);
      this.cacheChars -= key.length + (before?.length ?? 0);
    }
    this.cache.set(key, text);
    this.cacheChars += key.length + (text?.length ?? 0);
    for (const [oldest, old] of this.cache) {
      if (this.cacheChars <= ROW_CACHE_CHARS && this.cache.size <= ROW_CACHE_ROWS) break;
      this.cache.delete(oldest);
      this.cacheChars -= oldest.length + (old?.length ?? 0);
    }
  }
}
