import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type DetectHostIdOptions, detectHostId } from '../../src/host/identity.js';

let root: string;

beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'newsletter-host-'));
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

interface FakeInterface {
  name: string;
  mac: string;
  /** Physical interfaces have a `device` link in sysfs; virtual ones do not. */
  physical: boolean;
}

/**
 * A host in a temp folder: machine-id, cloud-init instance id and a /sys/class/net tree laid out
 * as sysfs does it (class entries are symlinks into a devices tree).
 */
function fakeHost(
  name: string,
  host: { machineId?: string; instanceId?: string; interfaces?: FakeInterface[] },
): DetectHostIdOptions {
  const base = path.join(root, name);
  const netClassDir = path.join(base, 'sys/class/net');
  const devices = path.join(base, 'sys/devices');
  mkdirSync(netClassDir, { recursive: true });
  mkdirSync(path.join(base, 'etc'), { recursive: true });
  mkdirSync(path.join(base, 'cloud'), { recursive: true });
  if (host.machineId !== undefined) writeFileSync(path.join(base, 'etc/machine-id'), `${host.machineId}\n`);
  if (host.instanceId !== undefined)
    writeFileSync(path.join(base, 'cloud/instance-id'), `${host.instanceId}\n`);
  for (const nic of host.interfaces ?? []) {
    const deviceDir = path.join(
      devices,
      nic.physical ? `pci0000:00/net/${nic.name}` : `virtual/net/${nic.name}`,
    );
    mkdirSync(deviceDir, { recursive: true });
    writeFileSync(path.join(deviceDir, 'address'), `${nic.mac}\n`);
    if (nic.physical) {
      mkdirSync(path.join(devices, 'pci0000:00/card'), { recursive: true });
      symlinkSync(path.join(devices, 'pci0000:00/card'), path.join(deviceDir, 'device'));
    }
    symlinkSync(deviceDir, path.join(netClassDir, nic.name));
  }
  return {
    env: {},
    machineIdPaths: [path.join(base, 'etc/machine-id'), path.join(base, 'dbus/machine-id')],
    cloudInstanceIdPath: path.join(base, 'cloud/instance-id'),
    netClassDir,
  };
}

const MACHINE_ID = '0123456789abcdef0123456789abcdef';
const eth0 = (mac: string): FakeInterface => ({ name: 'eth0', mac, physical: true });

describe('detectHostId', () => {
  it('uses NEWSLETTER_HOST_ID verbatim (trimmed) over everything else', () => {
    const options = fakeHost('a', { machineId: MACHINE_ID, instanceId: 'i-1' });
    expect(detectHostId({ ...options, env: { NEWSLETTER_HOST_ID: '  web-1 \n' } })).toEqual({
      hostId: 'web-1',
      source: 'env',
    });
  });

  it('ignores an empty or blank NEWSLETTER_HOST_ID', () => {
    const options = fakeHost('a', { machineId: MACHINE_ID, instanceId: 'i-1' });
    expect(detectHostId({ ...options, env: { NEWSLETTER_HOST_ID: '   ' } }).source).toBe(
      'machine-id+cloud-instance',
    );
  });

  it('tells clones apart by cloud-init instance id', () => {
    const a = detectHostId(fakeHost('a', { machineId: MACHINE_ID, instanceId: 'i-0aaa' }));
    const b = detectHostId(fakeHost('b', { machineId: MACHINE_ID, instanceId: 'i-0bbb' }));
    expect(a.source).toBe('machine-id+cloud-instance');
    expect(b.source).toBe('machine-id+cloud-instance');
    expect(a.hostId).not.toBe(b.hostId);
    expect(a.warning).toBeUndefined();
  });

  it('prefers the instance id over MACs, so a NIC change does not move a cloud host', () => {
    const a = detectHostId(
      fakeHost('a', { machineId: MACHINE_ID, instanceId: 'i-1', interfaces: [eth0('52:54:00:00:00:01')] }),
    );
    const b = detectHostId(
      fakeHost('b', { machineId: MACHINE_ID, instanceId: 'i-1', interfaces: [eth0('52:54:00:00:00:02')] }),
    );
    expect(a.hostId).toBe(b.hostId);
  });

  it('tells clones apart by the MACs of physical interfaces when there is no instance id', () => {
    const a = detectHostId(fakeHost('a', { machineId: MACHINE_ID, interfaces: [eth0('52:54:00:12:34:56')] }));
    const b = detectHostId(fakeHost('b', { machineId: MACHINE_ID, interfaces: [eth0('52:54:00:ab:cd:ef')] }));
    expect(a.source).toBe('machine-id+mac');
    expect(a.hostId).not.toBe(b.hostId);
  });

  it('ignores virtual interfaces and all-zero MACs, and interface order and case', () => {
    const physical: FakeInterface[] = [
      { name: 'eth0', mac: '52:54:00:12:34:56', physical: true },
      { name: 'eth1', mac: '52:54:00:AB:CD:EF', physical: true },
    ];
    const a = detectHostId(fakeHost('a', { machineId: MACHINE_ID, interfaces: physical }));
    const b = detectHostId(
      fakeHost('b', {
        machineId: MACHINE_ID,
        interfaces: [
          { name: 'eth1', mac: '52:54:00:ab:cd:ef', physical: true },
          { name: 'lo', mac: '00:00:00:00:00:00', physical: false },
          { name: 'docker0', mac: '02:42:ac:11:00:02', physical: false },
          { name: 'veth9', mac: '7e:11:22:33:44:55', physical: false },
          { name: 'eth0', mac: '52:54:00:12:34:56', physical: true },
          { name: 'ib0', mac: '00:00:00:00:00:00', physical: true },
        ],
      }),
    );
    expect(b).toEqual(a);
  });

  it('is deterministic and shaped h- plus 16 hex digits', () => {
    const options = fakeHost('a', { machineId: MACHINE_ID, interfaces: [eth0('52:54:00:12:34:56')] });
    const first = detectHostId(options);
    expect(first.hostId).toMatch(/^h-[0-9a-f]{16}$/);
    expect(detectHostId(options)).toEqual(first);
  });

  it('falls back to the dbus machine-id, and skips an empty or uninitialized one', () => {
    const withEtc = fakeHost('a', { machineId: MACHINE_ID, instanceId: 'i-1' });
    const withDbus = fakeHost('b', { machineId: 'uninitialized', instanceId: 'i-1' });
    const dbus = withDbus.machineIdPaths?.[1];
    if (!dbus) throw new Error('expected a second machine-id path');
    mkdirSync(path.dirname(dbus), { recursive: true });
    writeFileSync(dbus, `${MACHINE_ID}\n`);
    expect(detectHostId(withDbus)).toEqual(detectHostId(withEtc));
  });

  it('ignores the cloud-init placeholder instance id that every datasource-less host shares', () => {
    const a = detectHostId(
      fakeHost('a', {
        machineId: MACHINE_ID,
        instanceId: 'iid-datasource-none',
        interfaces: [eth0('52:54:00:00:00:01')],
      }),
    );
    expect(a.source).toBe('machine-id+mac');
  });

  it('warns when machine-id is all there is', () => {
    const result = detectHostId(fakeHost('a', { machineId: MACHINE_ID }));
    expect(result.source).toBe('machine-id');
    expect(result.hostId).toMatch(/^h-[0-9a-f]{16}$/);
    expect(result.warning).toMatch(/clone/);
  });

  it('falls back to the hostname, with a warning, when there is no machine-id', () => {
    const options = fakeHost('a', { instanceId: 'i-1', interfaces: [eth0('52:54:00:00:00:01')] });
    const result = detectHostId(options);
    expect(result.source).toBe('hostname');
    expect(result.hostId).toMatch(/^h-[0-9a-f]{16}$/);
    expect(result.warning).toMatch(/clones of this server cannot be told apart/);
    expect(detectHostId(options)).toEqual(result);
  });
});
