/**
 * A real IMAP server for the tests (Debian's `dovecot-imapd`, as .ci/run installs it): a
 * throwaway Dovecot with its own configuration, state and log in a temp folder
 * (`dovecot -c FILE`), IMAP with STARTTLS and IMAPS on 127.0.0.1 and free ports, users from a
 * passwd-file, mail in Maildirs, and the test certificate of tls-fixture.ts (clients trust
 * TEST_CA_PATH). Nothing here touches /etc/dovecot or a system instance.
 *
 * As root, Dovecot's own processes run as the package's `dovecot` and `dovenull` users and mail
 * belongs to `nobody`; as another user it runs rootless, everything as that user.
 *
 * Cleanup: `stop()` in afterAll; a detached watchdog runs `doveadm stop` and removes the folder
 * if the test process dies first.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  type Availability,
  describeWith,
  freePort,
  startWatchdog,
  waitForListener,
} from './mail-server-process.js';
import { serverCertificate } from './tls-fixture.js';

const run = promisify(execFile);

const DOVECOT_BIN = '/usr/sbin/dovecot';
const DOVEADM_BIN = '/usr/bin/doveadm';
const INSTALL_HINT =
  "install Debian's `dovecot-imapd` package (`DEBIAN_FRONTEND=noninteractive apt-get install -y dovecot-imapd`), as .ci/run does";

export const DOVECOT: Availability = findDovecot();

/** `describe` when Dovecot can run here; else one failing test that says what to install. */
export function describeDovecot(title: string, body: () => void): void {
  describeWith(DOVECOT, title, body);
}

function findDovecot(): Availability {
  if (!existsSync(DOVECOT_BIN) || !existsSync(DOVEADM_BIN)) {
    return { ok: false, reason: `IMAP tests cannot run: Dovecot is not installed; ${INSTALL_HINT}.` };
  }
  if (process.getuid?.() === 0) {
    try {
      for (const user of ['dovecot', 'dovenull', 'nobody'])
        execFileSync('id', ['-u', user], { stdio: 'ignore' });
    } catch {
      return {
        ok: false,
        reason: `IMAP tests cannot run: the dovecot, dovenull or nobody user is missing; ${INSTALL_HINT}.`,
      };
    }
  }
  return { ok: true };
}

export interface DovecotUser {
  user: string;
  /** Stored as {PLAIN}: a test server. No `:` (the passwd-file's separator). */
  password: string;
}

export interface Dovecot {
  /** IMAP with STARTTLS offered. */
  port: number;
  /** IMAP over TLS from the first byte. */
  tlsPort: number;
  dir: string;
  /** The user's Maildir (INBOX; other folders are `.Name` inside it). */
  maildirOf(user: string): string;
  log(): string;
  stop(): Promise<void>;
}

export async function startDovecot(options: { users: DovecotUser[] }): Promise<Dovecot> {
  if (!DOVECOT.ok) throw new Error(DOVECOT.reason);
  const root = process.getuid?.() === 0;
  const mailUid = root
    ? Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim())
    : userInfo().uid;
  const mailGid = root
    ? Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).trim())
    : userInfo().gid;
  const dir = mkdtempSync(path.join(tmpdir(), 'newsletter-dovecot-'));
  // The login and mail processes (other users when root) need to reach their files in here.
  chmodSync(dir, 0o755);
  const mail = path.join(dir, 'mail');
  for (const sub of ['run', 'state', mail]) mkdirSync(path.resolve(dir, sub), { recursive: true });
  chownSync(mail, mailUid, mailGid);
  const certificate = serverCertificate();
  writeFileSync(path.join(dir, 'cert.pem'), certificate.cert);
  writeFileSync(path.join(dir, 'key.pem'), certificate.key, { mode: 0o600 });
  for (const user of options.users) {
    if (user.password.includes(':') || user.user.includes(':'))
      throw new Error('no ":" in a passwd-file user');
  }
  writeFileSync(
    path.join(dir, 'users'),
    options.users.map((u) => `${u.user}:{PLAIN}${u.password}::::::\n`).join(''),
    { mode: 0o644 },
  );
  const conf = path.join(dir, 'dovecot.conf');
  const stop = { file: DOVEADM_BIN, args: ['-c', conf, 'stop'] };
  const watchdog = startWatchdog(stop, dir);

  let ports: { port: number; tlsPort: number } | null = null;
  let lastError = '';
  for (let attempt = 0; attempt < 3 && ports === null; attempt++) {
    const candidate = { port: await freePort(), tlsPort: await freePort() };
    if (candidate.port === candidate.tlsPort) continue;
    writeFileSync(conf, configuration(dir, candidate, { root, mailUid, mailGid }));
    try {
      // Without -F it forks into the background once its listeners are bound. Its stdio must not
      // be a pipe of ours: the daemon keeps it open, and a wait for it to close would never end.
      await daemonise(DOVECOT_BIN, ['-c', conf]);
      await waitForListener(candidate.port, 10_000, 'Dovecot');
      await waitForListener(candidate.tlsPort, 10_000, 'Dovecot (TLS)');
      ports = candidate;
    } catch (error) {
      lastError = `${(error as { stderr?: string }).stderr ?? String(error)}\n${readLog(dir)}`;
      await run(DOVEADM_BIN, ['-c', conf, 'stop'], { timeout: 10_000 }).catch(() => undefined);
    }
  }
  if (ports === null) {
    watchdog.kill();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`Dovecot could not be started:\n${lastError}`);
  }

  let stopped = false;
  return {
    ...ports,
    dir,
    maildirOf: (user) => path.join(mail, user),
    log: () => readLog(dir),
    async stop() {
      if (stopped) return;
      stopped = true;
      await run(DOVEADM_BIN, ['-c', conf, 'stop'], { timeout: 10_000 }).catch(() => undefined);
      watchdog.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function configuration(
  dir: string,
  ports: { port: number; tlsPort: number },
  who: { root: boolean; mailUid: number; mailGid: number },
): string {
  const me = userInfo().username;
  // Rootless (https://doc.dovecot.org/ "Rootless installation"): every process as the caller.
  const rootless = who.root
    ? ''
    : `default_internal_user = ${me}\ndefault_login_user = ${me}\ndefault_internal_group = ${userInfo().gid}\n`;
  return `# A throwaway test instance (test/helpers/dovecot.ts).
base_dir = ${dir}/run
state_dir = ${dir}/state
instance_name = newsletter-test-${ports.port}
protocols = imap
listen = 127.0.0.1
log_path = ${dir}/dovecot.log
${rootless}ssl = yes
ssl_cert = <${dir}/cert.pem
ssl_key = <${dir}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:${dir}/mail/%u
first_valid_uid = 1
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${dir}/users
}
userdb {
  driver = static
  args = uid=${who.mailUid} gid=${who.mailGid} home=${dir}/mail/%u
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = ${ports.port}
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = ${ports.tlsPort}
    ssl = yes
  }
}
service anvil {
  chroot =
}
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
`;
}

/** Runs a command that forks a daemon and exits; rejects on a non-zero exit. */
function daemonise(file: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${file} ${args.join(' ')} exited ${code}`)),
    );
  });
}

function readLog(dir: string): string {
  try {
    return readFileSync(path.join(dir, 'dovecot.log'), 'utf8');
  } catch {
    return '(no dovecot.log)';
  }
}
