/**
 * What every command needs: the configuration (read once, every problem at once), the store
 * (opened the way the command needs it), and the output mode.
 */
import path from 'node:path';
import { type Config, loadConfig } from '../config.js';
import { describeUnknownVariable } from '../config-variables.js';
import { describeDatabase } from '../domain/database-location.js';
import { DatabaseError } from '../domain/errors.js';
import type { Store } from '../store/store.js';
import { warn } from './output.js';

export interface GlobalOptions {
  envFile?: string;
  database?: string;
  verbose?: boolean;
  quiet?: boolean;
}

export interface Context {
  config: Config;
  cwd: string;
  global: GlobalOptions;
}

/**
 * `warnUnknownVariables`: a misspelt NEWSLETTER_* name is said once, on stderr, by whatever
 * command loaded the configuration; doctor reports it among its checks instead.
 */
export function createContext(global: GlobalOptions, { warnUnknownVariables = true } = {}): Context {
  const cwd = process.cwd();
  const config = loadConfig({
    cwd,
    env: process.env,
    envFile: global.envFile ?? null,
    overrides: { database: global.database },
  });
  if (warnUnknownVariables)
    for (const unknown of config.unknownVariables) warn(describeUnknownVariable(unknown));
  return { config, cwd, global };
}

export interface OpenStoreOptions {
  /** init only. */
  create?: boolean;
  /** Dry runs and read-only views. */
  readonly?: boolean;
  /** Everything but init: refuse a schema older (or newer) than the code. */
  requireCurrentSchema?: boolean;
  /** send-due: SQLite's claims and outcome writes on a thread of their own (ledger-thread.ts). */
  ledgerThread?: boolean;
}

export async function openStore(context: Context, options: OpenStoreOptions = {}): Promise<Store> {
  const target = context.config.database;
  let store: Store;
  if (target.kind === 'postgres') {
    // Loaded only here: SQLite users never load pg. The database itself must exist (`createdb`);
    // `init` creates the tables. There is no file to create and no clone guard: the database is
    // shared by every host on purpose.
    const { PostgresStore } = await import('../store/postgres/postgres-store.js');
    store = await PostgresStore.open(target.url, { readonly: options.readonly ?? false });
  } else {
    const { SqliteStore } = await import('../store/sqlite/sqlite-store.js');
    store = SqliteStore.open(target.path, {
      create: options.create ?? false,
      readonly: options.readonly ?? false,
      busyTimeoutMs: context.config.busyTimeoutMs,
      ledgerThread: options.ledgerThread ?? false,
    });
  }
  if (options.requireCurrentSchema ?? true) {
    const { current, latest } = await store.schemaVersion();
    if (current !== latest) {
      await store.close();
      // Never the password of a postgres:// URL.
      const where = describeDatabase(target);
      throw new DatabaseError(
        current < latest
          ? `The database ${where} has schema version ${current}; this newsletter needs ${latest}.`
          : `The database ${where} has schema version ${current}, newer than this newsletter (${latest}).`,
        [
          current < latest
            ? 'Run `newsletter init` to migrate it (it is safe to run again).'
            : 'Upgrade newsletter on this host.',
        ],
      );
    }
  }
  return store;
}

/** Runs `fn` with an open store and always closes it. */
export async function withStore<T>(
  context: Context,
  options: OpenStoreOptions,
  fn: (store: Store) => Promise<T>,
): Promise<T> {
  const store = await openStore(context, options);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

export function templatesRootOf(templatePath: string): string {
  return path.dirname(templatePath);
}
