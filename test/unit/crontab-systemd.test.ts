/**
 * The shipped systemd examples: the service runs a real send-due that the doctor recognises (and
 * resolves to the database of its env file), and the timer fires every minute without any random
 * delay (no sleeps as concurrency control).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isSendDue, parseSystemdUnit, resolveDatabase } from '../../src/doctor/crontab.js';

const read = (name: string) =>
  readFileSync(fileURLToPath(new URL(`../../systemd/${name}`, import.meta.url)), 'utf8');

describe('systemd examples', () => {
  it('the service runs send-due from its env file, and treats lock-held and transient as success', () => {
    const service = read('newsletter-send-due.service');
    const [start, ...more] = parseSystemdUnit(service, 'newsletter-send-due.service');
    expect(more).toEqual([]);
    expect(start).toMatchObject({ kind: 'systemd', user: 'newsletter' });
    expect(isSendDue(start!.command)).toBe(true);
    const resolved = resolveDatabase(start!, {
      homeOf: () => null,
      readFile: (file) =>
        file === '/etc/newsletter/example.org.env'
          ? 'NEWSLETTER_DATABASE=/var/lib/newsletter/example.db\n'
          : null,
    });
    expect(resolved.database).toBe('/var/lib/newsletter/example.db');
    expect(service).toMatch(/^Type=oneshot$/m);
    expect(service).toMatch(/^SuccessExitStatus=6 9$/m);
    expect(service).toMatch(/^ReadWritePaths=\/var\/lib\/newsletter$/m);
  });

  it('the timer fires every minute, on the minute, with no random delay', () => {
    const timer = read('newsletter-send-due.timer');
    expect(timer).toMatch(/^OnCalendar=minutely$/m);
    expect(timer).toMatch(/^Unit=newsletter-send-due\.service$/m);
    expect(timer).not.toMatch(/^RandomizedDelaySec=/m);
    expect(timer).toMatch(/^WantedBy=timers\.target$/m);
  });
});
