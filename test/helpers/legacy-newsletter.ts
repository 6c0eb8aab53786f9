/**
 * A newsletter as an upgraded database holds one created before templates were stored (issue 14):
 * migration 008 (SQLite) leaves its template columns empty, so its build reads the file on disk.
 * Since `create` stores the template it checked, this is the only newsletter whose build can fail
 * at send time; tests of a failed build make one this way. The one direct write these tests make
 * to a database: the state cannot be reached through this version's CLI.
 */
import Database from 'better-sqlite3';

export function asCreatedBeforeStoredTemplates(dbPath: string, newsletterId: number): void {
  const db = new Database(dbPath);
  try {
    const changed = db
      .prepare('UPDATE newsletters SET template_source = NULL, template_stored_at = NULL WHERE id = ?')
      .run(newsletterId).changes;
    if (changed !== 1) throw new Error(`no newsletter ${newsletterId} in ${dbPath}`);
  } finally {
    db.close();
  }
}
