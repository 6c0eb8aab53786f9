/**
 * Where send-due may be scheduled on this host: the user's crontab (`crontab -l`, when the
 * crontab program exists), /etc/crontab, /etc/cron.d/*, and systemd services that run send-due.
 * Tests (and operators checking another file) pass `--crontab FILE` instead: then only those are read.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync, realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { UnknownVariable } from '../config-variables.js';
import { cronUnknownVariables } from './cron-variables.js';
import {
  type CrontabFormat,
  parseCrontab,
  parseSystemdUnit,
  type ResolvedCommand,
  resolveDatabase,
  type ScheduledCommand,
  sixthFieldsAreUsers,
} from './crontab.js';

export interface CronScan {
  /** Every source read, for the report. */
  sources: string[];
  /** Files given with --crontab that could not be read. */
  unreadable: string[];
  commands: ResolvedCommand[];
  /** Misspelt NEWSLETTER_* names above the send-due lines and in their env files. */
  unknownVariables: UnknownVariable[];
}

const SYSTEMD_DIRS = ['/etc/systemd/system', '/lib/systemd/system', '/usr/lib/systemd/system'];

export async function scanSchedules(files: readonly string[] | null): Promise<CronScan> {
  const sources: string[] = [];
  const unreadable: string[] = [];
  const scheduled: ScheduledCommand[] = [];
  const add = (source: string, text: string | null, format: CrontabFormat | 'systemd') => {
    if (text === null) return;
    sources.push(source);
    scheduled.push(
      ...(format === 'systemd' ? parseSystemdUnit(text, source) : parseCrontab(text, format, source)),
    );
  };

  if (files !== null) {
    for (const file of files) {
      const text = readText(path.resolve(file));
      if (text === null) unreadable.push(path.resolve(file));
      add(path.resolve(file), text, formatOf(file, text ?? ''));
    }
  } else {
    const user = await userCrontab();
    if (user !== null) add('crontab -l', user, 'user');
    add('/etc/crontab', readText('/etc/crontab'), 'system');
    for (const name of list('/etc/cron.d')) {
      // cron ignores names with dots (backups such as newsletter.dpkg-old, editor leftovers).
      if (/^[A-Za-z0-9_-]+$/.test(name))
        add(`/etc/cron.d/${name}`, readText(`/etc/cron.d/${name}`), 'system');
    }
    const userUnits = path.join(os.homedir(), '.config/systemd/user');
    for (const dir of [...SYSTEMD_DIRS, userUnits]) {
      for (const name of list(dir)) {
        if (!name.endsWith('.service')) continue;
        const text = readText(path.join(dir, name));
        if (text !== null && /send-due/.test(text)) add(path.join(dir, name), text, 'systemd');
      }
    }
  }

  const context = { homeOf, readFile: readText };
  const commands = scheduled.map((entry) => ({ ...entry, ...resolveDatabase(entry, context) }));
  return { sources, unreadable, commands, unknownVariables: cronUnknownVariables(commands, readText) };
}

/** Two database paths are the same file (symlinks resolved when the files exist). */
export function sameDatabase(a: string, b: string): boolean {
  return canonical(a) === canonical(b);
}

function canonical(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return path.resolve(file);
  }
}

/**
 * System format for /etc/crontab and files in a cron.d folder. Any other file given with
 * --crontab may be either: a copy of /etc/crontab, or `crontab -l > crontab` (the README's
 * `* * * * * cd /srv/site && newsletter send-due`). Going by the name alone read that second one
 * as user `cd` running `/srv/site && …`, and its database "could not be worked out"; so such a
 * file is read as a system crontab only when every line's sixth field names a user of this host.
 */
function formatOf(file: string, text: string): CrontabFormat | 'systemd' {
  if (file.endsWith('.service')) return 'systemd';
  const resolved = path.resolve(file);
  if (resolved === '/etc/crontab' || path.basename(path.dirname(resolved)) === 'cron.d') return 'system';
  return sixthFieldsAreUsers(text, (user) => homeOf(user) !== null) ? 'system' : 'user';
}

/** `crontab -l`, or null when there is no crontab program; an empty text when the user has none. */
async function userCrontab(): Promise<string | null> {
  const program = findInPath('crontab');
  if (program === null) return null;
  return new Promise((resolve) => {
    execFile(program, ['-l'], { timeout: 5000 }, (error, stdout) => {
      // "no crontab for USER" exits 1: that is an empty crontab, not a failure.
      resolve(error ? '' : stdout);
    });
  });
}

function findInPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** cron starts each command in its owner's home folder. */
function homeOf(user: string | null): string | null {
  if (user === null || user === os.userInfo().username) return os.homedir();
  const passwd = readText('/etc/passwd');
  for (const line of passwd?.split('\n') ?? []) {
    const fields = line.split(':');
    if (fields[0] === user && fields[5]) return fields[5];
  }
  return null;
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}
