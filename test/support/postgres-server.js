/**
 * A throwaway PostgreSQL server, for the tests (test/helpers/postgres.ts) and the benchmark
 * (bench/pg-cluster.js): `initdb` in a temp folder, started with `pg_ctl` on 127.0.0.1 and a free
 * port (its unix socket in the same folder), stopped and removed at the end. Plain JavaScript so
 * that the bench, which runs under plain `node`, can use it too; postgres-server.d.ts types it.
 *
 * The binaries come from Debian's `postgresql` package (/usr/lib/postgresql/<version>/bin), or
 * from PATH. initdb refuses to run as root, so as root the cluster belongs to the `postgres` user
 * (created by that package) and every server command runs through `runuser -u postgres --`.
 *
 * Cleanup on every exit path: `stop()`; `stopSync()` for a process that is exiting; and, when the
 * process is killed outright, a detached watchdog that notices it is gone, stops the server and
 * removes the folder. The watchdog starts before the server, so no server ever runs unwatched.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const INSTALL_HINT =
  "install Debian's `postgresql` package (`apt-get install -y postgresql`), as .ci/run does";

/** Where the server binaries are, and who runs them; or why a server cannot be started here. */
export function findPostgres() {
  const bin = findBinDir();
  if (!bin) {
    return {
      ok: false,
      reason: `the PostgreSQL server binaries (initdb, pg_ctl) are not installed: neither /usr/lib/postgresql/*/bin nor PATH has them; ${INSTALL_HINT}`,
    };
  }
  if (process.getuid?.() !== 0) return { ok: true, bin, runAs: null };
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    execFileSync('runuser', ['--help'], { stdio: 'ignore' });
    return { ok: true, bin, runAs: { user: 'postgres', uid, gid } };
  } catch {
    return {
      ok: false,
      reason: `this runs as root, and initdb refuses root, but there is no \`postgres\` user (or no runuser) to run the server as; ${INSTALL_HINT}`,
    };
  }
}

function findBinDir() {
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const versions = readdirSync(base)
      .filter(
        (v) =>
          existsSync(path.join(base, v, 'bin', 'initdb')) && existsSync(path.join(base, v, 'bin', 'pg_ctl')),
      )
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return path.join(base, versions[0], 'bin');
  }
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'pg_ctl'))) return dir;
  }
  return null;
}

/**
 * Starts a new server with `settings` (`name=value`, passed as `-c`). Throws, never skips, when it
 * cannot: a broken server must fail the run. `label` names the temp folder and the error.
 */
export async function startPostgresServer({ label, settings = [] }) {
  const found = findPostgres();
  if (!found.ok) throw new Error(`PostgreSQL is not available: ${found.reason}`);
  const command = (tool, args) =>
    found.runAs
      ? { file: 'runuser', args: ['-u', found.runAs.user, '--', path.join(found.bin, tool), ...args] }
      : { file: path.join(found.bin, tool), args };

  const dir = mkdtempSync(path.join(os.tmpdir(), `newsletter-${label}-pg-`));
  if (found.runAs) chownSync(dir, found.runAs.uid, found.runAs.gid);
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'server.log');
  // --no-sync spares initdb's own final flush of the template files only; the server's settings
  // decide what every commit pays.
  const initdb = command('initdb', [
    '-D',
    data,
    '-A',
    'trust',
    '-U',
    'postgres',
    '-E',
    'UTF8',
    '--locale=C',
    '--no-sync',
  ]);
  try {
    await run(initdb.file, initdb.args, { cwd: dir });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${error.stderr ?? String(error)}`);
  }

  const stopCommand = command('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
  const watchdog = startWatchdog(stopCommand, dir);

  let port = 0;
  let options = '';
  let lastError = '';
  // A free port can be taken between the probe and the server's bind: try a few.
  for (let attempt = 0; attempt < 3 && port === 0; attempt++) {
    const candidate = await freePort();
    options = [
      '-c listen_addresses=127.0.0.1',
      `-p ${candidate}`,
      `-k ${dir}`,
      ...settings.map((setting) => `-c ${setting}`),
    ].join(' ');
    const start = command('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '60', '-o', options, 'start']);
    try {
      await run(start.file, start.args, { cwd: dir });
      port = candidate;
    } catch (error) {
      lastError = `${error.stderr ?? String(error)}\n${lastLines(log)}`;
    }
  }
  if (port === 0) {
    watchdog.kill();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`pg_ctl could not start the ${label} PostgreSQL server:\n${lastError}`);
  }

  let stopped = false;
  const finish = () => {
    watchdog.kill();
    rmSync(dir, { recursive: true, force: true });
  };
  return {
    port,
    dir,
    data,
    bin: found.bin,
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    /**
     * `pg_ctl restart -m fast`: every session is ended (57P01), the server comes back on the same
     * port and data folder. Resolves once it accepts connections again.
     */
    async restart() {
      const restart = command('pg_ctl', ['-D', data, '-l', log, '-m', 'fast', '-w', '-t', '60', 'restart']);
      await run(restart.file, restart.args, { cwd: dir });
    },
    /** `pg_ctl stop -m fast`, keeping the data folder: `startAgain()` brings the same server back. */
    async stopFast() {
      const stop = command('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']);
      await run(stop.file, stop.args, { cwd: dir });
    },
    /** Starts the server stopped by `stopFast()`, on the same port; resolves once it accepts connections. */
    async startAgain() {
      const start = command('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '60', '-o', options, 'start']);
      await run(start.file, start.args, { cwd: dir });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await run(stopCommand.file, stopCommand.args, { cwd: dir }).catch(() => undefined);
      finish();
    },
    stopSync() {
      if (stopped) return;
      stopped = true;
      try {
        execFileSync(stopCommand.file, stopCommand.args, { cwd: dir, stdio: 'ignore' });
      } catch {
        // already stopped
      }
      finish();
    },
  };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function lastLines(file) {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '';
  }
}

/**
 * A detached process that waits for this one to end, then stops the server and removes its
 * folder. Detached, so that a Ctrl-C sent to the process group (or a test worker ended by vitest)
 * does not end the watchdog before it has cleaned up.
 */
function startWatchdog(stop, dir) {
  const script = `
    const { execFileSync } = require('node:child_process');
    const { rmSync } = require('node:fs');
    const [parent, stop, dir] = [Number(process.argv[1]), JSON.parse(process.argv[2]), process.argv[3]];
    setInterval(() => {
      try { process.kill(parent, 0); return; } catch {}
      try { execFileSync(stop.file, stop.args, { stdio: 'ignore', cwd: dir }); } catch {}
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
