/**
 * The benchmark's PostgreSQL cluster: test/support/postgres-server.js (the tests' throwaway server:
 * initdb in a temp folder, 127.0.0.1, a watchdog, removed at the end), with one deliberate
 * difference: durability stays ON. fsync, synchronous_commit and full_page_writes keep their
 * defaults, because a ledger row on disk before any SMTP traffic is the promise whose cost the
 * multi-host bench measures. On top: databases by name, a settle step before each timed run, and
 * the server's CPU time read from /proc.
 *
 * Cleanup on every exit path: `stop()`; a synchronous stop on process exit; and the server's
 * watchdog when the bench is killed outright.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { startPostgresServer } from '../test/support/postgres-server.js';

/**
 * Starts a new cluster; throws if it cannot (a bench that silently measured nothing would be worse).
 * Returns { port, dir, version, maxConnections, url(name), createDatabase(name), settle(name),
 * cpuMicros(), stop() }.
 */
export async function startCluster(options = {}) {
  // `settings`: more `name=value` for the server, e.g. to look at it with pg_stat_statements.
  const { maxConnections = 200, settings: extra = [] } = options;
  let server;
  try {
    server = await startPostgresServer({
      label: 'bench',
      settings: [`max_connections=${maxConnections}`, ...extra],
    });
  } catch (error) {
    throw new Error(`the multi-host benchmark needs a PostgreSQL server: ${error.message}`);
  }

  // A synchronous last resort when the bench ends without calling stop() (an uncaught error,
  // process.exit in a signal handler); the watchdog covers the cases where no code runs at all.
  const onExit = () => server.stopSync();
  process.once('exit', onExit);

  const version = execFileSync(path.join(server.bin, 'postgres'), ['--version'], { encoding: 'utf8' })
    .trim()
    .replace(/^postgres \(PostgreSQL\) /, '');
  const { url } = server;
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
  const postmasterPid = Number(readFileSync(path.join(server.data, 'postmaster.pid'), 'utf8').split('\n')[0]);

  return {
    port: server.port,
    dir: server.dir,
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
      process.removeListener('exit', onExit);
      await server.stop();
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
