/**
 * What the throwaway Postfix (postfix.ts) and Dovecot (dovecot.ts) instances share: a free port
 * on 127.0.0.1, a bounded wait for a listener, a detached watchdog that stops the server and
 * removes its folder when the test process dies without stopping it, and the "fail, never skip"
 * rule under CI=true (as describePostgres does for PostgreSQL).
 */
import { spawn } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { describe, it } from 'vitest';

export type Availability = { ok: true } | { ok: false; reason: string };

/**
 * `describe` when the server can run here; otherwise one failing test that says why (CI, and
 * anyone who ran it on purpose, must see that it did not run). Off CI a developer without the
 * package or root gets the same failing test: the message says how to install.
 */
export function describeWith(availability: Availability, title: string, body: () => void): void {
  if (availability.ok) describe(title, body);
  else
    describe(title, () => {
      it('needs its mail server', () => {
        throw new Error(availability.reason);
      });
    });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once 127.0.0.1:port accepts a connection; rejects after `timeoutMs`. */
export async function waitForListener(port: number, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on 127.0.0.1:${port} in time`);
    // A server starting up: ask again shortly (bounded by the deadline above).
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Polls `check` until it returns a value (not undefined), for things another program does on its
 * own time (Postfix delivering a DSN): the wait is for an outcome, never a fixed sleep.
 */
export async function eventually<T>(
  check: () => T | undefined | Promise<T | undefined>,
  options: { timeoutMs: number; what: string; diagnose?: () => string },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${options.what}${options.diagnose ? `\n${options.diagnose()}` : ''}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * A detached process that waits for this one to end, then runs `stop` and removes `dir`.
 * Detached, so that vitest ending a worker does not end the watchdog before it has cleaned up.
 */
export function startWatchdog(stop: { file: string; args: string[] }, dir: string): { kill(): void } {
  const script = `
    const { execFileSync } = require('node:child_process');
    const { rmSync } = require('node:fs');
    const [parent, stop, dir] = [Number(process.argv[1]), JSON.parse(process.argv[2]), process.argv[3]];
    setInterval(() => {
      try { process.kill(parent, 0); return; } catch {}
      try { execFileSync(stop.file, stop.args, { stdio: 'ignore', timeout: 10000 }); } catch {}
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    }, 500);`;
  const child = spawn(process.execPath, ['-e', script, String(process.pid), JSON.stringify(stop), dir], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  return {
    kill() {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    },
  };
}
