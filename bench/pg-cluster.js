/**
 * A throwaway PostgreSQL cluster for the benchmark: `initdb` in a temp folder, started with
 * `pg_ctl` on 127.0.0.1 and a free port (its unix socket in the same folder), stopped and removed
 * at the end. The JavaScript twin of test/helpers/postgres.ts (the bench runs under plain `node`
 * and cannot import TypeScript), with one deliberate difference: durability stays ON. fsync,
 * synchronous_commit and full_page_writes keep their defaults, because a ledger row on disk before
 * any SMTP traffic is the promise whose cost the multi-host bench measures.
 *
 * The binaries come from Debian's `postgresql` package (/usr/lib/postgresql/<version>/bin), or
 * from PATH. initdb refuses to run as root, so as root the cluster belongs to the `postgres` user
 * and every server command runs through `runuser -u postgres --`.
 *
 * Cleanup on every exit path: `stop()`; a synchronous stop on process exit; and, when the bench is
 * killed outright (SIGKILL, a closed terminal), a detached watchdog that notices its parent is gone,
 * stops the server and removes the folder.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

const INSTALL_HINT =
  "the multi-host benchmark needs Debian's PostgreSQL server: `apt-get install -y postgresql`, then run it again";

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

/** Who runs the server: ourselves, or (as root, which initdb refuses) the `postgres` user. */
function serverUser() {
  if (process.getuid?.() !== 0) return null;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    execFileSync('runuser', ['--help'], { stdio: 'ignore' });
    return { user: 'postgres', uid, gid };
  } catch {
    throw new Error(
      `running as root, initdb refuses root, and there is no \`postgres\` user (or no runuser) to run the server as; ${INSTALL_HINT}`,
    );
  }
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
 * Starts a new cluster; throws if it cannot (a bench that silently measured nothing would be worse).
 * Returns { port, dir, version, maxConnections, url(name), createDatabase(name), settle(name),
 * cpuMicros(), stop() }.
 */
export async function startCluster(options = {}) {
  // `settings`: more `-c name=value` for the server, e.g. to look at it with pg_stat_statements.
  const { maxConnections = 200, settings: extra = [] } = options;
  const bin = findBinDir();
  if (!bin) {
    throw new Error(
      `the PostgreSQL server binaries (initdb, pg_ctl) are not installed: neither /usr/lib/postgresql/*/bin nor PATH has them; ${INSTALL_HINT}`,
    );
  }
  const runAs = serverUser();
  const command = (tool, args) =>
    runAs
      ? { file: 'runuser', args: ['-u', runAs.user, '--', path.join(bin, tool), ...args] }
      : { file: path.join(bin, tool), args };

  const dir = mkdtempSync(path.join(os.tmpdir(), 'newsletter-bench-pg-'));
  if (runAs) chownSync(dir, runAs.uid, runAs.gid);
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'server.log');
  // --no-sync only spares initdb's own final flush of the template files; the server below runs
  // with fsync and synchronous_commit on, which is what every commit of the bench pays.
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

  // The watchdog starts before the server, so that no window exists where a server runs unwatched.
  const stop = command('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
  const watchdog = startWatchdog(stop, dir);

  let port = 0;
  let lastError = '';
  // A free port can be taken between the probe and the server's bind: try a few.
  for (let attempt = 0; attempt < 3 && port === 0; attempt++) {
    const candidate = await freePort();
    const settings = [
      '-c listen_addresses=127.0.0.1',
      `-p ${candidate}`,
      `-k ${dir}`,
      `-c max_connections=${maxConnections}`,
      ...extra.map((setting) => `-c ${setting}`),
    ].join(' ');
    const start = command('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '60', '-o', settings, 'start']);
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
    throw new Error(`pg_ctl could not start the bench's PostgreSQL server:\n${lastError}`);
  }

  let stopped = false;
  // A synchronous last resort when the bench ends without calling stop() (an uncaught error,
  // process.exit in a signal handler); the watchdog covers the cases where no code runs at all.
  const onExit = () => stopSync();
  process.once('exit', onExit);
  function stopSync() {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', onExit);
    try {
      execFileSync(stop.file, stop.args, { cwd: dir, stdio: 'ignore' });
    } catch {
      // already stopped
    }
    watchdog.kill();
    rmSync(dir, { recursive: true, force: true });
  }

  const version = execFileSync(path.join(bin, 'postgres'), ['--version'], { encoding: 'utf8' })
    .trim()
    .replace(/^postgres \(PostgreSQL\) /, '');
  const url = (name = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${name}`;
  // One short connection per statement: the bench's own sessions never linger beside the runs'.
  async function admin(sql, database = 'postgres') {
    const client = new pg.Client({ connectionString: url(database) });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  }
  const postmasterPid = Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);

  return {
    port,
    dir,
    version,
    maxConnections,
    url,
    /** Creates an empty database `name` (letters, digits and _ only) and returns its URL. */
    async createDatabase(name) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`createDatabase: not a plain name: ${name}`);
      await admin(`CREATE DATABASE ${name}`);
      return url(name);
    },
    /**
     * VACUUM ANALYZE of database `name`, then a CHECKPOINT: the freshly imported tables get their
     * statistics and visibility map now (as a database imported long before its send would have),
     * and every dirty page is written now, not by autovacuum or a checkpoint in the middle of a run.
     */
    async settle(name) {
      await admin('VACUUM ANALYZE', name);
      await admin('CHECKPOINT');
    },
    /**
     * CPU time (user + system, µs) of the whole server so far: the postmaster and its live
     * processes, plus what its ended backends used (a reaped child's time lands in the
     * postmaster's cutime/cstime). Read a difference around a run, once its backends are gone.
     */
    cpuMicros() {
      const tick = 1e6 / clockTicks();
      let ticks = 0;
      const own = procStat(postmasterPid);
      if (own) ticks += own.utime + own.stime + own.cutime + own.cstime;
      for (const pid of childrenOf(postmasterPid)) {
        const stat = procStat(pid);
        if (stat) ticks += stat.utime + stat.stime;
      }
      return ticks * tick;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      process.removeListener('exit', onExit);
      await run(stop.file, stop.args, { cwd: dir }).catch(() => undefined);
      watchdog.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A detached process that waits for this one to end, then stops the server and removes its
 * folder: a bench killed mid-run leaves no server and no folder behind. Detached, so that a
 * Ctrl-C sent to the bench's process group does not end the watchdog before it has cleaned up.
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

// ---- /proc, for the server's CPU time -------------------------------------------------------------

let ticksPerSecond = null;
function clockTicks() {
  if (ticksPerSecond === null) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** Fields of /proc/PID/stat after the command name (which may contain spaces and parentheses). */
function procStat(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17, ppid 4.
  return {
    ppid: Number(f[1]),
    utime: Number(f[11]),
    stime: Number(f[12]),
    cutime: Number(f[13]),
    cstime: Number(f[14]),
  };
}

function childrenOf(parent) {
  const pids = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    if (procStat(Number(name))?.ppid === parent) pids.push(Number(name));
  }
  return pids;
}
