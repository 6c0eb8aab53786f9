/**
 * Delivery status notifications (RFC 3464) as Postfix writes them, made in the test: a
 * multipart/report with a human-readable part, the message/delivery-status part (per-message
 * fields, then one block per recipient) and the returned headers (text/rfc822-headers). Line
 * endings are LF, as a local mailbox (mbox, Maildir) stores them.
 */
export interface DsnRecipient {
  address: string;
  /** failed, delayed, delivered, relayed, expanded */
  action: string;
  /** RFC 3463, e.g. 5.1.1 */
  status: string;
  diagnostic?: string;
}

export interface DsnOptions {
  /** The DSN's own Message-ID (without it, the importer hashes the bytes). */
  messageId?: string | null;
  recipients: DsnRecipient[];
  /** The Message-ID of the newsletter message that bounced. */
  originalMessageId?: string;
  date?: string;
  reportingMta?: string;
  boundary?: string;
  /** The DSN's To (where Postfix sends it: the bounced message's envelope sender, our VERP address). */
  to?: string;
  /** Further header lines of the DSN, e.g. `X-Original-To: …`, `Delivered-To: …`. */
  extraHeaders?: string[];
  /** The returned message's Return-Path header, when the reporting MTA kept it. */
  returnedReturnPath?: string;
}

export function postfixDsn(options: DsnOptions): string {
  const boundary = options.boundary ?? `4F2Xb91vMz.${Math.random().toString(36).slice(2, 10)}/mx.example.net`;
  const mta = options.reportingMta ?? 'mx.example.net';
  const date = options.date ?? 'Fri, 27 Nov 2026 03:40:00 +0000 (UTC)';
  const failed = options.recipients.some((r) => r.action === 'failed');
  const header = [
    'Return-Path: <>',
    `Received: by ${mta} (Postfix) id 4F2Xb91vMz; ${date}`,
    `Date: ${date}`,
    `From: MAILER-DAEMON@${mta} (Mail Delivery System)`,
    `Subject: ${failed ? 'Undelivered Mail Returned to Sender' : 'Delayed Mail (still being retried)'}`,
    `To: ${options.to ?? 'news@example.org'}`,
    ...(options.extraHeaders ?? []),
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status;\n\tboundary="${boundary}"`,
    'Content-Transfer-Encoding: 8bit',
    ...(options.messageId === null
      ? []
      : [`Message-Id: ${options.messageId ?? `<20261127034000.4F2Xb91vMz@${mta}>`}`]),
  ];
  const human = [
    'Content-Description: Notification',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    `This is the mail system at host ${mta}.`,
    '',
    "I'm sorry to have to inform you that your message could not",
    "be delivered to one or more recipients. It's attached below.",
    '',
    '                   The mail system',
    '',
    ...options.recipients.map((r) => `<${r.address}>: ${r.diagnostic ?? r.status}`),
  ];
  const perMessage = [
    'Content-Description: Delivery report',
    'Content-Type: message/delivery-status',
    '',
    `Reporting-MTA: dns; ${mta}`,
    'X-Postfix-Queue-ID: 4F2Xb91vMz',
    'X-Postfix-Sender: rfc822; news@example.org',
    `Arrival-Date: ${date}`,
  ];
  const perRecipient = options.recipients.flatMap((r) => [
    '',
    `Final-Recipient: rfc822; ${r.address}`,
    `Original-Recipient: rfc822;${r.address}`,
    `Action: ${r.action}`,
    `Status: ${r.status}`,
    `Remote-MTA: dns; mail.${r.address.split('@')[1] ?? 'example.net'}`,
    // Folded over two lines, as Postfix does with long replies.
    ...(r.diagnostic ? [`Diagnostic-Code: smtp; ${r.diagnostic}`] : []),
  ]);
  const returned = [
    'Content-Description: Undelivered Message Headers',
    'Content-Type: text/rfc822-headers',
    '',
    ...(options.returnedReturnPath ? [`Return-Path: <${options.returnedReturnPath}>`] : []),
    'From: Example News <news@example.org>',
    `To: ${options.recipients[0]?.address ?? 'someone@example.net'}`,
    'Subject: December news',
    `Message-ID: ${options.originalMessageId ?? '<n1.0123456789abcdef@example.org>'}`,
  ];
  return [
    ...header,
    '',
    'This is a MIME-encapsulated message.',
    '',
    `--${boundary}`,
    ...human,
    '',
    `--${boundary}`,
    ...perMessage,
    ...perRecipient,
    '',
    `--${boundary}`,
    ...returned,
    '',
    `--${boundary}--`,
    '',
  ].join('\n');
}

/** A message that is not a DSN: an out-of-office reply, which an importer must leave alone. */
export function autoReply(messageId = '<ooo-1@mail.example.net>'): string {
  return [
    'From: Ann <ann@example.net>',
    'To: news@example.org',
    'Subject: Out of office',
    `Message-ID: ${messageId}`,
    'Auto-Submitted: auto-replied',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    'I am away until Monday.',
    'From my phone: this line starts with From and must be escaped in an mbox.',
    '',
  ].join('\n');
}

/** An mbox (mboxrd) holding the messages, each after its `From ` separator line. */
export function mbox(messages: readonly string[]): string {
  return messages
    .map((message) => {
      const body = message.replace(/^(>*From )/gm, '>$1');
      return `From MAILER-DAEMON  Fri Nov 27 03:40:00 2026\n${body.endsWith('\n') ? body : `${body}\n`}\n`;
    })
    .join('');
}

/**
 * RFC 5965's sample feedback report (Appendix B.1, abuse), byte for byte apart from LF line ends;
 * `adapt` replaces the reported recipient and the reported message's Message-ID (and may add a
 * Message-ID of the report itself), to make it about one of our deliveries.
 */
export function rfc5965Sample(
  adapt: { originalRcptTo?: string; messageId?: string; reportMessageId?: string; to?: string } = {},
): string {
  return [
    'From: <abusedesk@example.com>',
    'Date: Thu, 8 Mar 2005 17:40:36 EDT',
    'Subject: FW: Earn money',
    `To: ${adapt.to ?? '<abuse@example.net>'}`,
    ...(adapt.reportMessageId ? [`Message-ID: ${adapt.reportMessageId}`] : []),
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=feedback-report;',
    '     boundary="part1_13d.2e68ed54_boundary"',
    '',
    '--part1_13d.2e68ed54_boundary',
    'Content-Type: text/plain; charset="US-ASCII"',
    'Content-Transfer-Encoding: 7bit',
    '',
    'This is an email abuse report for an email message received from IP',
    '192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT.  For more information',
    'about this format please see http://www.mipassoc.org/arf/.',
    '',
    '--part1_13d.2e68ed54_boundary',
    'Content-Type: message/feedback-report',
    '',
    'Feedback-Type: abuse',
    'User-Agent: SomeGenerator/1.0',
    'Version: 1',
    'Original-Mail-From: <somespammer@example.net>',
    `Original-Rcpt-To: <${adapt.originalRcptTo ?? 'user@example.com'}>`,
    'Received-Date: Thu, 8 Mar 2005 14:00:00 EDT',
    'Source-IP: 192.0.2.1',
    'Authentication-Results: mail.example.com;',
    '               spf=fail smtp.mail=somespammer@example.com',
    'Reported-Domain: example.net',
    'Reported-Uri: http://example.net/earn_money.html',
    'Reported-Uri: mailto:user@example.com',
    'Removal-Recipient: user@example.com',
    '',
    '--part1_13d.2e68ed54_boundary',
    'Content-Type: message/rfc822',
    'Content-Disposition: inline',
    '',
    'From: <somespammer@example.net>',
    'Received: from mailserver.example.net (mailserver.example.net',
    '        [192.0.2.1]) by example.com with ESMTP id M63d4137594e46;',
    '        Thu, 08 Mar 2005 14:00:00 -0400',
    'To: <Undisclosed Recipients>',
    'Subject: Earn money',
    'MIME-Version: 1.0',
    'Content-type: text/plain',
    `Message-ID: ${adapt.messageId ?? '8787KJKJ3K4J3K4J3K4J3.mail@example.net'}`,
    'Date: Thu, 02 Sep 2004 12:31:03 -0500',
    '',
    'Spam Spam Spam',
    'Spam Spam Spam',
    'Spam Spam Spam',
    'Spam Spam Spam',
    '--part1_13d.2e68ed54_boundary--',
    '',
  ].join('\n');
}
