/** The database's file system: a network mount is a problem (SQLite's locks are not reliable there). */
import { describe, expect, it } from 'vitest';
import { fileSystemCheck, isNetworkFileSystem, mountOf, parseMounts } from '../../src/doctor/mounts.js';

const MOUNTS = `/dev/sda1 / ext4 rw,relatime 0 0
proc /proc proc rw,nosuid 0 0
tmpfs /run tmpfs rw 0 0
nas:/export/news /srv/nfs nfs4 rw,vers=4.2 0 0
//files/share /srv/smb cifs rw 0 0
ops@backup:/data /srv/ssh fuse.sshfs rw 0 0
data /mnt/9p 9p rw,trans=virtio 0 0
/dev/sdb1 /srv/nfs/local ext4 rw 0 0
/dev/sdc1 /srv/with\\040space xfs rw 0 0
`;

describe('mounts', () => {
  it('parses /proc/mounts, octal escapes included', () => {
    const mounts = parseMounts(MOUNTS);
    expect(mounts).toHaveLength(9);
    expect(mounts.at(-1)).toEqual({ device: '/dev/sdc1', mountPoint: '/srv/with space', fsType: 'xfs' });
  });

  it('finds the longest mount point that holds the file', () => {
    const mounts = parseMounts(MOUNTS);
    expect(mountOf('/var/lib/newsletter/news.db', mounts)?.mountPoint).toBe('/');
    expect(mountOf('/srv/nfs/news.db', mounts)?.fsType).toBe('nfs4');
    expect(mountOf('/srv/nfs/local/news.db', mounts)?.fsType).toBe('ext4');
    // A prefix of a name is not a parent folder.
    expect(mountOf('/srv/nfsother/news.db', mounts)?.mountPoint).toBe('/');
    expect(mountOf('/srv/with space/news.db', mounts)?.fsType).toBe('xfs');
  });

  it.each(['nfs', 'nfs4', 'cifs', 'smb3', '9p', 'fuse.sshfs', 'ceph'])(
    '%s is a network file system',
    (type) => {
      expect(isNetworkFileSystem(type)).toBe(true);
    },
  );

  it.each(['ext4', 'xfs', 'btrfs', 'zfs', 'tmpfs', 'overlay', 'fuse.lxcfs'])('%s is local', (type) => {
    expect(isNetworkFileSystem(type)).toBe(false);
  });

  it('a database on NFS, SMB, 9p or sshfs is a problem that says to move it', () => {
    for (const file of ['/srv/nfs/a.db', '/srv/smb/a.db', '/mnt/9p/a.db', '/srv/ssh/a.db']) {
      const result = fileSystemCheck(file, MOUNTS);
      expect(result.level, file).toBe('problem');
      expect(result.fix).toContain('local disk');
    }
    expect(fileSystemCheck('/var/lib/a.db', MOUNTS)).toMatchObject({ level: 'ok' });
    expect(fileSystemCheck('/var/lib/a.db', null)).toMatchObject({ level: 'warning' });
  });
});
