/**
 * Section `bounces` of the benchmark (issue 18): `newsletter bounces import` of a generated mbox
 * of 1 GB (`--quick`: 64 MB) must stay under 200 MB peak RSS, because the mbox is streamed
 * (src/import/mbox-splitter.ts), never read whole. The code before it read the file whole: 1.3 GB
 * of RSS for a 400 MB mbox, and a crash past 2 GiB (a Node Buffer's limit).
 *
 *   bouncesMbox({ quick, log }) → a JSON-able section (with its `commands`)
 *
 * The mbox holds Postfix DSNs that return the whole original message (Postfix's default), about
 * 20 KB each, with `From ` lines quoted in their bodies, CRLF and LF messages mixed, and one
 * message of 12 MB (over the 10 MiB a message is read to). Their tokens are not ours, so every
 * report ends "unmatched": what is measured is reading and parsing, the part that grows with the
 * file; a store write per message would add time, not memory.
 */
import { createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { cli, cpuMicros, round, workspace } from './lib.js';

const LIMIT_MIB = 200;

export async function bouncesMbox({ quick, log }) {
  const targetBytes = quick ? 64 * 1024 * 1024 : 1024 * 1024 * 1024;
  const ws = await workspace('bounces');
  try {
    const file = path.join(ws.dir, 'bounces.mbox');
    const generated = await writeMbox(file, targetBytes);
    const bytes = (await stat(file)).size;
    log(`bounces: ${round(bytes / 1024 / 1024)} MiB mbox, ${generated} messages; importing`);
    const run = await cli(ws, ['bounces', 'import', file, '--json'], { rusage: true, timeoutMs: 3_600_000 });
    const summary = JSON.parse(run.stdout);
    if (summary.messages !== generated) {
      throw new Error(`bounces: the import read ${summary.messages} messages of ${generated}`);
    }
    const peakMiB = run.usage ? round(run.usage.maxRSS / 1024, 1) : null;
    const section = {
      mboxBytes: bytes,
      messages: generated,
      seconds: round(run.ms / 1000, 1),
      messagesPerSecond: round(generated / (run.ms / 1000)),
      mibPerSecond: round(bytes / 1024 / 1024 / (run.ms / 1000), 1),
      cpuSeconds: run.usage ? round(cpuMicros(run.usage) / 1e6, 1) : null,
      peakRssMiB: peakMiB,
      limitMiB: LIMIT_MIB,
      withinLimit: peakMiB !== null && peakMiB < LIMIT_MIB,
      summary: {
        unmatched: summary.unmatched,
        notReports: summary.notReports,
        problems: summary.problems.length,
      },
      commands: [
        `newsletter bounces import bounces.mbox --json   # ${round(bytes / 1024 / 1024)} MiB, peak RSS measured`,
      ],
    };
    log(
      `bounces: ${section.seconds} s, ${section.mibPerSecond} MiB/s, peak RSS ${peakMiB} MiB (limit ${LIMIT_MIB} MiB)`,
    );
    if (!section.withinLimit) throw new Error(`bounces: peak RSS ${peakMiB} MiB is over ${LIMIT_MIB} MiB`);
    return section;
  } finally {
    await rm(ws.dir, { recursive: true, force: true });
  }
}

/** Writes DSNs until the file reaches `targetBytes`; returns how many messages it holds. */
async function writeMbox(file, targetBytes) {
  const out = createWriteStream(file, { highWaterMark: 1024 * 1024 });
  const write = (text) =>
    out.write(text) ? Promise.resolve() : new Promise((resolve) => out.once('drain', resolve));
  const body = returnedBody();
  let written = 0;
  let n = 0;
  while (written < targetBytes) {
    n += 1;
    let message = n === 3 ? bigMessage(n) : dsn(n, body);
    if (n % 2 === 0) message = message.replace(/\n/g, '\r\n');
    // mboxrd: quote every From line (and already quoted ones) one level deeper.
    const entry = `From MAILER-DAEMON  Fri Nov 27 03:40:00 2026\n${message.replace(/^(>*From )/gm, '>$1')}\n`;
    await write(entry);
    written += Buffer.byteLength(entry);
  }
  await new Promise((resolve, reject) => out.end((error) => (error ? reject(error) : resolve())));
  return n;
}

function dsn(n, returned) {
  const address = `reader${String(n).padStart(7, '0')}@example.net`;
  const boundary = `B${n}.1700000000/mx.example.net`;
  return [
    'Return-Path: <>',
    `Delivered-To: bounces+notours${n}@example.org`,
    'From: MAILER-DAEMON@mx.example.net (Mail Delivery System)',
    'Subject: Undelivered Mail Returned to Sender',
    'To: bounces@example.org',
    `Message-Id: <dsn-${n}@mx.example.net>`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    `<${address}>: host mx.example.net said: 550 5.1.1 user unknown`,
    '',
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    '',
    'Reporting-MTA: dns; mx.example.net',
    '',
    `Final-Recipient: rfc822; ${address}`,
    'Action: failed',
    'Status: 5.1.1',
    'Diagnostic-Code: smtp; 550 5.1.1 user unknown',
    '',
    `--${boundary}`,
    'Content-Type: message/rfc822',
    '',
    'From: Example News <news@example.org>',
    `To: ${address}`,
    'Subject: December news',
    `Message-ID: <n1.${n}.0123456789abcdef@example.org>`,
    'Content-Type: text/plain; charset=utf-8',
    '',
    returned,
    `--${boundary}--`,
    '',
  ].join('\n');
}

/** About 18 KB of newsletter text, with lines an mbox must quote. */
function returnedBody() {
  const lines = [];
  for (let i = 0; lines.join('\n').length < 18_000; i++) {
    lines.push(
      i % 40 === 0
        ? 'From the editor: a line that starts with From.'
        : `Paragraph ${i}: ${'lorem ipsum '.repeat(6)}`,
    );
  }
  return lines.join('\n');
}

/** One message of 12 MB: read to its first 10 MiB only. */
function bigMessage(n) {
  return [
    'From: someone@example.net',
    'To: bounces@example.org',
    `Message-Id: <big-${n}@example.net>`,
    'Subject: a large attachment sent to the bounce address',
    '',
    `${'x'.repeat(75)}\n`.repeat(160_000),
  ].join('\n');
}
