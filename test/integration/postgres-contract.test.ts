/**
 * The Store contract suite (store-contract.test.ts), unchanged, against a real PostgreSQL server.
 *
 * The suite loops over `makeStoreFactories()`; until that list carries the PostgreSQL factory
 * itself, this file swaps the list for [postgresFactory()] and loads the suite, so that every
 * contract test runs here against PostgreSQL (and the SQLite-only process race at its end
 * selects nothing). Once `makeStoreFactories()` includes `postgresFactory()` when POSTGRES.ok,
 * this file can go.
 */
import { afterAll, vi } from 'vitest';
import { POSTGRES, POSTGRES_MISSING, stopSharedCluster } from '../helpers/postgres.js';

vi.mock('../helpers/store-fixtures.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../helpers/store-fixtures.js')>();
  const { POSTGRES: available, postgresFactory } = await import('../helpers/postgres.js');
  return { ...original, makeStoreFactories: () => (available.ok ? [postgresFactory()] : []) };
});

afterAll(stopSharedCluster);

if (!POSTGRES.ok) {
  const { it } = await import('vitest');
  it('Store contract: postgres needs a PostgreSQL server', () => {
    throw new Error(POSTGRES_MISSING);
  });
} else {
  await import('./store-contract.test.js');
}
