/**
 * Where a pid means something: the kernel's boot id and this process's pid namespace. A run
 * records it (runs.pid_scope), and a later run ends a run of its own host id because "its process
 * is gone" only when both recorded the same scope (src/engine/expire-dead-runs.ts).
 *
 * Why both. Two containers that share a hostname (and so, often, a host id) share the kernel's boot
 * id but each has its own pid namespace: pid 42 in one says nothing about pid 42 in the other. Two
 * machines given the same NEWSLETTER_HOST_ID have different boot ids, as has the same machine after
 * a reboot. Either difference means "cannot tell from here": the other run is left to its lease.
 * Where either is unreadable (not Linux), null: no run is ever ended by the shortcut, only by its
 * lease, which is slower but never wrong.
 *
 * NEWSLETTER_TEST_BOOT_ID replaces the boot id, for the tests only (test/e2e/multihost-faults):
 * it is how they put two processes of one host id "on two machines". Never set it in production.
 */
import { readFileSync, readlinkSync } from 'node:fs';

export function pidScope(env: NodeJS.ProcessEnv = process.env): string | null {
  try {
    const bootId =
      env.NEWSLETTER_TEST_BOOT_ID || readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return `${bootId} ${readlinkSync('/proc/self/ns/pid')}`;
  } catch {
    return null;
  }
}
