/**
 * RFC 5322 §2.1.1: no header line longer than 998 octets, whatever the operator or a CSV cell put
 * in a header. Built by src/transport/mime.ts, read back by mailparser: every physical header line
 * fits, and the decoded value is exactly what was given (folding and encoded words lose nothing).
 */
import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import type { OutgoingMessage } from '../../src/domain/message.js';
import { MAX_HEADER_LINE_OCTETS } from '../../src/transport/header-fold.js';
import { messageBytes } from '../../src/transport/mime.js';

function message(overrides: Partial<OutgoingMessage>): OutgoingMessage {
  return {
    messageId: '<n1.abc@example.org>',
    from: 'Example News <news@example.org>',
    to: 'ann@example.net',
    subject: 'Hello',
    html: '<p>Hello</p>',
    text: 'Hello',
    headers: { 'List-Id': 'Readers <readers.example.org>' },
    ...overrides,
  };
}

/** The header block's physical lines, as octets. */
function headerLineOctets(bytes: Buffer): number[] {
  const end = bytes.indexOf('\r\n\r\n');
  return bytes
    .subarray(0, end)
    .toString('latin1')
    .split('\r\n')
    .map((line) => line.length);
}

async function roundTrip(input: OutgoingMessage) {
  const bytes = messageBytes(input);
  const longest = Math.max(...headerLineOctets(bytes));
  return { longest, parsed: await simpleParser(bytes) };
}

describe('over-long header values', () => {
  it.each([
    ['1,500 letters without a space', 'S'.repeat(1500)],
    ['1,500 characters with spaces', 'word '.repeat(300).trim()],
    ['a long word among short ones', `Hello ${'x'.repeat(2000)} and goodbye`],
    ['a long non-ASCII word', 'ü'.repeat(1200)],
    ['emoji without spaces', '📰'.repeat(600)],
    ['a long URL-like word', `See https://example.org/${'a/'.repeat(600)}`],
  ])('a subject of %s is folded within the limit and decodes intact', async (_what, subject) => {
    const { longest, parsed } = await roundTrip(message({ subject }));
    expect(longest).toBeLessThanOrEqual(MAX_HEADER_LINE_OCTETS);
    expect(parsed.subject).toBe(subject);
  });

  it('a short subject goes out as written, not encoded', async () => {
    const bytes = messageBytes(message({ subject: 'Our news for December' }));
    expect(bytes.toString('latin1')).toContain('\r\nSubject: Our news for December\r\n');
  });

  it('a From with a display name of 1,500 letters keeps its address and its name', async () => {
    const name = 'N'.repeat(1500);
    const { longest, parsed } = await roundTrip(message({ from: `${name} <news@example.org>` }));
    expect(longest).toBeLessThanOrEqual(MAX_HEADER_LINE_OCTETS);
    expect(parsed.from?.value).toEqual([{ name, address: 'news@example.org' }]);
  });

  it('a Reply-To with a long quoted name keeps both', async () => {
    const name = `Help ${'h'.repeat(1200)}`;
    const { longest, parsed } = await roundTrip(message({ replyTo: `"${name}" <help@example.org>` }));
    expect(longest).toBeLessThanOrEqual(MAX_HEADER_LINE_OCTETS);
    expect(parsed.replyTo?.value).toEqual([{ name, address: 'help@example.org' }]);
  });

  it('a List-Id with a long list name keeps its id in angle brackets', async () => {
    const phrase = 'L'.repeat(1200);
    const { longest, parsed } = await roundTrip(
      message({ headers: { 'List-Id': `${phrase} <readers.example.org>` } }),
    );
    expect(longest).toBeLessThanOrEqual(MAX_HEADER_LINE_OCTETS);
    // mailparser files List-* headers under `list`, and leaves a List-Id name's encoded words as
    // they are: decoded here by parsing them as a subject, which it does decode.
    const list = parsed.headers.get('list') as { id?: { id?: string; name?: string } } | undefined;
    expect(list?.id?.id).toBe('readers.example.org');
    const name = await simpleParser(`Subject: ${list?.id?.name ?? ''}\r\n\r\n`);
    expect(name.subject).toBe(phrase);
  });
});
