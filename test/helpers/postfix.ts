/**
 * A real Postfix for the tests (Debian's `postfix` package, as .ci/run installs it): a throwaway
 * instance with its own configuration, queue and log in a temp folder (`postfix -c DIR`), its
 * SMTP server on 127.0.0.1 and a free port, relaying every domain it does not own to one
 * loopback port (a test's SMTP sink), and delivering its own domains through an aliases file:
 * `"|command"` pipes and Maildir folders, with recipient_delimiter `+` (VERP, as Debian ships).
 * Postfix writes real DSNs to the envelope sender when the relay refuses a recipient.
 *
 * Postfix's master runs as root only, so the tests need root (CI is root). Local delivery runs as
 * `nobody` (Postfix never runs an alias command as root): what a pipe or a Maildir touches must
 * be writable by `deliveryUser`. Nothing here touches /etc/postfix or a system instance.
 *
 * Cleanup: `stop()` in afterAll; a detached watchdog runs `postfix abort` and removes the folder
 * if the test process dies first.
 */
import { execFile, execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  type Availability,
  describeWith,
  freePort,
  startWatchdog,
  waitForListener,
} from './mail-server-process.js';

const run = promisify(execFile);

const POSTFIX_BIN = '/usr/sbin/postfix';
const DAEMONS = '/usr/lib/postfix/sbin';
const INSTALL_HINT =
  'install Debian\'s `postfix` package (`DEBIAN_FRONTEND=noninteractive apt-get install -y postfix`, debconf "No configuration"), as .ci/run does';

export interface DeliveryUser {
  name: string;
  uid: number;
  gid: number;
}

export const POSTFIX: Availability & { deliveryUser?: DeliveryUser } = findPostfix();

/** `describe` when Postfix can run here; else one failing test that says what to install. */
export function describePostfix(title: string, body: () => void): void {
  describeWith(POSTFIX, title, body);
}

function findPostfix(): Availability & { deliveryUser?: DeliveryUser } {
  if (!existsSync(POSTFIX_BIN) || !existsSync(path.join(DAEMONS, 'master'))) {
    return { ok: false, reason: `Postfix tests cannot run: Postfix is not installed; ${INSTALL_HINT}.` };
  }
  if (process.getuid?.() !== 0) {
    return {
      ok: false,
      reason:
        'Postfix tests cannot run: Postfix runs only as root (its master starts as root); run them as root, as CI does.',
    };
  }
  try {
    for (const user of ['postfix']) execFileSync('id', ['-u', user], { stdio: 'ignore' });
    execFileSync('getent', ['group', 'postdrop'], { stdio: 'ignore' });
    const uid = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).trim());
    return { ok: true, deliveryUser: { name: 'nobody', uid, gid } };
  } catch {
    return {
      ok: false,
      reason: `Postfix tests cannot run: the postfix user, the postdrop group or the nobody user is missing; ${INSTALL_HINT}.`,
    };
  }
}

export interface PostfixOptions {
  /** Domains this Postfix delivers itself (the return path's domain). */
  localDomains: string[];
  /** Everything else is relayed to 127.0.0.1:relayPort (a test's SMTP sink). */
  relayPort: number;
  /**
   * Local part → `"|command args"` (run by /bin/sh as deliveryUser), or `{ maildir: NAME }`: a
   * Maildir the helper creates in the instance's folder, owned by deliveryUser (`maildir(NAME)`).
   */
  aliases: Record<string, string | { maildir: string }>;
}

export interface Postfix {
  /** Its SMTP server on 127.0.0.1. */
  port: number;
  dir: string;
  /** The user alias pipes and Maildir deliveries run as. */
  deliveryUser: DeliveryUser;
  /** Postfix's own log (maillog_file), for a failing test's message. */
  maillog(): string;
  /** Messages still in the queue (active, deferred, …), from `postqueue -j`. */
  queued(): Promise<
    { queueName: string; sender: string; recipients: { address: string; reason?: string }[] }[]
  >;
  /** The folder of an alias's `{ maildir: NAME }` (cur/, new/, tmp/), owned by deliveryUser. */
  maildir(name: string): string;
  /** Changes main.cf settings (`postconf -e`) and reloads, e.g. `defer_transports: 'local'`. */
  configure(settings: Record<string, string>): Promise<void>;
  /** Attempts every queued message now (`postqueue -f`), deferred ones included. */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

export async function startPostfix(options: PostfixOptions): Promise<Postfix> {
  if (!POSTFIX.ok || !POSTFIX.deliveryUser) throw new Error(POSTFIX.ok ? 'no delivery user' : POSTFIX.reason);
  const deliveryUser = POSTFIX.deliveryUser;
  const dir = mkdtempSync(path.join(tmpdir(), 'newsletter-postfix-'));
  // Local delivery (as nobody) must reach the Maildirs below.
  chmodSync(dir, 0o755);
  const etc = path.join(dir, 'etc');
  const data = path.join(dir, 'data');
  for (const sub of [etc, data, path.join(dir, 'queue')]) mkdirSync(sub, { recursive: true });
  chownSync(data, Number(execFileSync('id', ['-u', 'postfix'], { encoding: 'utf8' }).trim()), 0);
  for (const target of Object.values(options.aliases)) {
    if (typeof target === 'string') continue;
    for (const sub of ['', 'cur', 'new', 'tmp']) {
      const folder = path.join(dir, 'maildirs', target.maildir, sub);
      mkdirSync(folder, { recursive: true });
      chownSync(folder, deliveryUser.uid, deliveryUser.gid);
    }
  }
  const stop = { file: POSTFIX_BIN, args: ['-c', etc, 'abort'] };
  const watchdog = startWatchdog(stop, dir);

  let port = 0;
  let lastError = '';
  // A free port can be taken between the probe and Postfix's bind: try a few.
  for (let attempt = 0; attempt < 3 && port === 0; attempt++) {
    const candidate = await freePort();
    writeConfiguration(dir, candidate, options);
    try {
      await run(POSTFIX_BIN, ['-c', etc, 'start'], { timeout: 30_000 });
      await waitForListener(candidate, 10_000, 'Postfix');
      port = candidate;
    } catch (error) {
      lastError = `${(error as { stderr?: string }).stderr ?? String(error)}\n${readLog(dir)}`;
      await run(POSTFIX_BIN, ['-c', etc, 'abort']).catch(() => undefined);
    }
  }
  if (port === 0) {
    watchdog.kill();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`Postfix could not be started:\n${lastError}`);
  }

  let stopped = false;
  return {
    port,
    dir,
    deliveryUser,
    maillog: () => readLog(dir),
    async queued() {
      const { stdout } = await run('/usr/sbin/postqueue', ['-c', etc, '-j']);
      return stdout
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => {
          const entry = JSON.parse(line) as {
            queue_name: string;
            sender: string;
            recipients: { address: string; delay_reason?: string }[];
          };
          return {
            queueName: entry.queue_name,
            sender: entry.sender,
            recipients: entry.recipients.map((r) => ({
              address: r.address,
              ...(r.delay_reason === undefined ? {} : { reason: r.delay_reason }),
            })),
          };
        });
    },
    maildir: (name) => path.join(dir, 'maildirs', name),
    async configure(settings) {
      const pairs = Object.entries(settings).map(([key, value]) => `${key}=${value}`);
      await run('/usr/sbin/postconf', ['-c', etc, '-e', ...pairs]);
      await run(POSTFIX_BIN, ['-c', etc, 'reload'], { timeout: 30_000 });
    },
    async flush() {
      await run('/usr/sbin/postqueue', ['-c', etc, '-f'], { timeout: 30_000 });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      // `stop` asks master to end its children; `abort` makes sure, whatever state it is in.
      await run(POSTFIX_BIN, ['-c', etc, 'stop'], { timeout: 10_000 }).catch(() => undefined);
      await run(POSTFIX_BIN, ['-c', etc, 'abort'], { timeout: 10_000 }).catch(() => undefined);
      watchdog.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * main.cf, master.cf and the aliases database for one instance. No chroot (the queue folder is
 * not set up as a jail), logging to a file (no syslog in a container), IPv4 loopback only, every
 * non-local domain relayed to the sink; mail for the local domains is delivered by `local` from
 * the aliases file alone.
 */
function writeConfiguration(dir: string, port: number, options: PostfixOptions): void {
  const etc = path.join(dir, 'etc');
  const main = {
    compatibility_level: '3.6',
    queue_directory: path.join(dir, 'queue'),
    data_directory: path.join(dir, 'data'),
    command_directory: '/usr/sbin',
    daemon_directory: DAEMONS,
    meta_directory: '/etc/postfix',
    shlib_directory: '/usr/lib/postfix',
    mail_owner: 'postfix',
    setgid_group: 'postdrop',
    myhostname: 'mx.newsletter.test',
    mydomain: 'newsletter.test',
    myorigin: options.localDomains[0] ?? 'newsletter.test',
    mydestination: options.localDomains.join(', '),
    inet_interfaces: '127.0.0.1',
    inet_protocols: 'ipv4',
    mynetworks: '127.0.0.0/8',
    relayhost: `[127.0.0.1]:${options.relayPort}`,
    // Local recipients are the aliases (there are no Unix accounts behind them).
    local_recipient_maps: '$alias_maps',
    recipient_delimiter: '+',
    alias_maps: `hash:${path.join(etc, 'aliases')}`,
    alias_database: `hash:${path.join(etc, 'aliases')}`,
    maillog_file: path.join(dir, 'maillog'),
    maillog_file_prefixes: dir,
    smtputf8_enable: 'no',
    biff: 'no',
    // No DNS anywhere: the relay is a bracketed address, and nothing else leaves.
    disable_dns_lookups: 'yes',
    smtp_host_lookup: 'native',
    // Fail fast and visibly: a test waits for outcomes, never for Postfix's retry schedule.
    maximal_queue_lifetime: '1h',
    bounce_queue_lifetime: '1h',
    queue_run_delay: '1s',
    minimal_backoff_time: '1s',
    maximal_backoff_time: '2s',
  };
  writeFileSync(
    path.join(etc, 'main.cf'),
    `${Object.entries(main)
      .map(([key, value]) => `${key} = ${value}`)
      .join('\n')}\n`,
  );
  const services = [
    `127.0.0.1:${port} inet n - n - - smtpd`,
    'pickup unix n - n 60 1 pickup',
    'cleanup unix n - n - 0 cleanup',
    'qmgr unix n - n 300 1 qmgr',
    'rewrite unix - - n - - trivial-rewrite',
    'bounce unix - - n - 0 bounce',
    'defer unix - - n - 0 bounce',
    'trace unix - - n - 0 bounce',
    'verify unix - - n - 1 verify',
    'flush unix n - n 1000? 0 flush',
    'proxymap unix - - n - - proxymap',
    'proxywrite unix - - n - 1 proxymap',
    'smtp unix - - n - - smtp',
    'relay unix - - n - - smtp',
    'showq unix n - n - - showq',
    'error unix - - n - - error',
    'retry unix - - n - - error',
    'discard unix - - n - - discard',
    'local unix - n n - - local',
    'anvil unix - - n - 1 anvil',
    'scache unix - - n - 1 scache',
    'postlog unix-dgram n - n - 1 postlogd',
  ];
  writeFileSync(path.join(etc, 'master.cf'), `${services.join('\n')}\n`);
  const aliases = Object.entries(options.aliases).map(([name, target]) => {
    if (typeof target !== 'string') return `${name}: ${path.join(dir, 'maildirs', target.maildir)}/`;
    return `${name}: ${target.startsWith('|') ? `"${target.replace(/"/g, '\\"')}"` : target}`;
  });
  writeFileSync(path.join(etc, 'aliases'), `${aliases.join('\n')}\n`);
  execFileSync('/usr/sbin/postalias', ['-c', etc, path.join(etc, 'aliases')]);
}

/**
 * Lets the delivery user reach `target` (a program an alias pipe runs, such as the built CLI in
 * this checkout): every folder above it that others cannot traverse gets `o+x` until the returned
 * function puts the modes back. A checkout in a private folder (a CI clone in a 0700 temp folder)
 * would otherwise be out of the pipe's reach. Throws, saying why, if the user still cannot read it.
 */
export function letDeliveryUserReach(target: string): () => void {
  const user = POSTFIX.deliveryUser;
  if (!user) throw new Error('Postfix is not available');
  const changed: { folder: string; mode: number }[] = [];
  for (let folder = path.dirname(path.resolve(target)); ; folder = path.dirname(folder)) {
    const mode = statSync(folder).mode & 0o7777;
    if ((mode & 0o001) === 0) {
      chmodSync(folder, mode | 0o001);
      changed.push({ folder, mode });
    }
    if (path.dirname(folder) === folder) break;
  }
  const restore = () => {
    for (const { folder, mode } of changed.reverse()) chmodSync(folder, mode);
  };
  try {
    execFileSync('runuser', ['-u', user.name, '--', 'test', '-r', target], { stdio: 'ignore' });
  } catch {
    restore();
    throw new Error(
      `${user.name} (Postfix's delivery user) cannot read ${target}: make the checkout readable by others`,
    );
  }
  return restore;
}

function readLog(dir: string): string {
  try {
    return readFileSync(path.join(dir, 'maillog'), 'utf8');
  } catch {
    return '(no maillog)';
  }
}
