/**
 * What the fault tests of several hosts share (test/e2e/multihost-faults.test.ts,
 * multihost-restart.test.ts): a host whose clock is off, read-outs of the ledger and the runs,
 * and the checks that "nobody twice" and "nobody stranded" come down to.
 *
 * A host whose clock is off is a real process under libfaketime (Debian's `faketime` package,
 * which .ci/run installs): LD_PRELOAD moves every wall-clock read of that process, Node's
 * Date.now() included, by the offset; its monotonic clock is left alone, as a wrong wall clock
 * leaves it (FAKETIME_DONT_FAKE_MONOTONIC). Preloaded rather than run through the `faketime`
 * command, which would stay between the test and node and catch the signals the tests send.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { CliResult, HostsWorkspace } from './postgres.js';
import type { SmtpSink } from './smtp-sink.js';

function findLibfaketime(): string | null {
  for (const dir of ['/usr/lib', ...safeList('/usr/lib').map((name) => join('/usr/lib', name))]) {
    const path = join(dir, 'faketime', 'libfaketime.so.1');
    if (existsSync(path)) return path;
  }
  return null;
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** The environment that sets a process's wall clock `offset` off (libfaketime's syntax: `+10m`, `-10m`). */
export function skewedClock(offset: string): Record<string, string> {
  const library = findLibfaketime();
  if (!library)
    throw new Error(
      'libfaketime is not installed: `apt-get install faketime` (as .ci/run does); the clock tests need a host whose clock is off.',
    );
  return { LD_PRELOAD: library, FAKETIME: offset, FAKETIME_DONT_FAKE_MONOTONIC: '1' };
}

export interface LedgerRow {
  id: number;
  address: string;
  state: string;
  run_id: number | null;
  reason: string | null;
}

export async function ledger(workspace: HostsWorkspace): Promise<LedgerRow[]> {
  return workspace.query<LedgerRow>(
    'SELECT id, address, state, run_id, reason FROM deliveries WHERE newsletter_id = $1 ORDER BY id',
    [workspace.newsletterId],
  );
}

export interface RunRow {
  id: number;
  host_id: string;
  lease_until: number;
  ended_at: number | null;
  outcome: string | null;
}

/** The first run of `host` (each test host runs once unless said otherwise). */
export async function runOf(workspace: HostsWorkspace, host: string): Promise<RunRow> {
  const [run] = await workspace.query<RunRow>(
    'SELECT id, host_id, lease_until, ended_at, outcome FROM runs WHERE host_id = $1 ORDER BY id LIMIT 1',
    [host],
  );
  if (!run) throw new Error(`no run of ${host}`);
  return run;
}

export async function newsletterStatus(workspace: HostsWorkspace): Promise<string | undefined> {
  const [row] = await workspace.query<{ status: string }>('SELECT status FROM newsletters WHERE id = $1', [
    workspace.newsletterId,
  ]);
  return row?.status;
}

export function expectExit(result: CliResult, allowed: number[]): void {
  expect(allowed, `exit ${result.code} (signal ${result.signal})\n${result.stderr}`).toContain(result.code);
}

/** No crash: no stack trace, no "unexpected failure", no unhandled error event, a plain exit. */
export function expectNoCrash(result: CliResult): void {
  const report = `exit ${result.code}, signal ${result.signal}\n${result.stderr}`;
  expect(result.signal, report).toBeNull();
  expect(result.stderr, report).not.toMatch(/Unhandled 'error' event/);
  expect(result.stderr, report).not.toMatch(/(\n|\\n)\s+at /);
  expect(result.stderr, report).not.toMatch(/Unexpected failure/);
  expect(result.code, report).not.toBe(1);
}

/**
 * Nobody twice, nobody silently skipped: every recipient has exactly one ledger row, none is
 * `claimed`; every `sent` row reached the SMTP server exactly once; nothing reached it twice; an
 * `unknown` row reached it at most once. Returns the rows for further checks.
 */
export async function expectSettledOnce(
  workspace: HostsWorkspace,
  sink: SmtpSink,
  recipients: number,
): Promise<LedgerRow[]> {
  const rows = await ledger(workspace);
  expect(rows).toHaveLength(recipients);
  expect(new Set(rows.map((row) => row.address)).size).toBe(recipients);
  expect(rows.filter((row) => row.state === 'claimed')).toEqual([]);
  for (const row of rows) {
    if (row.state === 'sent') expect(sink.received(row.address), row.address).toBe(1);
    else expect(sink.received(row.address), row.address).toBeLessThanOrEqual(1);
  }
  for (const message of sink.messages)
    for (const to of message.to) expect(sink.received(to), to).toBeLessThanOrEqual(1);
  return rows;
}

/**
 * Resolves once `condition()` holds, looking every few milliseconds: for what a test can only
 * observe from outside (the SMTP server's count), never to order events. Fails after `timeoutMs`.
 */
export async function until(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
