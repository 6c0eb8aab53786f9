/**
 * Section 6 of the benchmark (issue 6): several hosts sharing one PostgreSQL database. Each
 * simulated host is one `send-due` process with its own NEWSLETTER_HOST_ID and lock folder, as
 * three machines with the same crontab line would be; together they send one newsletter, each
 * recipient once. Measured here: 1 host against 3 hosts spawned in the same instant, on the same
 * newsletter and the same fresh kind of database, at the default batch and connections.
 *
 *   multihost({ quick, log, sink }) → a JSON-able section (with its `commands`)
 *   renderMultihost(section)        → its markdown for docs/benchmarks.md
 *
 * The cluster is started here (bench/pg-cluster.js: durability on) and removed on the way out;
 * `sink` is bench/run.js's startSink(): the discarding SMTP server in another process. A second
 * pair of runs goes to a sink that answers each message after a delay (`bench/sink.js DELAY_MS`),
 * to show what several hosts buy when the remote server, not this machine, limits each connection.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { copyFile, cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  audience,
  baseEnv,
  CLI,
  CLI_NODE_FLAGS,
  cli,
  cpuMicros,
  forkSink,
  LARGE_TEMPLATE,
  ROOT,
  round,
  runNode,
  workspace,
} from './lib.js';
import pg from 'pg';
import { startCluster } from './pg-cluster.js';

const HOSTS = ['host-a', 'host-b', 'host-c'];
const ROUNDS = 2;
/**
 * Not set for the runs (the CLI's own defaults apply); written down for the report. Batches are
 * sized by the rate each host reaches (src/engine/batch-size.ts): 20 against the slow server.
 */
const DEFAULTS = { batch: null, connections: 3 };
const RATE = 1_000_000;
const SIZES = {
  full: { recipients: 20_000, slowRecipients: 1500 },
  quick: { recipients: 2000, slowRecipients: 300 },
};
/** The slow sink's wait before each 250: a remote server that scans and queues each message. */
const SLOW_DELAY_MS = 20;
const TIMEOUT_MS = 300_000;

export async function multihost({ quick = false, log = () => undefined, sink }) {
  const sizes = quick ? SIZES.quick : SIZES.full;
  const n = sizes.recipients;
  const code = codeStamp();
  const cluster = await startCluster();
  const ctx = { cluster, log, counter: 0 };
  try {
    log(
      `multihost: PostgreSQL ${cluster.version} on 127.0.0.1:${cluster.port} (fsync and synchronous_commit on)`,
    );
    // Interleaved, and the order swapped in the second round: whatever else the shared machine does
    // (and the first run's cold caches) slows one run or another, not a whole side.
    const runs = [];
    const sqliteRuns = [];
    for (let r = 1; r <= ROUNDS; r++) {
      const order = r % 2 === 1 ? [1, HOSTS.length] : [HOSTS.length, 1];
      for (const hosts of order) {
        const run = await measure(ctx, { sink, hosts: HOSTS.slice(0, hosts), n, round: r, kind: 'fast' });
        runs.push(run);
        log(`multihost: ${describe(run)}`);
      }
      // Issue 17's yardstick for one PostgreSQL host: SQLite, the same settings and sink, this round.
      const local = await measureSqlite({ sink, n, round: r });
      sqliteRuns.push(local);
      log(
        `multihost: SQLite, 1 host (round ${r}): ${local.rate}/s, ${local.wallMs} ms, ${local.cpuMicrosPerMessage} µs CPU/message`,
      );
    }
    const one = best(runs.filter((r) => r.hosts === 1));
    const three = best(runs.filter((r) => r.hosts === HOSTS.length));
    const sqlite = best(sqliteRuns);

    const slow = await slowPair(ctx, sizes.slowRecipients);
    // dist/ is what runs; when someone rebuilt it meanwhile, the runs did not all measure one build.
    const distAfter = codeStamp().dist;
    if (distAfter !== code.dist)
      log(`multihost: WARNING: dist/ changed during the runs (${code.dist} → ${distAfter})`);

    return {
      recipients: n,
      rounds: ROUNDS,
      hosts: HOSTS,
      cores: os.availableParallelism?.() ?? os.cpus().length,
      code: { ...code, distChangedDuringRuns: distAfter !== code.dist },
      config: { ...DEFAULTS, rate: RATE },
      template: path.relative(ROOT, LARGE_TEMPLATE),
      postgres: {
        version: cluster.version,
        maxConnections: cluster.maxConnections,
        durability: 'defaults (on)',
      },
      runs,
      one,
      three,
      ratio: round(three.rate / one.rate, 2),
      /** One PostgreSQL host against one SQLite host, the same settings, best of each side. */
      sqliteRuns,
      sqlite,
      postgresVsSqlite: round(one.rate / sqlite.rate, 2),
      /** CPU per message of all send-due processes together: the lower of each side's runs. */
      cpuMicrosPerMessage: {
        one: Math.min(...runs.filter((r) => r.hosts === 1).map((r) => r.cpuMicrosPerMessage)),
        three: Math.min(...runs.filter((r) => r.hosts === HOSTS.length).map((r) => r.cpuMicrosPerMessage)),
      },
      share: three.processes.map(({ host, sent, share }) => ({ host, sent, share })),
      slow,
      commands: commands(n, sizes.slowRecipients),
    };
  } finally {
    await cluster.stop();
  }
}

/**
 * Only the slow-sink runs (`node bench/multihost-run.js --slow-only[=ROUNDS]`): goal 4's figure on
 * its own, for looking at it without the fast runs' minutes. Not part of the report.
 */
export async function multihostSlowOnly({ quick = false, log = () => undefined, rounds = ROUNDS }) {
  const sizes = quick ? SIZES.quick : SIZES.full;
  const cluster = await startCluster();
  const ctx = { cluster, log, counter: 0 };
  try {
    return { code: codeStamp(), slow: await slowPair(ctx, sizes.slowRecipients, rounds) };
  } finally {
    await cluster.stop();
  }
}

// ---- one measured run ------------------------------------------------------------------------------

/**
 * A fresh database with `n` recipients and the benchmark newsletter due now; then `hosts.length`
 * send-due processes spawned in one tick; then the checks. Returns what it cost.
 */
async function measure(ctx, { sink, hosts, n, round: roundNo, kind }) {
  ctx.counter += 1;
  const label = `mh${ctx.counter}_${kind}_${hosts.length}h`;
  const url = await ctx.cluster.createDatabase(label);
  const ws = await pgWorkspace(ctx.cluster, label, {
    NEWSLETTER_DATABASE: url,
    NEWSLETTER_TRANSPORT: sink.url,
    NEWSLETTER_RATE: String(RATE),
  });
  try {
    const { id } = await audience(ws, n);
    for (const host of hosts) await mkdir(lockDir(ws, host), { recursive: true });
    // The import settles before the clock starts: analysed, vacuumed, written out.
    await ctx.cluster.settle(label);
    await sink.reset();
    const sinkBefore = await sink.stats();
    const pgBefore = ctx.cluster.cpuMicros();

    const spawnedAt = Date.now();
    const started = process.hrtime.bigint();
    const processes = await Promise.all(hosts.map((host) => startSendDue(ws, host)));
    const wallMs = Number(process.hrtime.bigint() - started) / 1e6;

    // The backends of the processes that just exited end a moment later; their CPU time reaches
    // the postmaster when it reaps them.
    await sleep(200);
    const pgCpu = ctx.cluster.cpuMicros() - pgBefore;
    const seen = await sink.stats();
    for (const p of processes) {
      // Cron's contract: a run that went well exits 0 and prints nothing.
      if (p.code !== 0 || p.stdout !== '' || p.stderr !== '') {
        throw new Error(
          `${label}: send-due on ${p.host} exited ${p.code ?? p.signal}:\n${p.stdout}${p.stderr}`,
        );
      }
    }
    const shown = JSON.parse((await cli(ws, ['show', String(id), '--json'])).stdout);
    if (seen.messages !== n || shown.counts.sent !== n || shown.status !== 'sent') {
      throw new Error(
        `${label}: the sink got ${seen.messages} of ${n}, the ledger says ${shown.status} ${JSON.stringify(shown.counts)}`,
      );
    }
    const ledgerRuns = JSON.parse((await cli(ws, ['runs', '--json'])).stdout);
    const shares = sharePerHost(label, ledgerRuns, hosts, n);
    const phases = await phasesOf(url, spawnedAt, n);

    const cpu = processes.reduce((sum, p) => sum + cpuMicros(p.usage), 0);
    const sinkCpu = seen.cpuMicros - sinkBefore.cpuMicros;
    return {
      kind,
      hosts: hosts.length,
      round: roundNo,
      messages: n,
      wallMs: round(wallMs),
      rate: round((n / wallMs) * 1000),
      sinkRate: round((n / (seen.last - seen.first)) * 1000),
      sinkConnections: seen.connections,
      cpuMs: round(cpu / 1000),
      cpuMicrosPerMessage: round(cpu / n, 1),
      pgCpuMicrosPerMessage: round(pgCpu / n, 1),
      sinkCpuMicrosPerMessage: round(sinkCpu / n, 1),
      /** Cores in use on average over the wall time: send-due processes, PostgreSQL, the sink. */
      coresBusy: round((cpu + pgCpu + sinkCpu) / 1000 / wallMs, 2),
      sending: phases.sending,
      processes: processes.map((p) => ({
        host: p.host,
        ms: round(p.ms),
        cpuMs: round(cpuMicros(p.usage) / 1000),
        maxRssMiB: round(p.usage.maxRSS / 1024, 1),
        ...shares.get(p.host),
        ...phases.perHost.get(p.host),
      })),
    };
  } finally {
    await ws.remove();
  }
}

/**
 * The same send as one PostgreSQL host, on SQLite: the same sink, environment, CLI flags and
 * measure (spawn to exit), so that the two databases compare within one run.
 */
async function measureSqlite({ sink, n, round: roundNo }) {
  const ws = await workspace('mh-sqlite', {
    NEWSLETTER_TRANSPORT: sink.url,
    NEWSLETTER_RATE: String(RATE),
    // A SQLite database is bound to the host that made it: the host that sends.
    NEWSLETTER_HOST_ID: 'host-a',
  });
  try {
    const { id } = await audience(ws, n);
    await mkdir(lockDir(ws, 'host-a'), { recursive: true });
    await sink.reset();
    const started = process.hrtime.bigint();
    const p = await startSendDue(ws, 'host-a');
    const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
    const seen = await sink.stats();
    if (p.code !== 0 || p.stdout !== '' || p.stderr !== '')
      throw new Error(`SQLite send-due exited ${p.code ?? p.signal}:\n${p.stdout}${p.stderr}`);
    const shown = JSON.parse((await cli(ws, ['show', String(id), '--json'])).stdout);
    if (seen.messages !== n || shown.counts.sent !== n)
      throw new Error(
        `SQLite: the sink got ${seen.messages} of ${n}, the ledger says ${JSON.stringify(shown.counts)}`,
      );
    return {
      round: roundNo,
      messages: n,
      wallMs: round(wallMs),
      rate: round((n / wallMs) * 1000),
      cpuMicrosPerMessage: round(cpuMicros(p.usage) / n, 1),
    };
  } finally {
    await ws.remove();
  }
}

/**
 * lib.js's workspace(), in a folder inside the cluster's: the cluster's watchdog removes it with
 * the server even when the bench is killed outright. Everything goes through the CLI, so a
 * postgres:// NEWSLETTER_DATABASE is all it takes; the rest of the environment (From, secret,
 * base URL) is the SQLite bench's (baseEnv).
 */
async function pgWorkspace(cluster, label, env) {
  const dir = await mkdtemp(path.join(cluster.dir, `ws-${label}-`));
  await cp(path.join(ROOT, 'templates'), path.join(dir, 'templates'), { recursive: true });
  await copyFile(LARGE_TEMPLATE, path.join(dir, 'templates', 'digest-40k.mjml'));
  const ws = { dir, env: baseEnv(dir, env), remove: () => rm(dir, { recursive: true, force: true }) };
  await cli(ws, ['init']);
  return ws;
}

/**
 * How the work was shared, from `newsletter runs --json` (one row per run: hostId, counts.sent,
 * outcome, startedAt/endedAt). Throws unless every run ended `ok` and the runs' counts add up.
 */
function sharePerHost(label, ledgerRuns, hosts, n) {
  const bad = ledgerRuns.filter((r) => r.outcome !== 'ok');
  const total = ledgerRuns.reduce((sum, r) => sum + r.counts.sent, 0);
  if (bad.length > 0 || total !== n) {
    throw new Error(`${label}: runs do not add up to ${n} sent, all ok: ${JSON.stringify(ledgerRuns)}`);
  }
  const first = Math.min(...ledgerRuns.map((r) => Date.parse(r.startedAt)));
  const shares = new Map();
  for (const host of hosts) {
    const own = ledgerRuns.filter((r) => r.hostId === host);
    const sent = own.reduce((sum, r) => sum + r.counts.sent, 0);
    shares.set(host, {
      runs: own.length,
      sent,
      share: round(sent / n, 3),
      /** When this host's run registered, after the first host's (database clock). */
      startOffsetMs: own.length ? Math.min(...own.map((r) => Date.parse(r.startedAt))) - first : null,
      runMs: own.length
        ? Math.max(...own.map((r) => Date.parse(r.endedAt))) -
          Math.min(...own.map((r) => Date.parse(r.startedAt)))
        : null,
    });
  }
  return shares;
}

/**
 * Where the wall time went, from the ledger (every time in it is a Date.now() of this machine, as
 * is `spawnedAt`): per host, spawn → its first claim (start-up: Node, the program, the store, the
 * lock, the run row and, for every host that saw the newsletter due, the build of its body), its
 * first claim → its last outcome (sending), and that → its exit. For the run as a whole, the
 * sending part: the first claim of any host → the last outcome of any host, and the rate over it.
 */
async function phasesOf(url, spawnedAt, n) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let rows;
  try {
    ({ rows } = await client.query(
      `SELECT r.host_id, min(r.started_at) AS registered, min(d.claimed_at) AS first_claim,
              max(d.updated_at) AS last_outcome
         FROM runs r LEFT JOIN deliveries d ON d.run_id = r.id
        GROUP BY r.host_id`,
    ));
  } finally {
    await client.end();
  }
  const perHost = new Map();
  for (const row of rows) {
    const at = (value) => (value === null ? null : Number(value) - spawnedAt);
    perHost.set(row.host_id, {
      registeredMs: at(row.registered),
      firstClaimMs: at(row.first_claim),
      lastOutcomeMs: at(row.last_outcome),
    });
  }
  const firsts = rows
    .map((r) => r.first_claim)
    .filter((v) => v !== null)
    .map(Number);
  const lasts = rows
    .map((r) => r.last_outcome)
    .filter((v) => v !== null)
    .map(Number);
  const from = Math.min(...firsts);
  const ms = Math.max(...lasts) - from;
  return {
    perHost,
    sending: { fromMs: from - spawnedAt, ms, rate: round((n / ms) * 1000) },
  };
}

function lockDir(ws, host) {
  return path.join(ws.dir, 'locks', host);
}

/** `send-due` as one host's cron would start it, inside bench/rusage.js for its CPU time. */
async function startSendDue(ws, host) {
  const env = { ...ws.env, NEWSLETTER_HOST_ID: host, NEWSLETTER_LOCK_DIR: lockDir(ws, host) };
  const run = await runNode(CLI, ['send-due'], {
    cwd: ws.dir,
    env,
    rusage: true,
    nodeArgs: CLI_NODE_FLAGS,
    timeoutMs: TIMEOUT_MS,
  });
  return { host, ...run };
}

// ---- the slow sink ---------------------------------------------------------------------------------

/**
 * Each side against the slow sink, ROUNDS times interleaved (1 host, 3 hosts, then 3 hosts, 1 host).
 * Two figures per run (issue 17, session 6, in bench/NOTES.md): the whole run, spawn to last exit,
 * which includes every host's start-up (three of them at once on this machine's cores, each
 * building the body), and the sending part, first claim to last outcome, where the delay and not
 * this machine sets the pace. Best of the rounds per side for each figure.
 */
async function slowPair(ctx, n, rounds = ROUNDS) {
  const sink = await forkSink(path.join(ROOT, 'bench', 'sink.js'), [String(SLOW_DELAY_MS)]);
  try {
    const runs = [];
    for (let r = 1; r <= rounds; r++) {
      for (const hosts of r % 2 === 1 ? [1, HOSTS.length] : [HOSTS.length, 1]) {
        const run = await measure(ctx, { sink, hosts: HOSTS.slice(0, hosts), n, round: r, kind: 'slow' });
        runs.push(run);
        ctx.log(`multihost, slow sink (${SLOW_DELAY_MS} ms per message): ${describe(run)}`);
      }
    }
    const side = (hosts) => runs.filter((r) => r.hosts === hosts);
    const bestSending = (list) => list.reduce((a, b) => (b.sending.rate > a.sending.rate ? b : a));
    const one = best(side(1));
    const three = best(side(HOSTS.length));
    const sendingOne = bestSending(side(1));
    const sendingThree = bestSending(side(HOSTS.length));
    return {
      delayMs: SLOW_DELAY_MS,
      recipients: n,
      rounds,
      ceiling: scalingCeiling(one, HOSTS.length),
      /** What 3 connections per host can carry when each waits DELAY for every reply. */
      ceilingPerHost: round((DEFAULTS.connections * 1000) / SLOW_DELAY_MS),
      runs,
      one,
      three,
      /** Whole runs: spawn of the first host to exit of the last, start-ups included. */
      ratio: round(three.rate / one.rate, 2),
      /** First claim to last outcome: the hosts sending, their start-ups left out. */
      sending: {
        one: sendingOne.sending,
        three: sendingThree.sending,
        ratio: round(sendingThree.sending.rate / sendingOne.sending.rate, 2),
      },
    };
  } finally {
    sink.stop();
  }
}

/**
 * The best whole-run ratio this run's size allows: the best 1-host run's own start-up (spawn to
 * first claim) and end (last outcome to exit) kept, its sending part divided exactly by the hosts.
 * Those parts are paid once per host whatever the number of hosts, so a small list caps the ratio
 * below the hosts' number even if nothing were shared (issue 17, goal 4, bench/NOTES.md).
 */
function scalingCeiling(one, hosts) {
  const { fromMs, ms } = one.sending;
  const rest = one.wallMs - fromMs - ms;
  return {
    startMs: round(fromMs),
    endMs: round(rest),
    ratio: round(one.wallMs / (fromMs + ms / hosts + rest), 2),
  };
}

// ---- plumbing -------------------------------------------------------------------------------------

function best(runs) {
  return runs.reduce((a, b) => (b.rate > a.rate ? b : a));
}

function describe(run) {
  const share =
    run.hosts > 1 ? `, shares ${run.processes.map((p) => `${p.host} ${p.sent}`).join(' / ')}` : '';
  const phases = run.processes
    .map((p) => `${p.host} ${p.firstClaimMs}→${p.lastOutcomeMs}→${round(p.ms)}`)
    .join(' / ');
  return `${run.hosts} host${run.hosts > 1 ? 's' : ''} (round ${run.round}): ${run.rate}/s, ${run.wallMs} ms, sending ${run.sending.rate}/s over ${run.sending.ms} ms from +${run.sending.fromMs} ms, send-due ${run.cpuMicrosPerMessage} µs CPU/message, PostgreSQL ${run.pgCpuMicrosPerMessage}, sink ${run.sinkCpuMicrosPerMessage}, ${run.coresBusy} cores busy${share}; ms after spawn, first claim→last outcome→exit: ${phases}`;
}

/** Which code ran: the commit, and the newest file in dist/ (the build the CLI runs). */
function codeStamp() {
  let commit = null;
  let srcChanged = null;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    // Others edit src/ while the bench runs: say when the build is not the commit's.
    srcChanged =
      execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim() !==
      '';
  } catch {
    commit = null;
  }
  const newest = (dir) => {
    let ms = 0;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      ms = Math.max(ms, entry.isDirectory() ? newest(file) : statSync(file).mtimeMs);
    }
    return ms;
  };
  let dist = null;
  try {
    dist = new Date(newest(path.join(ROOT, 'dist'))).toISOString();
  } catch {
    dist = null;
  }
  return { commit, srcChanged, dist };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function commands(n, slowN) {
  const env = `NEWSLETTER_DATABASE=postgres://postgres@127.0.0.1:PORT/DB NEWSLETTER_TRANSPORT=smtp://127.0.0.1:SINK NEWSLETTER_RATE=${RATE}`;
  const send = (host) =>
    `${env} NEWSLETTER_HOST_ID=${host} NEWSLETTER_LOCK_DIR=locks/${host} node bench/rusage.js OUT-${host}.json bin/newsletter.js send-due`;
  return [
    `initdb -A trust -E UTF8 --locale=C && pg_ctl start -o "-c listen_addresses=127.0.0.1 -c max_connections=200"   # bench/pg-cluster.js; fsync, synchronous_commit, full_page_writes at their defaults (on)`,
    `node bench/sink.js   # forked; smtp-server on 127.0.0.1, counts only`,
    `${env} newsletter init && newsletter recipients import subscribers.csv --list readers && newsletter create --template templates/digest-40k.mjml --list readers --at now   # a fresh database per run, ${n} recipients; then VACUUM ANALYZE and CHECKPOINT`,
    `${send('host-a')}   # 1 host`,
    `${HOSTS.map(send).join(' & ')} & wait   # 3 hosts, spawned in one tick`,
    `newsletter show ID --json && newsletter runs --json   # checked after every run: the sink got ${n}, the ledger says ${n} sent, status sent, every run ok`,
    `# 1 host, 3 hosts, 3 hosts, 1 host: best of ${ROUNDS} per side; NEWSLETTER_BATCH and NEWSLETTER_SMTP_CONNECTIONS unset (batches by rate, 20–200; ${DEFAULTS.connections} connections)`,
    `node bench/sink.js ${SLOW_DELAY_MS}   # then 1 host, 3 hosts, 3 hosts, 1 host, ${slowN} recipients: each message answered after ${SLOW_DELAY_MS} ms`,
  ];
}

// ---- the report ------------------------------------------------------------------------------------

export function renderMultihost(section) {
  const s = section;
  if (!s) return '';
  const hostsWord = (h) => `${h} host${h > 1 ? 's' : ''}`;
  const lines = [
    '## 6. Several hosts, one PostgreSQL database',
    '',
    `${s.recipients} recipients of \`${s.template}\`, the ledger in one PostgreSQL ${s.postgres.version}`,
    'database on this machine (a fresh one per run) with fsync and synchronous_commit on: every claim',
    'is committed before any of its messages is sent, and the outcomes in transactions of their own.',
    `Each host is one \`send-due\` with its own \`NEWSLETTER_HOST_ID\` and lock folder, at the defaults`,
    `(${s.config.batch === null ? '`NEWSLETTER_BATCH` unset: batches sized by the rate reached, 20–200' : `\`NEWSLETTER_BATCH=${s.config.batch ?? 20}\``}, ${s.config.connections} SMTP connections), \`NEWSLETTER_RATE=${s.config.rate}\`;`,
    `the ${s.hosts.length} hosts are spawned in the same instant. Rate: recipients / wall time from the first`,
    'spawn to the last exit. CPU per message: the send-due processes together, and beside them',
    `PostgreSQL (the postmaster and its backends) and the sink. Best of ${s.rounds} rounds per side, interleaved;`,
    'after every run the sink had every message once and the ledger said all sent.',
    ...(s.code
      ? [
          '',
          `Code: commit ${s.code.commit ?? 'unknown'}${s.code.srcChanged ? ' with uncommitted changes in src/' : ''}, dist/ built ${s.code.dist ?? 'unknown'}${s.code.distChangedDuringRuns ? ' (**rebuilt during the runs**: the figures mix two builds)' : ''}.`,
        ]
      : []),
    '',
    '| run | wall | rate | at the sink | CPU per message, send-due | PostgreSQL | sink | cores busy |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const row = (r, name) =>
    lines.push(
      `| ${name} | ${r.wallMs} ms | ${r.rate}/s | ${r.sinkRate}/s | ${r.cpuMicrosPerMessage} µs | ${r.pgCpuMicrosPerMessage} µs | ${r.sinkCpuMicrosPerMessage} µs | ${r.coresBusy} |`,
    );
  for (const r of s.runs)
    row(r, `${hostsWord(r.hosts)}, round ${r.round}${r === s.one || r === s.three ? ' (best)' : ''}`);
  if (s.sqlite) {
    for (const r of s.sqliteRuns)
      lines.push(
        `| SQLite, 1 host, round ${r.round}${r === s.sqlite ? ' (best)' : ''} | ${r.wallMs} ms | ${r.rate}/s | – | ${r.cpuMicrosPerMessage} µs | – | – | – |`,
      );
  }
  lines.push(
    '',
    `${hostsWord(s.hosts.length)} / 1 host: **${s.ratio}×** (${s.three.rate} / ${s.one.rate} messages per second).`,
    ...(s.sqlite
      ? [
          '',
          `1 PostgreSQL host / 1 SQLite host, the same settings and sink, interleaved in the same rounds: **${s.postgresVsSqlite}** (${s.one.rate} / ${s.sqlite.rate} messages per second).`,
        ]
      : []),
    '',
    `Share per host in the best ${s.hosts.length}-host run (\`newsletter runs --json\`; started: after the first`,
    'host registered its run, by the database clock):',
    '',
    '| host | sent | share | started | run time | process wall | process CPU |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const p of s.three.processes) {
    lines.push(
      `| ${p.host} | ${p.sent} | ${Math.round(p.share * 1000) / 10} % | +${p.startOffsetMs} ms | ${p.runMs} ms | ${p.ms} ms | ${p.cpuMs} ms |`,
    );
  }
  lines.push('', limits(s));
  if (s.slow) {
    const w = s.slow;
    lines.push(
      '',
      `**A slow remote server.** The same, ${w.recipients} recipients, against \`bench/sink.js ${w.delayMs}\`, which`,
      `answers each message ${w.delayMs} ms after its data: ${s.config.connections} connections per host carry at most`,
      `${w.ceilingPerHost} messages per second however fast the host is. ${w.rounds ?? 1} rounds per side, interleaved. Two figures per`,
      'run: the whole run (spawn to last exit) and its sending part (the first claim of any host to the',
      "last outcome of any host, from the ledger's times), which leaves out the start-ups: Node, the",
      'program, the store, the lock, the run row and the build of the body, which every host that sees',
      "the newsletter due does (only one wins the begin), all at once on this machine's cores.",
      '',
      '| run | wall | rate | start-up (to first claim) | sending part | its rate | CPU per message, send-due | cores busy | share per host |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    );
    for (const r of w.runs ?? [w.one, w.three]) {
      const mark = r === w.one || r === w.three ? ' (best)' : '';
      const sending = r.sending ?? { fromMs: '–', ms: '–', rate: '–' };
      lines.push(
        `| ${hostsWord(r.hosts)}, round ${r.round}${mark} | ${r.wallMs} ms | ${r.rate}/s | ${sending.fromMs} ms | ${sending.ms} ms | ${sending.rate}/s | ${r.cpuMicrosPerMessage} µs | ${r.coresBusy} | ${r.processes.map((p) => p.sent).join(' / ')} |`,
      );
    }
    lines.push(
      '',
      `${hostsWord(s.hosts.length)} / 1 host, whole runs: **${w.ratio}×**${w.sending ? `; sending parts: **${w.sending.ratio}×** (${w.sending.three.rate} / ${w.sending.one.rate} messages per second, best of each side)` : ''}.`,
      'When the remote server, not the machine, limits each connection, every host adds its own',
      'connections, and the sending rate grows with the hosts; the whole run also pays the start-ups,',
      `which ${hostsWord(s.hosts.length)} on ${s.cores} shared cores pay at once (real hosts each start on their own cores).`,
    );
    if (w.ceiling) {
      lines.push(
        '',
        `**What this size allows.** Each host pays its own start-up and end whatever the number of hosts: the best 1-host run took ${w.ceiling.startMs} ms to its first claim and ${w.ceiling.endMs} ms from its last outcome to its exit. With those kept and its sending part divided exactly by ${s.hosts.length}, ${hostsWord(s.hosts.length)} would reach **${w.ceiling.ratio}×** of it on ${w.recipients} recipients: the most this run's size allows, with nothing shared.`,
      );
    }
  }
  lines.push('', 'Commands:', '', '```sh', ...s.commands, '```', '');
  return lines.join('\n');
}

/** What limits the fast runs, in sentences chosen by the figures themselves. */
function limits(s) {
  const { one, three, cores } = s;
  const h = s.hosts.length;
  const perMessage = (r) =>
    round(r.cpuMicrosPerMessage + r.pgCpuMicrosPerMessage + r.sinkCpuMicrosPerMessage, 1);
  const text = [
    `**What limits it here.** The ${h} hosts are not ${h} machines: their send-due processes, PostgreSQL and the`,
    `sink share this machine's ${cores} cores. All together they used ${perMessage(one)} µs of CPU per message with`,
    `1 host (PostgreSQL ${one.pgCpuMicrosPerMessage} µs of it) and ${perMessage(three)} µs with ${h} (PostgreSQL ${three.pgCpuMicrosPerMessage} µs), and kept ${one.coresBusy} and`,
    `${three.coresBusy} of the ${cores} cores busy.`,
  ];
  if (one.pgCpuMicrosPerMessage > one.cpuMicrosPerMessage) {
    text.push(
      `PostgreSQL used more CPU per message than send-due itself (${one.pgCpuMicrosPerMessage} against ${one.cpuMicrosPerMessage} µs with 1 host).`,
    );
  }
  if (one.coresBusy < cores * 0.6) {
    text.push(
      'One host leaves much of the machine idle: it waits on its own round trips, every claim and every',
      "batch's outcomes a commit that waits for the WAL's fsync, and the SMTP replies.",
    );
  }
  if (three.coresBusy >= cores * 0.85) {
    text.push(
      `${h} hosts fill the cores, so the ratio says what sharing one machine costs, not what ${h} machines`,
      'would add: each real host brings its own cores, and only PostgreSQL is shared.',
    );
  } else if (three.coresBusy >= cores * 0.65) {
    text.push(
      `${h} hosts overlap those waits but come close to the cores' limit: with ${h + 2} busy processes on ${cores}`,
      `cores each waits its turn and every round trip lengthens, so ${h} real machines, each with its own cores`,
      'and only PostgreSQL shared, would gain more than this ratio.',
    );
  } else {
    text.push(
      `${h} hosts overlap those waits without filling the cores: what is left is the commits' fsyncs and the`,
      'SMTP replies, which more hosts overlap further.',
    );
  }
  return text.join('\n');
}
