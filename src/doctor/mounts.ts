/**
 * Is the SQLite file on a network file system? SQLite's locking (and so WAL, and so every promise
 * that rests on one writer at a time) is unreliable over NFS, SMB/CIFS, 9p and FUSE network mounts:
 * two hosts can both believe they hold the write lock. Several hosts means PostgreSQL.
 */
import { type CheckResult, ok, problem, warning } from './types.js';

export interface Mount {
  device: string;
  mountPoint: string;
  fsType: string;
}

/** File systems whose locks cannot be trusted across hosts (or at all). */
const NETWORK_TYPES = new Set([
  'nfs',
  'nfs4',
  'cifs',
  'smb',
  'smb3',
  'smbfs',
  '9p',
  'afs',
  'ncpfs',
  'coda',
  'ceph',
  'glusterfs',
  'lustre',
  'gpfs',
  'davfs',
]);
const NETWORK_FUSE =
  /^fuse\.(sshfs|s3fs|rclone|gcsfuse|glusterfs|davfs2?|cephfs|juicefs|goofys|mountpoint-s3)$/;

export function isNetworkFileSystem(fsType: string): boolean {
  return NETWORK_TYPES.has(fsType) || NETWORK_FUSE.test(fsType);
}

/** Parses /proc/mounts (or /proc/self/mounts); mount points carry octal escapes (`\040` = space). */
export function parseMounts(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split('\n')) {
    const [device, mountPoint, fsType] = line.trim().split(/\s+/);
    if (!device || !mountPoint || !fsType) continue;
    mounts.push({ device, mountPoint: unescapeOctal(mountPoint), fsType });
  }
  return mounts;
}

/** The mount that holds `file` (an absolute, symlink-resolved path): the longest matching mount point. */
export function mountOf(file: string, mounts: readonly Mount[]): Mount | null {
  let best: Mount | null = null;
  for (const mount of mounts) {
    const point = mount.mountPoint;
    const inside = point === '/' || file === point || file.startsWith(`${point}/`);
    // Later lines win on a tie: a mount stacked over another hides it.
    if (inside && (!best || point.length >= best.mountPoint.length)) best = mount;
  }
  return best;
}

export function fileSystemCheck(file: string, mountsText: string | null): CheckResult {
  const name = 'filesystem';
  if (mountsText === null) {
    return warning(
      name,
      `Could not read /proc/mounts, so it is unknown whether ${file} is on a local disk.`,
      'Make sure the database lives on a local file system, never NFS, SMB or another network mount.',
    );
  }
  const mount = mountOf(file, parseMounts(mountsText));
  if (!mount) return warning(name, `No mount in /proc/mounts holds ${file}.`);
  if (isNetworkFileSystem(mount.fsType)) {
    return problem(
      name,
      `${file} is on a network file system (${mount.fsType} ${mount.device} at ${mount.mountPoint}): SQLite's locks are not reliable there, so two hosts may write at once.`,
      'Move the database to a local disk (and `newsletter host adopt` there), or use PostgreSQL for several hosts.',
    );
  }
  return ok(name, `${file} is on a local file system (${mount.fsType} at ${mount.mountPoint}).`);
}

function unescapeOctal(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}
