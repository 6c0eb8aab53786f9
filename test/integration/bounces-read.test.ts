/**
 * Reading bounces: mailboxes (mbox, Maildir, .eml) and the DSNs in them, made in the test as
 * Postfix writes them (test/helpers/dsn.ts).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { classifyBounce } from '../../src/domain/bounce.js';
import { InputError } from '../../src/domain/errors.js';
import { parseDsn } from '../../src/import/dsn.js';
import { mailboxKind, readMailbox, splitMbox } from '../../src/import/mailbox.js';
import { autoReply, mbox, postfixDsn } from '../helpers/dsn.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'newsletter-bounces-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function all(target: string) {
  const out: { source: string; raw: Buffer }[] = [];
  for await (const message of readMailbox(target)) out.push(message);
  return out;
}

const hard = postfixDsn({
  messageId: '<hard-1@mx.example.net>',
  recipients: [
    {
      address: 'gone@example.net',
      action: 'failed',
      status: '5.1.1',
      diagnostic:
        '550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown in local recipient table',
    },
    { address: 'Full@Example.NET', action: 'failed', status: '4.2.2', diagnostic: '452 4.2.2 Mailbox full' },
  ],
});

describe('parseDsn', () => {
  it('reads every recipient block of a Postfix DSN', async () => {
    const dsn = await parseDsn(Buffer.from(hard));
    expect(dsn).toEqual({
      id: '<hard-1@mx.example.net>',
      recipients: [
        {
          address: 'gone@example.net',
          action: 'failed',
          status: '5.1.1',
          diagnostic:
            '550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown in local recipient table',
        },
        {
          address: 'Full@Example.NET',
          action: 'failed',
          status: '4.2.2',
          diagnostic: '452 4.2.2 Mailbox full',
        },
      ],
    });
  });

  it('a DSN without a Message-ID is known by the hash of its bytes; a delay is read too', async () => {
    const delayed = postfixDsn({
      messageId: null,
      recipients: [
        { address: 'slow@example.net', action: 'delayed', status: '4.4.1', diagnostic: 'connect timed out' },
      ],
    });
    const dsn = await parseDsn(Buffer.from(delayed));
    expect(dsn?.id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(dsn?.recipients).toEqual([
      { address: 'slow@example.net', action: 'delayed', status: '4.4.1', diagnostic: 'connect timed out' },
    ]);
    expect((await parseDsn(Buffer.from(delayed)))?.id).toBe(dsn?.id);
  });

  it('folded fields, CRLF line ends and a status only in the Diagnostic-Code', async () => {
    const text = postfixDsn({
      messageId: '<fold@mx>',
      recipients: [
        { address: 'x@example.net', action: 'failed', status: '', diagnostic: 'smtp placeholder' },
      ],
    })
      .replace('Status: \n', '')
      .replace(
        'Diagnostic-Code: smtp; smtp placeholder',
        'Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried\n    to reach does not exist.',
      )
      .replace(/\n/g, '\r\n');
    const dsn = await parseDsn(Buffer.from(text));
    expect(dsn?.recipients).toEqual([
      {
        address: 'x@example.net',
        action: 'failed',
        status: '5.1.1',
        diagnostic: '550-5.1.1 The email account that you tried to reach does not exist.',
      },
    ]);
  });

  it('a message that is not a DSN is null', async () => {
    expect(await parseDsn(Buffer.from(autoReply()))).toBeNull();
  });

  it('classifies by Action and Status', () => {
    expect(classifyBounce('failed', '5.1.1')).toBe('hard');
    expect(classifyBounce('Failed', '5.7.1')).toBe('hard');
    expect(classifyBounce('failed', '4.4.7')).toBe('soft');
    expect(classifyBounce('delayed', '4.4.1')).toBe('soft');
    expect(classifyBounce('delivered', '2.0.0')).toBeNull();
    expect(classifyBounce('relayed', '2.0.0')).toBeNull();
    expect(classifyBounce('failed', '')).toBeNull();
  });
});

describe('mailboxes', () => {
  it('an mbox: messages split at From lines, >From unescaped, bytes kept', async () => {
    const latin = Buffer.concat([
      Buffer.from('From: a@example.net\nSubject: 8 bit\nContent-Type: text/plain; charset=iso-8859-1\n\nGr'),
      Buffer.from([0xfc, 0xdf, 0x65]),
      Buffer.from('\nFrom here on, a line that looked like a separator.\n'),
    ]);
    const file = path.join(dir, 'bounces.mbox');
    await writeFile(
      file,
      Buffer.concat([
        Buffer.from(mbox([hard])),
        Buffer.from('From MAILER-DAEMON  Fri Nov 27 03:41:00 2026\n'),
        mboxEscaped(latin),
        Buffer.from('\n'),
        Buffer.from(mbox([autoReply()])),
      ]),
    );
    expect(await mailboxKind(file)).toBe('mbox');
    const messages = await all(file);
    expect(messages.map((m) => m.source)).toEqual([`${file}#1`, `${file}#2`, `${file}#3`]);
    expect(messages[0]!.raw.toString()).toBe(hard);
    expect(messages[1]!.raw.equals(latin)).toBe(true);
    expect(messages[2]!.raw.toString()).toBe(autoReply());
    expect(splitMbox(Buffer.from(''))).toEqual([]);
  });

  it('a Maildir: new/ then cur/, dot files and tmp/ ignored, nothing moved', async () => {
    const maildir = path.join(dir, 'Maildir');
    for (const sub of ['cur', 'new', 'tmp']) await mkdir(path.join(maildir, sub), { recursive: true });
    await writeFile(path.join(maildir, 'new', '1700000002.M1.host'), 'new message\n');
    await writeFile(path.join(maildir, 'cur', '1700000001.M1.host:2,S'), 'seen message\n');
    await writeFile(path.join(maildir, 'cur', '.hidden'), 'no\n');
    await writeFile(path.join(maildir, 'tmp', '1700000003.M1.host'), 'being written\n');
    expect(await mailboxKind(maildir)).toBe('maildir');
    const messages = await all(maildir);
    expect(messages.map((m) => [path.relative(maildir, m.source), m.raw.toString()])).toEqual([
      ['new/1700000002.M1.host', 'new message\n'],
      ['cur/1700000001.M1.host:2,S', 'seen message\n'],
    ]);
    expect(await all(maildir)).toHaveLength(2);
  });

  it('an .eml file, and a folder of them', async () => {
    const eml = path.join(dir, 'one.eml');
    await writeFile(eml, hard);
    expect(await mailboxKind(eml)).toBe('eml');
    expect((await all(eml)).map((m) => m.raw.toString())).toEqual([hard]);
    const folder = path.join(dir, 'emls');
    await mkdir(folder);
    await writeFile(path.join(folder, 'b.eml'), 'b\n');
    await writeFile(path.join(folder, 'a.EML'), 'a\n');
    await writeFile(path.join(folder, 'notes.txt'), 'not a message\n');
    expect((await all(folder)).map((m) => m.raw.toString())).toEqual(['a\n', 'b\n']);
  });

  it('a missing path is an InputError that says what it expects', async () => {
    await expect(all(path.join(dir, 'nope'))).rejects.toThrow(InputError);
  });
});

function mboxEscaped(message: Buffer): Buffer {
  return Buffer.from(message.toString('latin1').replace(/^(>*From )/gm, '>$1'), 'latin1');
}
