/**
 * The hosts of the chaos driver: each one a loop that starts `newsletter send-due` as cron would
 * (the built CLI, its own host id, lock folder and way to the database: a TCP proxy the driver can
 * freeze), waits for it to end, and starts it again after a short pause, until told to stop.
 *
 * Every run's end is kept: its exit code or signal, and whether its output shows a crash (a stack
 * trace, "Unexpected failure", exit 1). Exit codes that a fault may cause are expected: 8 (unknown
 * deliveries need a person), 9 (transient: the database or the SMTP server went away), 11 (the
 * run lost its lease: its late writes were refused), 6 (a previous run of this host still holds
 * the lock); a kill shows as SIGKILL.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

const EXPECTED = new Set([0, 6, 8, 9, 11]);

export function startHost({ id, bin, env, random, log }) {
  const host = {
    id,
    child: null,
    stopped: false,
    runs: [],
    crashes: [],
    stopping: false,
    done: null,
  };
  const once = () =>
    new Promise((resolve) => {
      const startedAt = Date.now();
      const child = spawn(process.execPath, [bin, 'send-due'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      host.child = child;
      let stderr = '';
      child.stderr.on('data', (chunk) => {
        stderr = (stderr + chunk.toString()).slice(-20_000);
      });
      child.on('close', (code, signal) => {
        host.child = null;
        host.stopped = false;
        const run = { code, signal, startedAt, endedAt: Date.now() };
        host.runs.push(run);
        const crashed =
          /(\n|\\n)\s+at /.test(stderr) || /Unexpected failure|Unhandled 'error' event/.test(stderr);
        if (
          crashed ||
          (signal === null && !EXPECTED.has(code)) ||
          (signal !== null && signal !== 'SIGKILL')
        ) {
          host.crashes.push({ ...run, stderr: stderr.slice(-3000) });
          log(`${id}: run ended badly (exit ${code}, signal ${signal})\n${stderr.slice(-1500)}`);
        }
        resolve(run);
      });
    });
  host.done = (async () => {
    while (!host.stopping) {
      const run = await once();
      // An idle run (nothing due) comes back at once: cron's next minute, scaled down.
      const idle = run.code === 0 && run.endedAt - run.startedAt < 1500;
      await new Promise((resolve) => setTimeout(resolve, idle ? 700 : random.int(50, 300)));
    }
  })();
  return host;
}

export function hostEnv(base, { id, databaseUrl, lockRoot }) {
  return {
    ...base,
    NEWSLETTER_DATABASE: databaseUrl,
    NEWSLETTER_HOST_ID: id,
    NEWSLETTER_LOCK_DIR: path.join(lockRoot, id),
  };
}
