/**
 * SQLite's migration 004 rebuilds `subscribers` with AUTOINCREMENT (issue 13): on a database made
 * by an older version, every subscriber keeps its id, every membership survives the rebuild, and
 * no id the ledger has ever seen (even one removed before the upgrade) is handed out again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { currentVersion, migrate, migrations } from '../../src/store/sqlite/migrate.js';
import { openSqlite } from '../../src/store/sqlite/open.js';

const folders: string[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

it('keeps ids and memberships, and starts new ids past every id the ledger has seen', () => {
  const folder = mkdtempSync(join(tmpdir(), 'newsletter-ids-'));
  folders.push(folder);
  const file = join(folder, 'old.db');
  const db = openSqlite(file, { create: true, readonly: false, busyTimeoutMs: 1000 });
  try {
    // The database as version 3 left it.
    db.exec(
      'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
    );
    for (const m of migrations().filter((m) => m.version <= 3)) {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations VALUES (?, ?, 0)').run(m.version, m.name);
    }
    const add = db.prepare(
      'INSERT INTO subscribers (id, email, address, created_at, updated_at) VALUES (?, ?, ?, 0, 0)',
    );
    add.run(1, 'ann@example.org', 'ann@example.org');
    add.run(2, 'bob@example.org', 'bob@example.org');
    db.exec("INSERT INTO lists (id, name, created_at) VALUES (1, 'news', 0)");
    db.exec('INSERT INTO memberships VALUES (1, 1, 0), (1, 2, 0)');
    // Grace (id 3) was mailed, then removed before the upgrade: the ledger still holds her id.
    db.exec(`INSERT INTO newsletters (id, subject, template_path, status, created_at, updated_at)
             VALUES (1, 's', 't.mjml', 'draft', 0, 0)`);
    db.exec(`INSERT INTO deliveries (newsletter_id, subscriber_id, address, state, message_id, updated_at)
             VALUES (1, 3, 'grace@example.org', 'sent', '<m>', 0)`);

    migrate(db, file, 1);
    expect(currentVersion(db)).toBeGreaterThanOrEqual(4);
    expect(db.prepare('SELECT id, address FROM subscribers ORDER BY id').all()).toEqual([
      { id: 1, address: 'ann@example.org' },
      { id: 2, address: 'bob@example.org' },
    ]);
    expect(db.prepare('SELECT list_id, subscriber_id FROM memberships ORDER BY subscriber_id').all()).toEqual(
      [
        { list_id: 1, subscriber_id: 1 },
        { list_id: 1, subscriber_id: 2 },
      ],
    );
    expect(db.pragma('foreign_key_check')).toEqual([]);

    // Removing the newest subscriber no longer frees its id, nor Grace's.
    db.exec("DELETE FROM subscribers WHERE address = 'bob@example.org'");
    const carol = db
      .prepare(
        "INSERT INTO subscribers (email, address, created_at, updated_at) VALUES ('c@x.org', 'c@x.org', 0, 0)",
      )
      .run();
    expect(Number(carol.lastInsertRowid)).toBe(4);
    // The memberships' foreign key follows the rebuilt table: removing a subscriber still cascades.
    expect(db.prepare('SELECT count(*) AS n FROM memberships WHERE subscriber_id = 2').get()).toEqual({
      n: 0,
    });
  } finally {
    db.close();
  }
});
