import { describe, expect, it } from 'vitest';
import { describeTransport, parseTransport, type TransportSpec } from '../../src/domain/transport-spec.js';

function spec(value: string): TransportSpec {
  const parsed = parseTransport(value);
  if ('error' in parsed) throw new Error(`${value}: ${parsed.error}`);
  return parsed;
}

describe('parseTransport', () => {
  it('smtp:// with user, password and port', () => {
    expect(spec('smtp://mailer:s3cret@mail.example.org:2525')).toEqual({
      kind: 'smtp',
      secure: false,
      host: 'mail.example.org',
      port: 2525,
      user: 'mailer',
      password: 's3cret',
    });
  });

  it('decodes percent-encoded credentials', () => {
    expect(spec('smtp://news%40example.org:p%40ss%3Aw%2Frd@mail.example.org')).toMatchObject({
      user: 'news@example.org',
      password: 'p@ss:w/rd',
    });
  });

  it('default ports: 587 for smtp (STARTTLS), 465 for smtps (TLS)', () => {
    expect(spec('smtp://mail.example.org')).toMatchObject({
      secure: false,
      port: 587,
      user: null,
      password: null,
    });
    expect(spec('smtps://mail.example.org')).toMatchObject({ secure: true, port: 465 });
  });

  it('an IPv6 literal host loses its brackets', () => {
    expect(spec('smtp://[::1]:25')).toMatchObject({ host: '::1', port: 25 });
  });

  it('sendmail, plain or with a path', () => {
    expect(spec('sendmail')).toEqual({ kind: 'sendmail', path: '/usr/sbin/sendmail' });
    expect(spec(' sendmail ')).toEqual({ kind: 'sendmail', path: '/usr/sbin/sendmail' });
    expect(spec('sendmail:/usr/local/bin/msmtp')).toEqual({ kind: 'sendmail', path: '/usr/local/bin/msmtp' });
  });

  it('file: with a relative or absolute folder (resolved later, against the working folder)', () => {
    expect(spec('file:./outbox')).toEqual({ kind: 'file', dir: './outbox' });
    expect(spec('file:/var/spool/news')).toEqual({ kind: 'file', dir: '/var/spool/news' });
    expect(spec('file:///var/spool/news')).toEqual({ kind: 'file', dir: '/var/spool/news' });
  });

  it('refuses what it cannot use, saying what it expects', () => {
    const cases: [string, RegExp][] = [
      ['ftp://mail.example.org', /must be smtp:\/\/…, smtps:\/\/…, sendmail or file:/],
      ['mail.example.org:25', /must be smtp/],
      ['', /must be smtp/],
      ['smtp://', /has no host/],
      ['smtp://mail.example.org:99999', /not a valid URL/],
      ['sendmail:', /needs a path/],
      ['file:', /needs a folder/],
    ];
    for (const [value, expected] of cases) {
      const parsed = parseTransport(value);
      expect('error' in parsed ? parsed.error : parsed, JSON.stringify(value)).toMatch(expected);
    }
  });

  it('never puts the password in an error', () => {
    const parsed = parseTransport('smtp://mailer:hunter2-password@mail.example.org:99999');
    expect(JSON.stringify(parsed)).not.toContain('hunter2-password');
  });
});

describe('describeTransport: printable, never the password', () => {
  it('smtp and smtps show the user, host and port, and *** for the password', () => {
    expect(describeTransport(spec('smtp://mailer:hunter2-password@mail.example.org:2525'))).toBe(
      'smtp://mailer:***@mail.example.org:2525',
    );
    expect(describeTransport(spec('smtps://mail.example.org'))).toBe('smtps://mail.example.org:465');
  });

  it('never shows the password, however it was written', () => {
    for (const value of [
      'smtp://mailer:hunter2-password@mail.example.org',
      'smtps://mailer:hunter2-password@mail.example.org:465',
      'smtp://:hunter2-password@mail.example.org',
      'smtp://mailer:hunter2%2Dpassword@mail.example.org',
      'smtp://mailer:hunter2-password@[2001:db8::25]:587',
    ]) {
      const text = describeTransport(spec(value));
      expect(text, value).not.toContain('hunter2');
      expect(text, value).not.toContain('password');
    }
  });

  it('an IPv6 host is shown in brackets, as in a URL', () => {
    expect(describeTransport(spec('smtp://mailer:pw@[2001:db8::25]:587'))).toBe(
      'smtp://mailer:***@[2001:db8::25]:587',
    );
  });

  it('sendmail and file say what and where', () => {
    expect(describeTransport(spec('sendmail'))).toBe('sendmail (/usr/sbin/sendmail)');
    expect(describeTransport({ kind: 'file', dir: '/srv/site/outbox' })).toBe('file outbox /srv/site/outbox');
  });
});
