/**
 * NEWSLETTER_SMTP_TLS / NEWSLETTER_SMTP_CA as the configuration reads them, and what doctor says
 * about a connection it saw (encrypted or not, the certificate's expiry): pure, no server.
 * The behaviour against real servers is in test/e2e/smtp-tls.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { smtpConnectionCheck } from '../../src/doctor/smtp-connection.js';
import { defaultSmtpTlsPolicy, parseSmtpTlsPolicy } from '../../src/domain/smtp-tls-policy.js';
import { parseTransport } from '../../src/domain/transport-spec.js';
import { smtpTlsConfig } from '../../src/smtp-tls-config.js';
import { TEST_CA_PATH } from '../helpers/tls-fixture.js';

const DAY = 24 * 60 * 60 * 1000;
const NOW = Date.parse('2026-12-07T00:00:00Z');

function smtp(url: string) {
  const spec = parseTransport(url);
  if ('error' in spec || spec.kind !== 'smtp') throw new Error(`bad test url ${url}`);
  return spec;
}

function configOf(env: Record<string, string>, transport = smtp('smtp://relay.example.org')) {
  const problems: string[] = [];
  const config = smtpTlsConfig((key) => env[key] ?? null, '/', transport, problems);
  return { config, problems };
}

describe('NEWSLETTER_SMTP_TLS', () => {
  it('is required with a password, opportunistic without', () => {
    expect(defaultSmtpTlsPolicy(true)).toBe('required');
    expect(defaultSmtpTlsPolicy(false)).toBe('opportunistic');
    expect(configOf({}).config.policy).toBeNull();
  });

  it('takes the three values, in any case; anything else names the variable', () => {
    expect(parseSmtpTlsPolicy(' Required ')).toBe('required');
    expect(configOf({ NEWSLETTER_SMTP_TLS: 'none' }).config.policy).toBe('none');
    const { problems } = configOf({ NEWSLETTER_SMTP_TLS: 'starttls' });
    expect(problems).toEqual([expect.stringContaining('NEWSLETTER_SMTP_TLS "starttls" must be required')]);
  });

  it('none with a password is refused: the password would go in clear', () => {
    const { problems } = configOf(
      { NEWSLETTER_SMTP_TLS: 'none' },
      smtp('smtp://news:s3cret-password@127.0.0.1:25'),
    );
    expect(problems).toEqual([expect.stringContaining('NEWSLETTER_SMTP_TLS is none')]);
    expect(problems.join(' ')).not.toContain('s3cret-password');
  });
});

describe('NEWSLETTER_SMTP_CA', () => {
  it('reads a PEM certificate', () => {
    const { config, problems } = configOf({ NEWSLETTER_SMTP_CA: TEST_CA_PATH });
    expect(problems).toEqual([]);
    expect(config.ca?.path).toBe(TEST_CA_PATH);
    expect(config.ca?.pem).toContain('BEGIN CERTIFICATE');
  });

  it('a missing file names the variable and the path', () => {
    const { config, problems } = configOf({ NEWSLETTER_SMTP_CA: '/nonexistent/ca.pem' });
    expect(config.ca).toBeNull();
    expect(problems).toEqual([
      expect.stringMatching(/^NEWSLETTER_SMTP_CA \/nonexistent\/ca\.pem does not exist/),
    ]);
  });
});

describe("doctor's transport check for SMTP", () => {
  const spec = smtp('smtp://news:pw-secret@smtp.example.org:587');
  const shown = 'smtp://news:***@smtp.example.org:587';
  const tls = (validTo: Date | null) => ({ version: 'TLSv1.3', subject: 'CN=smtp.example.org', validTo });

  it('reports the TLS version, the subject and the expiry', () => {
    const check = smtpConnectionCheck(
      spec,
      shown,
      { tls: tls(new Date(NOW + 90 * DAY)), authenticated: true, tlsPolicy: 'required' },
      NOW,
    );
    expect(check.level).toBe('ok');
    expect(check.message).toBe(
      `${shown}: connected over TLSv1.3 (STARTTLS), certificate CN=smtp.example.org, valid until 2027-03-07T00:00:00.000Z, authenticated as news; no mail was sent.`,
    );
  });

  it('warns within 14 days of the expiry, not before', () => {
    const at = (days: number) =>
      smtpConnectionCheck(
        spec,
        shown,
        { tls: tls(new Date(NOW + days * DAY)), authenticated: true, tlsPolicy: 'required' },
        NOW,
      );
    expect(at(14).level).toBe('ok');
    expect(at(13.5)).toMatchObject({
      level: 'warning',
      message: expect.stringContaining('expires in 13 days'),
    });
    expect(at(1.5).message).toContain('expires in 1 day.');
  });

  it('a connection without TLS is a warning, unless none to a loopback relay', () => {
    const plain = { tls: null, authenticated: false } as const;
    expect(smtpConnectionCheck(spec, shown, { ...plain, tlsPolicy: 'opportunistic' }, NOW)).toMatchObject({
      level: 'warning',
      message: expect.stringContaining('WITHOUT encryption: the server does not offer STARTTLS'),
    });
    const relay = smtp('smtp://127.0.0.1:25');
    expect(
      smtpConnectionCheck(relay, 'smtp://127.0.0.1:25', { ...plain, tlsPolicy: 'none' }, NOW).level,
    ).toBe('ok');
    expect(smtpConnectionCheck(spec, shown, { ...plain, tlsPolicy: 'none' }, NOW).level).toBe('warning');
  });
});
