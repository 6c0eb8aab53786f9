/**
 * Host identity: a stable id for "this machine", used to bind a SQLite database to the host that
 * created or adopted it (DESIGN, promise 4 and "Host identity").
 *
 * machine-id alone is not enough: a server restored from a backup image, or a VM cloned from a
 * template, keeps its /etc/machine-id, and identical clones running the same crontab against copies
 * of the same database are exactly how the old mailer sent mail twice. So the id mixes machine-id
 * with a per-instance signal that a clone does not inherit: the cloud-init instance id where there
 * is one, else the MAC addresses of the physical network interfaces.
 *
 * The id is a keyed hash so that it does not disclose machine-id (which systemd asks not to expose
 * to the network) in databases, logs and bug reports.
 *
 * Changing the inputs or the encoding below changes every host's id, and every bound database would
 * then refuse to send until adopted again: treat the format as frozen (bump the key's version and
 * migrate if it ever has to change).
 */
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

// node:crypto is loaded when an id is worked out, not when NEWSLETTER_HOST_ID gives it: the idle
// cron run (src/cli/idle.ts) should load as little as it can.
const require = createRequire(import.meta.url);

export type HostIdSource = 'env' | 'machine-id+cloud-instance' | 'machine-id+mac' | 'machine-id' | 'hostname';

export interface HostIdentity {
  hostId: string;
  source: HostIdSource;
  /** Set when the id cannot tell clones apart; worth showing in `host` and `doctor`. */
  warning?: string;
}

export interface DetectHostIdOptions {
  env?: NodeJS.ProcessEnv;
  /** Tried in order; the first with a usable id wins. */
  machineIdPaths?: string[];
  cloudInstanceIdPath?: string;
  netClassDir?: string;
}

const HMAC_KEY = 'newsletter host id v1';

export const DEFAULT_MACHINE_ID_PATHS: readonly string[] = ['/etc/machine-id', '/var/lib/dbus/machine-id'];
export const DEFAULT_CLOUD_INSTANCE_ID_PATH = '/var/lib/cloud/data/instance-id';
export const DEFAULT_NET_CLASS_DIR = '/sys/class/net';

/**
 * Works out this host's id. Synchronous and side-effect free apart from reading a few small
 * files, so it can run at the start of every command.
 */
export function detectHostId(options: DetectHostIdOptions = {}): HostIdentity {
  const env = options.env ?? process.env;
  const override = env.NEWSLETTER_HOST_ID?.trim();
  if (override) return { hostId: override, source: 'env' };

  const machineId = readMachineId(options.machineIdPaths ?? DEFAULT_MACHINE_ID_PATHS);
  if (machineId === null) {
    return {
      hostId: keyedId(['hostname', os.hostname()]),
      source: 'hostname',
      warning:
        'No machine-id found (/etc/machine-id, /var/lib/dbus/machine-id): the host id is derived from ' +
        'the hostname, so clones of this server cannot be told apart. Set NEWSLETTER_HOST_ID to a ' +
        'value unique to this machine.',
    };
  }

  const instanceId = readCloudInstanceId(options.cloudInstanceIdPath ?? DEFAULT_CLOUD_INSTANCE_ID_PATH);
  if (instanceId !== null) {
    return {
      hostId: keyedId(['machine-id+cloud-instance', machineId, instanceId]),
      source: 'machine-id+cloud-instance',
    };
  }

  const macs = physicalMacAddresses(options.netClassDir ?? DEFAULT_NET_CLASS_DIR);
  if (macs.length > 0) {
    return { hostId: keyedId(['machine-id+mac', machineId, ...macs]), source: 'machine-id+mac' };
  }

  return {
    hostId: keyedId(['machine-id', machineId]),
    source: 'machine-id',
    warning:
      'No per-instance signal found (no cloud-init instance id, no physical network interface): the ' +
      'host id rests on machine-id alone, which a cloned image keeps. Set NEWSLETTER_HOST_ID to a ' +
      'value unique to this machine.',
  };
}

/** `h-` and 64 bits of HMAC-SHA256: plenty to tell a fleet apart, short enough to read aloud. */
function keyedId(parts: readonly string[]): string {
  // A JSON array keeps the parts unambiguous (no separator can be forged by a value).
  const digest = (require('node:crypto') as typeof import('node:crypto'))
    .createHmac('sha256', HMAC_KEY)
    .update(JSON.stringify(parts))
    .digest('hex');
  return `h-${digest.slice(0, 16)}`;
}

function readMachineId(paths: readonly string[]): string | null {
  for (const file of paths) {
    const value = readTrimmed(file)?.toLowerCase();
    // Golden images ship an empty machine-id (or systemd's "uninitialized" during first boot) so
    // that each instance generates its own: such a value identifies nothing.
    if (value && value !== 'uninitialized') return value;
  }
  return null;
}

function readCloudInstanceId(file: string): string | null {
  const value = readTrimmed(file);
  // cloud-init writes this placeholder when it found no datasource; every such host shares it.
  if (!value || value === 'iid-datasource-none') return null;
  return value;
}

/**
 * MACs of interfaces backed by a device (sysfs gives those a `device` link); virtual ones (lo,
 * bridges, veth, docker0, bonds) come and go with configuration and are ignored. Sorted so that
 * enumeration order does not matter. Replacing a NIC changes the id: the database then refuses to
 * send until `newsletter host adopt`, which is the safe direction to be wrong in.
 */
function physicalMacAddresses(netClassDir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(netClassDir);
  } catch {
    return [];
  }
  const macs = new Set<string>();
  for (const name of names) {
    const entry = path.join(netClassDir, name);
    if (!exists(path.join(entry, 'device'))) continue;
    const mac = readTrimmed(path.join(entry, 'address'))?.toLowerCase();
    if (!mac || /^[0:]+$/.test(mac)) continue;
    macs.add(mac);
  }
  return [...macs].sort();
}

/** Any failure to read (absent, unreadable, a directory) counts as "no value". */
function readTrimmed(file: string): string | null {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

/** lstat, not stat: the `device` link is what marks a physical interface, wherever it points. */
function exists(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch {
    return false;
  }
}
