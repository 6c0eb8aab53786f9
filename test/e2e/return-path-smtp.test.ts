/**
 * The VERP return path reaches the wire (issue 18): the built CLI sends through the custom
 * pipelining SMTP client to a real SMTP server on loopback (test/helpers/smtp-sink.ts), and each
 * message's MAIL FROM is `news+bTOKEN@example.org`, a token that names exactly that ledger row
 * under the secret (and under no other key), with the delimiter and the address the settings say.
 */
import { expect, it } from 'vitest';
import { parseReturnPathToken, tokenMatches } from '../../src/domain/return-path-token.js';
import { perTest } from '../helpers/workspace.js';

const fixtures = perTest();

it("MAIL FROM carries each delivery's own token, verifiable only with NEWSLETTER_SECRET", async () => {
  const sink = await fixtures.sink();
  const ws = await fixtures.workspace({ recipients: 4, transport: sink.url });
  await ws.ok(['send-due']);
  expect(sink.messages).toHaveLength(4);
  const ledger = ws.query<{ id: number; address: string; message_id: string }>(
    'SELECT id, address, message_id FROM deliveries WHERE newsletter_id = ? ORDER BY id',
    ws.newsletterId,
  );
  const secret = ws.env.NEWSLETTER_SECRET as string;
  for (const row of ledger) {
    const message = sink.messages.find((m) => m.to.includes(row.address));
    expect(message?.from).toMatch(/^news\+b[a-z2-7]{26}@example\.org$/);
    const token = parseReturnPathToken((message?.from ?? '').slice('news+'.length, -'@example.org'.length));
    expect(token).toMatchObject({ purpose: 'bounce', deliveryId: row.id });
    const delivery = { deliveryId: row.id, newsletterId: ws.newsletterId, address: row.address };
    expect(tokenMatches([secret], token as NonNullable<typeof token>, delivery)).toBe(true);
    expect(tokenMatches(['another-secret-0123456789'], token as NonNullable<typeof token>, delivery)).toBe(
      false,
    );
    // The ledger keeps the Message-ID that went out.
    expect(message?.messageId).toBe(row.message_id);
  }
  expect(
    sink.envelopeCommands.filter((line) => /^MAIL FROM:<news\+b[a-z2-7]{26}@example\.org>/i.test(line)),
  ).toHaveLength(4);
});

it('NEWSLETTER_RETURN_PATH and its delimiter set MAIL FROM; the From header stays as it was', async () => {
  const sink = await fixtures.sink();
  const ws = await fixtures.workspace({
    recipients: 2,
    transport: sink.url,
    env: { NEWSLETTER_RETURN_PATH: 'bounces@example.org', NEWSLETTER_RETURN_PATH_DELIMITER: '-' },
  });
  await ws.ok(['send-due']);
  for (const message of sink.messages) {
    expect(message.from).toMatch(/^bounces-b[a-z2-7]{26}@example\.org$/);
    expect(message.raw.toString('latin1')).toMatch(/^From: .*news@example\.org/m);
    expect(message.raw.toString('latin1')).toMatch(
      /mailto:bounces-u[a-z2-7]{26}@example\.org\?subject=unsubscribe/,
    );
  }
});
