/**
 * `npm run chaos -- --hosts 3 --minutes 2 [--seed N]`: several hosts send newsletters through one
 * throwaway PostgreSQL server while faults are injected at random, then the promises are checked.
 * docs/reliability.md explains the guarantees and records what this driver measured.
 *
 * Set-up: a PostgreSQL cluster (test/support/postgres-server.js), an SMTP server whose faults can
 * be switched on (sink.js), one TCP proxy per host between it and PostgreSQL
 * (test/support/tcp-proxy.js), and the hosts (hosts.js): loops that run the built CLI's
 * `send-due` as cron would. Newsletters ("Chaos round N", to the same list) are created one after
 * the other, each as soon as the previous one is `sent`.
 *
 * Faults, one every few seconds, kind, target and duration drawn from the seeded generator:
 * SIGKILL of a running host; SIGSTOP of a host for longer than the lease, then SIGCONT; a freeze
 * of one host's proxy for longer than the lease (a partition); `pg_ctl restart -m fast`; a spell
 * of 451 replies; connections cut right after the message data, or at RCPT TO.
 *
 * At the end, as an operator would: every fault ends, the hosts stop, one clean run finishes what
 * is left, each newsletter's `unknown` deliveries are reconciled from the SMTP server's record
 * (`--mark-sent` for the addresses it received, `--resend` for the rest), and a last run sends
 * those. Then the invariants (check.js). Exit 0 when they hold, 1 when one does not.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startPostgresServer } from '../../test/support/postgres-server.js';
import { startTcpProxy } from '../../test/support/tcp-proxy.js';
import { checkInvariants, reconcileUnknowns, unknownsByRun } from './check.js';
import { startHost, hostEnv } from './hosts.js';
import { seeded } from './random.js';
import { startChaosSink } from './sink.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = path.join(ROOT, 'bin', 'newsletter.js');
const LEASE_MS = 3000;
const BATCH = 20;
const RECIPIENTS = 1000;

function parseArgs(argv) {
  const options = { hosts: 3, seconds: 120, seed: null };
  for (let i = 0; i < argv.length; i++) {
    const [name, value] = [argv[i], argv[i + 1]];
    if (name === '--hosts') options.hosts = Number(value);
    else if (name === '--minutes') options.seconds = Number(value) * 60;
    else if (name === '--seconds') options.seconds = Number(value);
    else if (name === '--seed') options.seed = Number(value);
    else {
      process.stderr.write(
        `chaos: unknown option ${name}\nusage: npm run chaos -- [--hosts N] [--minutes M | --seconds S] [--seed N]\n`,
      );
      process.exit(2);
    }
    i += 1;
  }
  if (!(options.hosts >= 2 && options.seconds > 0)) {
    process.stderr.write('chaos: --hosts must be at least 2 and the duration positive\n');
    process.exit(2);
  }
  options.seed ??= Math.floor(Math.random() * 2 ** 31);
  return options;
}

const options = parseArgs(process.argv.slice(2));
const random = seeded(options.seed);
const started = Date.now();
const log = (text) =>
  process.stderr.write(`chaos ${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s: ${text}\n`);
log(
  `seed ${options.seed} (replay with --seed ${options.seed}); ${options.hosts} hosts, ${options.seconds} s of faults`,
);

const cleanups = [];
const cleanUp = async () => {
  for (const step of cleanups.reverse()) await step().catch(() => undefined);
};
for (const signal of ['SIGINT', 'SIGTERM'])
  process.on(signal, () => void cleanUp().then(() => process.exit(130)));

const server = await startPostgresServer({
  label: 'chaos',
  settings: ['fsync=off', 'synchronous_commit=off', 'full_page_writes=off', 'max_connections=200'],
});
cleanups.push(() => server.stop());
const admin = new pg.Pool({ connectionString: server.url(), max: 1 });
admin.on('error', () => undefined);
await admin.query('CREATE DATABASE chaos');
await admin.end();
const databaseUrl = server.url('chaos');
const db = new pg.Pool({ connectionString: databaseUrl, max: 2 });
db.on('error', () => undefined);
cleanups.push(() => db.end());
/** The driver's own reads, which a restart of the server must not break. */
const query = async (text, values) => {
  for (let attempt = 0; ; attempt++) {
    try {
      return (await db.query(text, values)).rows;
    } catch (error) {
      if (attempt >= 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
};

const sink = await startChaosSink({ random: random.next });
cleanups.push(() => sink.close());

const dir = mkdtempSync(path.join(os.tmpdir(), 'newsletter-chaos-'));
cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
cpSync(path.join(ROOT, 'templates'), path.join(dir, 'templates'), { recursive: true });
const base = {
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: dir,
  NEWSLETTER_TRANSPORT: sink.url,
  NEWSLETTER_FROM: 'News <news@example.org>',
  NEWSLETTER_BASE_URL: 'https://example.org/newsletter',
  NEWSLETTER_SECRET: 'chaos-driver-secret-0123456789abcdef',
  NEWSLETTER_LEASE: `${LEASE_MS}ms`,
  NEWSLETTER_BATCH: String(BATCH),
  NEWSLETTER_RATE: '200',
  // Five quick retries: a recipient `failed` only if five attempts in a row met a 451 spell.
  NEWSLETTER_RETRY_AFTER: '1s,1s,1s,1s,1s',
  NEWSLETTER_SMTP_TIMEOUT: '10s',
};
const operatorEnv = hostEnv(base, { id: 'operator', databaseUrl, lockRoot: path.join(dir, 'locks') });
mkdirSync(operatorEnv.NEWSLETTER_LOCK_DIR, { recursive: true });
/**
 * The CLI as the operator runs it, directly on the database. Never spawnSync: the proxies and the
 * SMTP server live in this process, and must keep carrying the hosts' traffic meanwhile.
 */
const cli = (args, { allowed = [0] } = {}) =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, env: operatorEnv });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (code) => {
      if (allowed.includes(code)) resolve(stdout);
      else reject(new Error(`newsletter ${args.join(' ')} exited ${code}:\n${stderr}`));
    });
  });

await cli(['init']);
const addresses = Array.from(
  { length: RECIPIENTS },
  (_, i) => `reader-${String(i + 1).padStart(5, '0')}@example.org`,
);
writeFileSync(
  path.join(dir, 'readers.csv'),
  `email,name\n${addresses.map((a, i) => `${a},Reader ${i + 1}`).join('\n')}\n`,
);
await cli(['recipients', 'import', 'readers.csv', '--list', 'readers']);

/** round number → newsletter id */
const rounds = new Map();
const newRound = async () => {
  const round = rounds.size + 1;
  const { id } = JSON.parse(
    await cli([
      'create',
      '--subject',
      `Chaos round ${round}`,
      '--template',
      'templates/welcome.mjml',
      '--list',
      'readers',
      '--at',
      'now',
      '--json',
    ]),
  );
  rounds.set(round, id);
  log(`round ${round}: newsletter ${id} scheduled to ${RECIPIENTS} recipients`);
};
await newRound();

const hosts = [];
const proxies = new Map();
for (let i = 1; i <= options.hosts; i++) {
  const id = `host-${i}`;
  const proxy = await startTcpProxy({ targetPort: server.port });
  proxies.set(id, proxy);
  cleanups.push(() => proxy.close());
  const url = new URL(databaseUrl);
  url.port = String(proxy.port);
  const env = hostEnv(base, { id, databaseUrl: url.href, lockRoot: path.join(dir, 'locks') });
  mkdirSync(env.NEWSLETTER_LOCK_DIR, { recursive: true });
  hosts.push(startHost({ id, bin: BIN, env, random, log }));
}
cleanups.push(async () => {
  for (const host of hosts) {
    host.stopping = true;
    host.child?.kill('SIGKILL');
  }
});

// ---- the faults ------------------------------------------------------------------------------

/** Every fault injected: kind, target, when, until when, and how many runs it could have hit. */
const faults = [];
const pending = new Set();
const later = (ms, action) => {
  const timer = setTimeout(() => {
    pending.delete(entry);
    action();
  }, ms);
  const entry = { timer, action };
  pending.add(entry);
};
const running = () => hosts.filter((host) => host.child && !host.stopped);

async function injectFault() {
  const kind = random.weighted({
    kill: 3,
    stop: 2,
    freeze: 2,
    restart: 1,
    tempfail: 1,
    cutAfterData: 1,
    cutAtRcpt: 1,
  });
  const longerThanLease = random.int(Math.round(1.5 * LEASE_MS), 3 * LEASE_MS);
  const target = random.pick(hosts);
  const at = Date.now();
  const fault = { kind, host: null, at, until: at, inFlight: 0 };
  switch (kind) {
    case 'kill': {
      if (!target.child || target.stopped) return;
      fault.host = target.id;
      fault.inFlight = 1;
      target.child.kill('SIGKILL');
      break;
    }
    case 'stop': {
      const child = target.child;
      if (!child || target.stopped) return;
      fault.host = target.id;
      fault.inFlight = 1;
      fault.until = at + longerThanLease;
      target.stopped = true;
      child.kill('SIGSTOP');
      later(longerThanLease, () => {
        child.kill('SIGCONT');
        if (target.child === child) target.stopped = false;
      });
      break;
    }
    case 'freeze': {
      const proxy = proxies.get(target.id);
      if (proxy.frozen) return;
      fault.host = target.id;
      fault.inFlight = target.child ? 1 : 0;
      fault.until = at + longerThanLease;
      proxy.freeze();
      later(longerThanLease, () => proxy.thaw());
      break;
    }
    case 'restart': {
      fault.inFlight = running().length;
      await server.restart();
      fault.until = Date.now();
      break;
    }
    case 'tempfail': {
      fault.until = at + random.int(3000, 8000);
      sink.faults.tempfail = 0.3;
      later(fault.until - at, () => {
        sink.faults.tempfail = 0;
      });
      break;
    }
    case 'cutAfterData':
    case 'cutAtRcpt': {
      const count = random.int(1, 3);
      sink.faults[kind] += count;
      // Each cut connection carries at most three messages in flight (the pool pipelines).
      fault.inFlight = count;
      fault.until = at + 2000;
      break;
    }
  }
  faults.push(fault);
  log(
    `fault: ${kind}${fault.host ? ` ${fault.host}` : ''}${fault.until > at ? ` for ${((fault.until - at) / 1000).toFixed(1)} s` : ''}`,
  );
}

const deadline = started + options.seconds * 1000;
let nextFault = Date.now() + random.int(2000, 5000);
while (Date.now() < deadline) {
  const [current] = await query('SELECT status FROM newsletters WHERE id = $1', [rounds.get(rounds.size)]);
  if (current?.status === 'sent') await newRound();
  if (Date.now() >= nextFault) {
    await injectFault();
    nextFault = Date.now() + random.int(2000, 6000);
  }
  await new Promise((resolve) => setTimeout(resolve, 250));
}

// ---- the operator's turn ----------------------------------------------------------------------

log('faults over: thawing, resuming, stopping the hosts');
for (const entry of [...pending]) {
  clearTimeout(entry.timer);
  pending.delete(entry);
  entry.action();
}
sink.faults.tempfail = 0;
sink.faults.cutAfterData = 0;
sink.faults.cutAtRcpt = 0;
for (const host of hosts) host.stopping = true;
await Promise.race([
  Promise.all(hosts.map((host) => host.done)),
  new Promise((resolve) => setTimeout(resolve, 120_000)),
]);
const hung = hosts.filter((host) => host.child);
for (const host of hung) {
  log(`${host.id}: its run did not end within two minutes of the faults ending; killed`);
  host.child.kill('SIGKILL');
}

// One clean run after every open lease has passed: expiry settles what the faults left claimed.
const finalRun = async () => {
  const [open] = await query(
    'SELECT max(lease_until) AS until, (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now FROM runs WHERE ended_at IS NULL',
  );
  if (open?.until)
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, Number(open.until) - Number(open.now) + 50)),
    );
  for (let attempt = 0; attempt < 10; attempt++) {
    await cli(['send-due'], { allowed: [0, 8] });
    const left = await query("SELECT count(*)::int AS n FROM newsletters WHERE status <> 'sent'");
    const retries = await query(
      "SELECT count(*)::int AS n FROM deliveries WHERE state IN ('retry', 'claimed')",
    );
    if (left[0].n === 0 && retries[0].n === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 1100)); // NEWSLETTER_RETRY_AFTER is 1 s
  }
};
await finalRun();
const unknownBefore = await unknownsByRun(query);
const reconciled = await reconcileUnknowns({ query, cli, sink, rounds });
log(
  `reconciled ${reconciled.markedSent} unknown deliveries as sent (the server had them), ${reconciled.resent} for resending`,
);
await finalRun();

const report = await checkInvariants({
  query,
  sink,
  rounds,
  recipients: addresses,
  faults,
  hosts,
  unknownBefore,
  batch: BATCH,
  leaseMs: LEASE_MS,
});
report.seed = options.seed;
report.hosts = options.hosts;
report.seconds = options.seconds;
report.reconciled = reconciled;
report.sink = { ...sink.stats };
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
log(
  `${report.newsletters} newsletters, ${report.runs} runs, ${faults.length} faults, ${report.unknown.total} unknown (bound ${report.unknown.bound}), ${report.failed} failed, ${report.duplicates} duplicates: ${report.violations.length === 0 ? 'every invariant holds' : `${report.violations.length} VIOLATIONS`}`,
);
for (const violation of report.violations) log(`VIOLATION: ${violation}`);
log(`seed ${options.seed}`);
await cleanUp();
process.exit(report.violations.length === 0 ? 0 : 1);
