import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  classifySendmailFailure,
  classifySmtpFailure,
  classifySuccess,
  extractQueueId,
  redactSecrets,
  type SmtpFailure,
  type SmtpPhase,
} from '../../src/domain/outcome.js';

const rcpt = (responseCode: number, response: string): SmtpFailure => ({
  code: 'EENVELOPE',
  responseCode,
  response,
  command: 'RCPT TO',
  message: `Recipient command failed: ${response}`,
});

describe('classifySmtpFailure: DESIGN "SMTP outcomes"', () => {
  it.each<[string, SmtpFailure, SmtpPhase, object]>([
    // 4xx at any step → retry
    [
      '450 at RCPT TO',
      rcpt(450, '450 4.2.1 Mailbox busy'),
      'before-data',
      { kind: 'retry', throttled: false },
    ],
    [
      '451 at MAIL FROM',
      { code: 'EENVELOPE', responseCode: 451, response: '451 4.3.0 Local error', command: 'MAIL FROM' },
      'before-data',
      { kind: 'retry', throttled: false, unreachable: false },
    ],
    [
      '452 at the DATA command',
      { code: 'EENVELOPE', responseCode: 452, response: '452 4.3.1 Insufficient storage', command: 'DATA' },
      'before-data',
      { kind: 'retry', throttled: false },
    ],
    [
      '451 after the final dot',
      { code: 'EMESSAGE', responseCode: 451, response: '451 4.7.1 Greylisted', command: 'DATA' },
      'data-sent',
      { kind: 'retry', throttled: false, unreachable: false },
    ],
    [
      '4xx greeting',
      { code: 'ECONNECTION', responseCode: 450, response: '450 busy', command: 'CONN' },
      'before-data',
      { kind: 'retry' },
    ],
    // 421 and 454 → retry, throttled
    [
      '421 at RCPT TO',
      rcpt(421, '421 4.7.0 Too many messages, slow down'),
      'before-data',
      { kind: 'retry', throttled: true },
    ],
    [
      '421 greeting',
      { code: 'ECONNECTION', responseCode: 421, response: '421 4.7.0 Try again later', command: 'CONN' },
      'before-data',
      { kind: 'retry', throttled: true },
    ],
    [
      '421 after data',
      { code: 'ECONNECTION', responseCode: 421, response: '421 4.4.2 Timeout', command: 'CONN' },
      'data-sent',
      { kind: 'retry', throttled: true },
    ],
    [
      '454 at RCPT TO',
      rcpt(454, '454 4.7.1 Rate limited'),
      'before-data',
      { kind: 'retry', throttled: true },
    ],
    [
      '454 at AUTH (temporary auth failure)',
      {
        code: 'EAUTH',
        responseCode: 454,
        response: '454 4.7.0 Temporary authentication failure',
        command: 'AUTH PLAIN',
      },
      'before-data',
      { kind: 'retry', throttled: true },
    ],
    // 5xx → failed; 5.1.x suppresses
    [
      '550 5.1.1 at RCPT TO',
      rcpt(550, '550 5.1.1 <x@y>: Recipient address rejected: User unknown'),
      'before-data',
      { kind: 'failed', suppress: true },
    ],
    [
      '550 5.1.10 null MX',
      rcpt(550, '550 5.1.10 Recipient domain has null MX'),
      'before-data',
      { kind: 'failed', suppress: true },
    ],
    [
      '550 without enhanced code, "user unknown" text',
      rcpt(550, '550 <x@y>: user unknown'),
      'before-data',
      { kind: 'failed', suppress: true },
    ],
    [
      '553 "no such user"',
      rcpt(553, '553 sorry, no such user here'),
      'before-data',
      { kind: 'failed', suppress: true },
    ],
    [
      '551 "mailbox does not exist"',
      rcpt(551, '551 mailbox does not exist'),
      'before-data',
      { kind: 'failed', suppress: true },
    ],
    [
      '550 5.7.1 policy at RCPT TO',
      rcpt(550, '550 5.7.1 Message refused by the recipient policy'),
      'before-data',
      { kind: 'failed', suppress: false },
    ],
    [
      '552 mailbox full',
      rcpt(552, '552 5.2.2 Mailbox full'),
      'before-data',
      { kind: 'failed', suppress: false },
    ],
    [
      '550 "mailbox unavailable" (policy, not an unknown user)',
      rcpt(550, '550 Requested action not taken: mailbox unavailable'),
      'before-data',
      { kind: 'failed', suppress: false },
    ],
    [
      '554 after the data',
      { code: 'EMESSAGE', responseCode: 554, response: '554 5.7.1 Spam', command: 'DATA' },
      'data-sent',
      { kind: 'failed', suppress: false },
    ],
    [
      '550 5.1.1 after the data',
      { code: 'EMESSAGE', responseCode: 550, response: '550 5.1.1 No such user', command: 'DATA' },
      'data-sent',
      { kind: 'failed', suppress: true },
    ],
    [
      '554 at the DATA command',
      { code: 'EENVELOPE', responseCode: 554, response: '554 5.5.1 No valid recipients', command: 'DATA' },
      'before-data',
      { kind: 'failed', suppress: false },
    ],
    // authentication and configuration → fatal
    [
      '535 at AUTH',
      {
        code: 'EAUTH',
        responseCode: 535,
        response: '535 5.7.8 Authentication credentials invalid',
        command: 'AUTH PLAIN',
      },
      'before-data',
      { kind: 'fatal' },
    ],
    [
      '534 at AUTH',
      {
        code: 'EAUTH',
        responseCode: 534,
        response: '534 5.7.9 Application-specific password required',
        command: 'AUTH LOGIN',
      },
      'before-data',
      { kind: 'fatal' },
    ],
    [
      '530 at AUTH',
      {
        code: 'EAUTH',
        responseCode: 530,
        response: '530 5.7.0 Must issue a STARTTLS command first',
        command: 'AUTH PLAIN',
      },
      'before-data',
      { kind: 'fatal' },
    ],
    [
      'EAUTH, no reply (missing credentials)',
      { code: 'EAUTH', message: 'Missing credentials for "PLAIN"', command: 'API' },
      'before-data',
      { kind: 'fatal' },
    ],
    [
      'EAUTH with an unexpected 334',
      { code: 'EAUTH', responseCode: 334, response: '334 VXNlcm5hbWU6', command: 'AUTH LOGIN' },
      'before-data',
      { kind: 'fatal' },
    ],
    [
      'ENOAUTH',
      { code: 'ENOAUTH', message: 'Authentication info was not provided' },
      'before-data',
      { kind: 'fatal' },
    ],
    [
      '530 at MAIL FROM (authentication required)',
      {
        code: 'EENVELOPE',
        responseCode: 530,
        response: '530 5.7.0 Authentication required',
        command: 'MAIL FROM',
      },
      'before-data',
      { kind: 'fatal' },
    ],
    [
      '553 at MAIL FROM (sender refused)',
      {
        code: 'EENVELOPE',
        responseCode: 553,
        response: '553 5.7.1 Sender address rejected: not owned by user',
        command: 'MAIL FROM',
      },
      'before-data',
      { kind: 'fatal' },
    ],
    [
      '554 greeting',
      { code: 'EPROTOCOL', responseCode: 554, response: '554 No SMTP service here', command: 'CONN' },
      'before-data',
      { kind: 'fatal' },
    ],
    [
      '554 relay access denied at RCPT TO (every recipient would fail)',
      rcpt(554, '554 5.7.1 <x@y>: Relay access denied'),
      'before-data',
      { kind: 'fatal' },
    ],
    ['550 "relaying denied"', rcpt(550, '550 relaying denied'), 'before-data', { kind: 'fatal' }],
    [
      '530 at RCPT TO (authentication required)',
      rcpt(530, '530 5.7.0 Authentication required'),
      'before-data',
      { kind: 'fatal' },
    ],
    [
      '550 5.1.8 at RCPT TO (the sender domain is refused)',
      rcpt(550, '550 5.1.8 Bad sender address domain'),
      'before-data',
      { kind: 'fatal' },
    ],
    ['ECONFIG', { code: 'ECONFIG', message: 'Invalid configuration' }, 'before-data', { kind: 'fatal' }],
    [
      'TLS required but not offered',
      {
        code: 'ETLS',
        responseCode: 250,
        response: '250 PIPELINING',
        command: 'EHLO',
        message: 'Error upgrading connection with STARTTLS',
      },
      'before-data',
      { kind: 'fatal' },
    ],
    [
      'certificate error',
      {
        code: 'ESOCKET',
        originalCode: 'DEPTH_ZERO_SELF_SIGNED_CERT',
        message: 'self-signed certificate',
        command: 'CONN',
      },
      'before-data',
      { kind: 'fatal' },
    ],
    [
      'expired certificate',
      {
        code: 'ESOCKET',
        originalCode: 'CERT_HAS_EXPIRED',
        message: 'certificate has expired',
        command: 'CONN',
      },
      'before-data',
      { kind: 'fatal' },
    ],
    // no connection before the envelope → retry, unreachable
    [
      'ECONNREFUSED',
      {
        code: 'ESOCKET',
        originalCode: 'ECONNREFUSED',
        message: 'connect ECONNREFUSED 127.0.0.1:1',
        command: 'CONN',
      },
      'before-data',
      { kind: 'retry', unreachable: true, throttled: false },
    ],
    [
      'bare ECONNREFUSED',
      { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' },
      'before-data',
      { kind: 'retry', unreachable: true },
    ],
    [
      'ECONNRESET before data',
      { code: 'ESOCKET', originalCode: 'ECONNRESET', message: 'read ECONNRESET', command: 'CONN' },
      'before-data',
      { kind: 'retry', unreachable: true },
    ],
    [
      'ETIMEDOUT before data',
      { code: 'ETIMEDOUT', message: 'Connection timeout', command: 'CONN' },
      'before-data',
      { kind: 'retry', unreachable: true },
    ],
    [
      'a host name that does not exist (a typo): fatal, not transient',
      {
        code: 'EDNS',
        originalCode: 'ENOTFOUND',
        message: 'the SMTP host smtp.invalid does not resolve (ENOTFOUND)',
        command: 'CONN',
      },
      'before-data',
      { kind: 'fatal' },
    ],
    [
      'a resolver that cannot answer (EAI_AGAIN): retry',
      {
        code: 'EDNS',
        originalCode: 'EAI_AGAIN',
        message: 'getaddrinfo EAI_AGAIN smtp.example.org',
        command: 'CONN',
      },
      'before-data',
      { kind: 'retry', unreachable: true },
    ],
    [
      'closed during the envelope',
      { code: 'ECONNECTION', message: 'Connection closed unexpectedly', command: 'CONN' },
      'before-data',
      { kind: 'retry', unreachable: true },
    ],
    [
      'an unexpected error before data',
      { code: 'EPROTOCOL', message: 'Invalid greeting', command: 'CONN' },
      'before-data',
      { kind: 'retry', unreachable: false },
    ],
    // lost after the data → unknown
    [
      'ETIMEDOUT after data',
      { code: 'ETIMEDOUT', message: 'Timeout', command: 'CONN' },
      'data-sent',
      { kind: 'unknown' },
    ],
    [
      'ECONNRESET after data',
      { code: 'ESOCKET', originalCode: 'ECONNRESET', message: 'read ECONNRESET', command: 'CONN' },
      'data-sent',
      { kind: 'unknown' },
    ],
    [
      'closed after data',
      { code: 'ECONNECTION', message: 'Connection closed unexpectedly', command: 'CONN' },
      'data-sent',
      { kind: 'unknown' },
    ],
    [
      'aborted after data',
      { code: 'EABORT', message: 'Message sending aborted' },
      'data-sent',
      { kind: 'unknown' },
    ],
    ['anything without a code after data', { message: 'something odd' }, 'data-sent', { kind: 'unknown' }],
  ])('%s', (_name, failure, phase, expected) => {
    expect(classifySmtpFailure(failure, phase)).toMatchObject(expected);
  });

  it("keeps the server's words and the step in the reply", () => {
    expect(classifySmtpFailure(rcpt(550, '550 5.1.1 <x@y>: user unknown'), 'before-data').reply).toBe(
      '550 5.1.1 <x@y>: user unknown (RCPT TO)',
    );
    expect(
      classifySmtpFailure({ code: 'ETIMEDOUT', message: 'Timeout', command: 'CONN' }, 'data-sent').reply,
    ).toBe('no reply after the message data was sent: ETIMEDOUT: Timeout (CONN)');
    expect(
      classifySmtpFailure(
        { code: 'ESOCKET', originalCode: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:1' },
        'before-data',
      ).reply,
    ).toBe('ESOCKET/ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:1');
  });

  it('joins a multi-line reply on one line and reads its code from the text when the field is missing', () => {
    const outcome = classifySmtpFailure(
      {
        response: '550-5.1.1 The email account does not exist.\n550 5.1.1 Please check the address',
        command: 'RCPT TO',
      },
      'before-data',
    );
    expect(outcome).toEqual({
      kind: 'failed',
      suppress: true,
      reply: '550-5.1.1 The email account does not exist. / 550 5.1.1 Please check the address (RCPT TO)',
    });
  });

  describe('never shows credentials', () => {
    const password = 'S3cr3t-Pa55!';
    const plain = Buffer.from(`\u0000news\u0000${password}`).toString('base64');

    it('hides the argument of an AUTH command', () => {
      const outcome = classifySmtpFailure(
        {
          code: 'EAUTH',
          responseCode: 535,
          response: `535 5.7.8 Error: authentication failed: AUTH PLAIN ${plain}`,
          command: 'AUTH PLAIN',
        },
        'before-data',
      );
      expect(outcome.kind).toBe('fatal');
      expect(outcome.reply).not.toContain(plain);
      expect(outcome.reply).toBe('535 5.7.8 Error: authentication failed: AUTH PLAIN *** (AUTH PLAIN)');
    });

    it('hides base64 lines of an AUTH LOGIN dialogue and password=… pairs', () => {
      const login = Buffer.from(password).toString('base64');
      const outcome = classifySmtpFailure(
        {
          code: 'EAUTH',
          message: `Invalid login sequence\n${login}\npassword=${password}`,
          command: 'AUTH LOGIN',
        },
        'before-data',
      );
      expect(outcome.reply).not.toContain(login);
      expect(outcome.reply).not.toContain(password);
    });

    it('hides a given secret wherever it appears, also base64- or URL-encoded', () => {
      for (const text of [
        `535 Authentication failed for news:${password}`,
        `535 bad credentials ${Buffer.from(password).toString('base64')}`,
        `554 smtp://news:${encodeURIComponent(password)}@mail.example.org refused`,
      ]) {
        const outcome = classifySmtpFailure(
          { responseCode: Number(text.slice(0, 3)), response: text, command: 'AUTH PLAIN' },
          'before-data',
          [password],
        );
        expect(outcome.reply).not.toContain(password);
        expect(outcome.reply).not.toContain(encodeURIComponent(password));
        expect(outcome.reply).not.toContain(Buffer.from(password).toString('base64').replace(/=+$/, ''));
        expect(outcome.reply).toContain('***');
      }
    });

    it('property: a secret never survives in any reply', () => {
      fc.assert(
        fc.property(
          fc.string({ minLength: 4, maxLength: 24 }).filter((s) => s.trim().length >= 4),
          fc.string({ maxLength: 40 }),
          fc.constantFrom<SmtpPhase>('before-data', 'data-sent'),
          fc.constantFrom(undefined, 421, 450, 535, 550),
          (secret, noise, phase, responseCode) => {
            const text = `${noise} ${secret} ${noise}`;
            const failure: SmtpFailure = responseCode
              ? { responseCode, response: `${responseCode} ${text}`, command: 'AUTH LOGIN' }
              : { code: 'EAUTH', message: text };
            expect(classifySmtpFailure(failure, phase, [secret]).reply).not.toContain(secret);
          },
        ),
      );
    });

    it('leaves ordinary replies alone', () => {
      expect(redactSecrets('250 2.0.0 Ok: queued as 4F2Xb91vMz')).toBe('250 2.0.0 Ok: queued as 4F2Xb91vMz');
      expect(redactSecrets('504 5.5.4 AUTH mechanism not supported')).toBe(
        '504 5.5.4 AUTH mechanism not supported',
      );
    });
  });
});

describe('classifySuccess', () => {
  it.each([
    ['250 2.0.0 Ok: queued as ABC123', 'ABC123'],
    ['250 OK id=1r2AbC-000123-Xy', '1r2AbC-000123-Xy'],
    ['250 2.0.0 43K1q3Zx012345 Message accepted for delivery', '43K1q3Zx012345'],
    ['250 2.0.0 OK  1700000000 a1b2c3d4e5.12 - gsmtp', 'a1b2c3d4e5.12'],
    [
      '250 Ok 0100018b5c3c0a4f-3f2b1c2d-aaaa-bbbb-cccc-123456789abc-000000',
      '0100018b5c3c0a4f-3f2b1c2d-aaaa-bbbb-cccc-123456789abc-000000',
    ],
    [
      '250 2.6.0 <abc@host.prod.outlook.com> [InternalId=123, Hostname=X] Queued mail for delivery',
      'abc@host.prod.outlook.com',
    ],
    ['250 OK: message queued', null],
    ['250 Ok', null],
  ])('%s → %s', (reply, queueId) => {
    expect(extractQueueId(reply)).toBe(queueId);
    expect(classifySuccess(reply)).toEqual({ kind: 'sent', reply, queueId });
  });
});

describe('classifySendmailFailure', () => {
  const path = '/usr/sbin/sendmail';
  it.each<[string, Parameters<typeof classifySendmailFailure>[0], object]>([
    ['missing binary', { code: 'ENOENT', message: 'spawn /usr/sbin/sendmail ENOENT' }, { kind: 'fatal' }],
    ['not executable', { code: 'EACCES' }, { kind: 'fatal' }],
    ['127 from a shell', { exitCode: 127 }, { kind: 'fatal' }],
    ['EX_CONFIG', { exitCode: 78 }, { kind: 'fatal' }],
    ['EX_TEMPFAIL', { exitCode: 75 }, { kind: 'retry', throttled: false, unreachable: false }],
    [
      'any other exit',
      { exitCode: 1 },
      { kind: 'failed', suppress: false, reply: '/usr/sbin/sendmail exited with code 1' },
    ],
    ['EX_NOUSER', { exitCode: 67 }, { kind: 'failed' }],
    ['killed after reading the message', { signal: 'SIGKILL', messageWritten: true }, { kind: 'unknown' }],
    ['killed before reading it', { signal: 'SIGKILL', messageWritten: false }, { kind: 'retry' }],
    [
      'exit 0 before the message was written',
      { messageWritten: false, message: 'Sendmail exited before the message was written' },
      { kind: 'retry' },
    ],
  ])('%s', (_name, failure, expected) => {
    expect(classifySendmailFailure(failure, path)).toMatchObject(expected);
  });
});
