/**
 * `newsletter backup FILE`: a consistent, owner-only, checked copy of the SQLite database, taken
 * while cron goes on sending (src/store/sqlite/backup.ts says how). The copy keeps the host
 * binding: restored on another machine, it refuses to send until `newsletter host adopt` there,
 * exactly as a cloned server's database does.
 */
import path from 'node:path';
import { backupNeedsPgDump } from '../../domain/backup.js';
import { describeDatabase } from '../../domain/database-location.js';
import type { Context } from '../context.js';
import { withStore } from '../context.js';
import { isTerminal, printJson, println } from '../output.js';

export async function backupCommand(
  context: Context,
  file: string,
  options: { json?: boolean },
): Promise<void> {
  const database = context.config.database;
  // Refused before connecting: the advice does not depend on reaching the server.
  if (database.kind === 'postgres') throw backupNeedsPgDump(describeDatabase(database));
  const target = path.resolve(context.cwd, file);
  // Any schema: a backup is what one takes before `newsletter init` migrates.
  const result = await withStore(context, { readonly: true, requireCurrentSchema: false }, (store) =>
    store.backup(target),
  );
  if (options.json) {
    printJson({ database: database.path, ...result });
    return;
  }
  // Quiet under cron when all went well (promise 5).
  if (isTerminal() || context.global.verbose)
    println(
      `Backed up ${database.path} to ${result.file} (${result.pages} pages, ${result.bytes} bytes; integrity_check: ok).`,
    );
}
