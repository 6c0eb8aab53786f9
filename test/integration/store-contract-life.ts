/**
 * The Store contract for a newsletter's life (issue 14): the stored template and send-time zone
 * come back as written; `editNewsletter` changes a draft, scheduled or failed newsletter and moves
 * `updated_at` so that a build of the old content cannot begin sending; a failed newsletter can be
 * scheduled again, its failure cleared; `deleteNewsletter` removes a draft, failed or cancelled
 * newsletter with its ledger rows, and refuses one from which something was or may have been sent.
 * Loaded by store-contract.test.ts inside its loop over the stores (SQLite there, PostgreSQL in
 * postgres-contract.test.ts).
 */
import { expect, it } from 'vitest';
import { InputError } from '../../src/domain/errors.js';
import type { OutcomeWrite } from '../../src/domain/ledger.js';
import { storedTemplate } from '../../src/domain/stored-template.js';
import type { Millis } from '../../src/domain/types.js';
import type { Store } from '../../src/store/store.js';
import {
  addresses,
  claim,
  createScheduledNewsletter,
  fakeBody,
  registerTestRun,
  seedSubscribers,
  sendingNewsletter,
  sentWrite,
  type StoreHandle,
} from '../helpers/store-fixtures.js';

const T0: Millis = Date.now();
const at = (offsetMs: number): Millis => T0 + offsetMs;

const TEMPLATE = storedTemplate(
  [
    {
      path: 'welcome.mjml',
      content: '<mjml><mj-body><mj-include path="partials/footer.mjml" /></mj-body></mjml>',
    },
    // Bytes a JSON column might rewrite: kept exactly.
    {
      path: 'partials/footer.mjml',
      content: '<mj-text>Ünïcode "quotes" \\ back\u2028slash {{unsubscribe_url}}</mj-text>',
    },
  ],
  at(0),
);

/** A 550: refused by the server, so nothing reached anyone. */
function refused(deliveryId: number): OutcomeWrite {
  return {
    deliveryId,
    state: 'failed',
    attempts: 1,
    nextAttemptAt: null,
    smtpReply: '550 5.7.1 refused',
    queueId: null,
    suppressAddress: null,
  };
}

export function lifeContract(current: () => { store: Store; handle: StoreHandle }): void {
  it('keeps the stored template byte for byte and the zone of the send time', async () => {
    const { store } = current();
    await seedSubscribers(store, 'news', ['ann@example.org'], at(0));
    const created = await store.createNewsletter(
      {
        subject: 'Hi',
        templatePath: '/t/welcome.mjml',
        from: 'News <news@example.org>',
        lists: ['news'],
        scheduledAt: at(60_000),
        template: TEMPLATE,
        scheduledZone: 'Europe/Paris',
      },
      at(1),
    );
    expect(created.template).toEqual(TEMPLATE);
    expect(created.scheduledZone).toBe('Europe/Paris');
    expect((await store.getNewsletter(created.id))?.template?.sha256).toBe(TEMPLATE.sha256);
    // One created without (as before templates were stored) has none.
    const legacy = await createScheduledNewsletter(store, ['news'], at(1));
    expect(legacy).toMatchObject({ template: null, scheduledZone: null });
    expect(await store.scheduleNewsletter(legacy.id, at(120_000), at(2), '+01:00')).toEqual({ ok: true });
    expect((await store.getNewsletter(legacy.id))?.scheduledZone).toBe('+01:00');
  });

  it("keeps a template's compiled HTML with it; an edit that stores other files drops it or stores theirs", async () => {
    const { store } = current();
    await seedSubscribers(store, 'news', ['ann@example.org'], at(0));
    const compiled = { ...TEMPLATE, compiled: { key: 'k'.repeat(64), html: '<p>Ünï \u2028 "x"</p>' } };
    const input = { subject: 'Hi', templatePath: '/t/welcome.mjml', from: null, lists: ['news'] };
    const created = await store.createNewsletter({ ...input, scheduledAt: null, template: compiled }, at(1));
    expect(created.template).toEqual(compiled);
    // Other fields edited: the files and their compiled HTML stay.
    await store.editNewsletter(created.id, { subject: 'Other' }, at(2));
    expect((await store.getNewsletter(created.id))?.template).toEqual(compiled);
    // New files without a compiled copy: the old files' HTML must not stay with them.
    const other = storedTemplate([{ path: 'welcome.mjml', content: '<mjml></mjml>' }], at(3));
    await store.editNewsletter(created.id, { template: { path: '/t/welcome.mjml', source: other } }, at(3));
    expect((await store.getNewsletter(created.id))?.template).toEqual(other);
    // New files with theirs.
    const otherCompiled = { ...other, compiled: { key: 'm'.repeat(64), html: '<p>other</p>' } };
    await store.editNewsletter(
      created.id,
      { template: { path: '/t/welcome.mjml', source: otherCompiled } },
      at(4),
    );
    expect((await store.getNewsletter(created.id))?.template).toEqual(otherCompiled);
  });

  it('edits a draft or scheduled newsletter; a build read before the edit cannot begin sending', async () => {
    const { store } = current();
    await seedSubscribers(store, 'news', ['ann@example.org'], at(0));
    await seedSubscribers(store, 'partners', ['pat@example.org'], at(0));
    const run = await registerTestRun(store, at(0));
    const read = await createScheduledNewsletter(store, ['news'], at(1));
    // Same millisecond as the read: updated_at still moves.
    const edited = await store.editNewsletter(
      read.id,
      {
        subject: 'New',
        from: 'Other <other@example.org>',
        lists: ['partners'],
        template: { path: '/t/welcome.mjml', source: TEMPLATE },
      },
      read.updatedAt,
    );
    expect(edited).toEqual({ ok: true });
    const after = await store.getNewsletter(read.id);
    expect(after).toMatchObject({
      status: 'scheduled',
      subject: 'New',
      from: 'Other <other@example.org>',
      lists: ['partners'],
      templatePath: '/t/welcome.mjml',
      template: TEMPLATE,
      scheduledAt: read.scheduledAt,
    });
    expect(after!.updatedAt).toBeGreaterThan(read.updatedAt);
    expect(await store.beginSending(read, fakeBody(), run.id, at(2))).toBe(false);
    expect(await store.beginSending(after!, fakeBody(), run.id, at(2))).toBe(true);

    // Sending now: refused, nothing changed.
    expect(await store.editNewsletter(read.id, { subject: 'Late' }, at(3))).toEqual({
      ok: false,
      status: 'sending',
    });
    expect((await store.getNewsletter(read.id))?.subject).toBe('New');

    // An unknown list throws and changes nothing.
    const draft = await store.createNewsletter(
      { subject: 'Draft', templatePath: 'd.mjml', from: null, lists: ['news'], scheduledAt: null },
      at(4),
    );
    await expect(
      store.editNewsletter(draft.id, { subject: 'X', lists: ['nope'] }, at(5)),
    ).rejects.toBeInstanceOf(InputError);
    expect(await store.getNewsletter(draft.id)).toMatchObject({ subject: 'Draft', lists: ['news'] });
  });

  it('schedules a failed newsletter again, its failure cleared; edits it first', async () => {
    const { store } = current();
    await seedSubscribers(store, 'news', ['ann@example.org'], at(0));
    const failed = await createScheduledNewsletter(store, ['news'], at(1));
    expect(await store.markBuildFailed(failed, 'unknown field {{city}}', at(2))).toBe(true);
    expect(
      await store.editNewsletter(failed.id, { template: { path: '/t/w.mjml', source: TEMPLATE } }, at(3)),
    ).toEqual({ ok: true });
    expect(await store.scheduleNewsletter(failed.id, at(10), at(4))).toEqual({ ok: true });
    expect(await store.getNewsletter(failed.id)).toMatchObject({
      status: 'scheduled',
      failureReason: null,
      finishedAt: null,
      scheduledAt: at(10),
      template: TEMPLATE,
    });
    expect((await store.dueNewsletters(at(10))).map((n) => n.id)).toEqual([failed.id]);
  });

  it('deletes a draft, a failed and a cancelled newsletter with no sent rows, ledger rows included', async () => {
    const { store } = current();
    await seedSubscribers(store, 'news', ['ann@example.org'], at(0));
    const draft = await store.createNewsletter(
      { subject: 'Draft', templatePath: 'd.mjml', from: null, lists: ['news'], scheduledAt: null },
      at(1),
    );
    const failed = await createScheduledNewsletter(store, ['news'], at(1));
    await store.markBuildFailed(failed, 'broken', at(2));
    // Cancelled after its only message was refused (550): a ledger row, nothing sent.
    const { newsletter: cancelled, starter } = await sendingNewsletter(store, {
      list: 'more',
      recipients: addresses(1, 'more'),
      now: at(3),
    });
    const [row] = (
      await claim(store, { newsletterId: cancelled.id, runId: starter.id, limit: 1, now: at(4) })
    ).claimed;
    await store.recordOutcomes(starter.id, [refused(row!.deliveryId)], at(5));
    expect(await store.cancelNewsletter(cancelled.id, at(6))).toEqual({ ok: true });

    expect(await store.deleteNewsletter(draft.id)).toEqual({ deleted: true, ledgerRows: 0 });
    expect(await store.deleteNewsletter(failed.id)).toEqual({ deleted: true, ledgerRows: 0 });
    expect(await store.deleteNewsletter(cancelled.id)).toEqual({ deleted: true, ledgerRows: 1 });
    expect(await store.listNewsletters()).toEqual([]);
    expect(await store.deliveries(cancelled.id, { limit: 10 })).toEqual([]);
    await expect(store.deleteNewsletter(draft.id)).rejects.toBeInstanceOf(InputError);
    // The lists stay.
    expect((await store.lists()).map((l) => l.name).sort()).toEqual(['more', 'news']);
  });

  it('refuses a scheduled or sending newsletter, and a cancelled one with a sent or claimed row', async () => {
    const { store } = current();
    await seedSubscribers(store, 'news', ['ann@example.org'], at(0));
    const scheduled = await createScheduledNewsletter(store, ['news'], at(1));
    expect(await store.deleteNewsletter(scheduled.id)).toEqual({
      deleted: false,
      status: 'scheduled',
      mayHaveReached: 0,
    });

    const { newsletter, starter } = await sendingNewsletter(store, {
      list: 'two',
      recipients: addresses(2, 'two'),
      now: at(2),
    });
    const claimed = (
      await claim(store, { newsletterId: newsletter.id, runId: starter.id, limit: 2, now: at(3) })
    ).claimed;
    expect(await store.deleteNewsletter(newsletter.id)).toMatchObject({ deleted: false, status: 'sending' });
    await store.recordOutcomes(starter.id, [sentWrite(claimed[0]!)], at(4));
    expect(await store.cancelNewsletter(newsletter.id, at(5))).toEqual({ ok: true });
    // One row sent, one still claimed by the run: both keep it.
    expect(await store.deleteNewsletter(newsletter.id)).toEqual({
      deleted: false,
      status: 'cancelled',
      mayHaveReached: 2,
    });
    expect(await store.counts(newsletter.id)).toMatchObject({ sent: 1, claimed: 1 });
  });
}
