/**
 * Promise 4 (issue 3, test 6): a SQLite database copied to a cloned server (restored from an
 * image, same crontab) refuses to send there until an operator adopts it; `--dry-run` still works;
 * after `host adopt` the copy sends the rest without repeating anyone the original already sent.
 */
import { describe, expect, it } from 'vitest';
import { cloneWorkspace, createWorkspace, perTest } from '../helpers/workspace.js';

const CLONE_REFUSED = 7;

const resources = perTest();

describe('promise 4: never from the wrong machine', () => {
  it('a copy of the database on another host refuses to send, dry-runs, and after `host adopt` sends only the rest', async () => {
    const audience = 30;
    const sink = await resources.sink();
    const server = sink;
    const original = await createWorkspace({ recipients: audience, transport: server.url });
    resources.add(original);

    // The original host sends part of the newsletter, then the server is cloned.
    expect(await original.run(['send-due', '--max-messages', '10'])).toMatchObject({
      code: 0,
      stdout: '',
      stderr: '',
    });
    expect(server.total).toBe(10);
    const clone = await cloneWorkspace(original, { NEWSLETTER_HOST_ID: 'host-b' });
    resources.add(clone);
    const ledgerAtCopy = clone.ledger();

    const refused = await clone.run(['send-due']);
    expect(refused).toMatchObject({ code: CLONE_REFUSED, stdout: '' });
    expect(refused.stderr).toContain('bound to host host-a, but this is host host-b');
    expect(refused.stderr).toContain('newsletter host adopt');
    expect(server.messages).toHaveLength(10);
    expect(clone.ledger()).toEqual(ledgerAtCopy);
    expect(await clone.runs()).toHaveLength(1);

    // A dry run proves the newsletter would go out, anywhere, and writes nothing.
    const dry = await clone.run(['send-due', '--dry-run', '--json']);
    expect(dry).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(dry.stdout)).toMatchObject({
      dryRun: true,
      ok: true,
      newsletters: [{ id: clone.newsletterId, status: 'sending', wouldSend: audience - 10 }],
    });
    expect(server.messages).toHaveLength(10);
    expect(clone.ledger()).toEqual(ledgerAtCopy);

    const adopted = await clone.ok(['host', 'adopt', '--json']);
    expect(JSON.parse(adopted.stdout)).toEqual({ previousHostId: 'host-a', hostId: 'host-b' });

    expect(await clone.run(['send-due'])).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(original.addresses.filter((address) => server.received(address) !== 1)).toEqual([]);
    expect(server.total).toBe(audience);
    const shown = await clone.show();
    expect(shown.status).toBe('sent');
    expect(shown.counts).toMatchObject({ audience, sent: audience, unknown: 0, pending: 0 });
    const runs = await clone.runs();
    expect(runs.map((run) => run.hostId)).toEqual(['host-b', 'host-a']);
  });
});
