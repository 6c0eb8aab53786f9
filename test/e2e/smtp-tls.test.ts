/**
 * Promise: the SMTP password never crosses the network in clear, and the TLS a send depends on is
 * visible before it fails (issue 13, "TLS before credentials"). Real processes (the built CLI)
 * against a real smtp-server on 127.0.0.1; each check reads what the server saw (AUTH attempts,
 * AUTH lines in clear, messages) and what the ledger says (nothing claimed is lost).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, describeRun } from '../helpers/cli.js';
import { type SmtpSink, type SmtpSinkOptions, startSmtpSink } from '../helpers/smtp-sink.js';
import { shortLivedCertificate } from '../helpers/tls-fixture.js';
import { createWorkspace, type Workspace } from '../helpers/workspace.js';

const USER = 'news';
const PASSWORD = 'Tls-Only-P4ssword';
const RECIPIENTS = 4;

const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(() => {
  assertBuilt();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function sink(options: SmtpSinkOptions): Promise<SmtpSink> {
  const started = await startSmtpSink(options);
  cleanups.push(() => started.close());
  return started;
}

/** A workspace with one newsletter scheduled now for RECIPIENTS subscribers. */
async function workspace(transport: string, env: Record<string, string> = {}): Promise<Workspace> {
  const ws = await createWorkspace({ recipients: RECIPIENTS, transport, env });
  cleanups.push(() => ws.remove());
  return ws;
}

const withPassword = (smtp: SmtpSink) => smtp.url.replace('://', `://${USER}:${PASSWORD}@`);

/** Nothing is lost: no row is `claimed`, `unknown` or `sent`; what was claimed waits as `retry`. */
function expectNothingLost(ws: Workspace): void {
  const states = ws.ledger().map((row) => row.state);
  expect(states.filter((state) => state !== 'retry')).toEqual([]);
}

describe('credentials only over TLS', () => {
  it('a server without STARTTLS never sees AUTH: exit 3, why and what to do, nothing lost', async () => {
    // What an attacker who strips STARTTLS from the EHLO reply presents: AUTH offered in clear.
    const smtp = await sink({ auth: { user: USER, password: PASSWORD }, tls: 'none' });
    const ws = await workspace(withPassword(smtp));

    const run = await ws.run(['send-due']);

    expect(run.code, describeRun(['send-due'], run)).toBe(3);
    expect(run.stderr).toContain('does not offer STARTTLS');
    expect(run.stderr).toContain('the password was not sent');
    expect(run.stderr).toMatch(/smtps:\/\//);
    expect(`${run.stdout}${run.stderr}`).not.toContain(PASSWORD);
    expect(smtp.authAttempts).toBe(0);
    expect(smtp.clearTextAuthCommands).toBe(0);
    expect(smtp.envelopeCommands).toEqual([]);
    expectNothingLost(ws);
  });

  it('NEWSLETTER_SMTP_TLS=required without a password also refuses a server without STARTTLS', async () => {
    const smtp = await sink({ tls: 'none' });
    const ws = await workspace(smtp.url, { NEWSLETTER_SMTP_TLS: 'required' });

    const run = await ws.run(['send-due']);

    expect(run.code, describeRun(['send-due'], run)).toBe(3);
    expect(run.stderr).toContain('NEWSLETTER_SMTP_TLS');
    expect(smtp.envelopeCommands).toEqual([]);
    expectNothingLost(ws);
  });

  it('none sends in clear to a loopback relay without AUTH, and never tries STARTTLS', async () => {
    // STARTTLS is offered with a certificate nobody trusts: trying it would fail the run.
    const smtp = await sink({ tls: 'starttls' });
    const ws = await workspace(smtp.url, { NEWSLETTER_SMTP_TLS: 'none' });

    const run = await ws.run(['send-due']);

    expect(run.code, describeRun(['send-due'], run)).toBe(0);
    expect(smtp.total).toBe(RECIPIENTS);
  });

  it('an invalid NEWSLETTER_SMTP_TLS, or none with a password, is exit 3 naming the variable', async () => {
    const smtp = await sink({});
    const ws = await workspace(smtp.url);
    const invalid = await ws.run(['send-due'], { NEWSLETTER_SMTP_TLS: 'sometimes' });
    expect(invalid.code, describeRun(['send-due'], invalid)).toBe(3);
    expect(invalid.stderr).toContain('NEWSLETTER_SMTP_TLS "sometimes"');
    const clear = await ws.run(['send-due'], {
      NEWSLETTER_SMTP_TLS: 'none',
      NEWSLETTER_TRANSPORT: withPassword(smtp),
    });
    expect(clear.code, describeRun(['send-due'], clear)).toBe(3);
    expect(clear.stderr).toContain('NEWSLETTER_SMTP_TLS is none');
    expect(clear.stderr).not.toContain(PASSWORD);
    expect(smtp.connections).toBe(0);
  });
});

describe('a private CA', () => {
  it('STARTTLS with a certificate of a private CA: sends with NEWSLETTER_SMTP_CA, refuses without', async () => {
    const smtp = await sink({ auth: { user: USER, password: PASSWORD }, tls: 'starttls' });
    const ws = await workspace(withPassword(smtp));

    const untrusted = await ws.run(['send-due']);
    expect(untrusted.code, describeRun(['send-due'], untrusted)).toBe(3);
    expect(untrusted.stderr).toContain('is not trusted');
    expect(untrusted.stderr).toContain('NEWSLETTER_SMTP_CA');
    expect(smtp.authAttempts).toBe(0);
    expectNothingLost(ws);

    const trusted = await ws.run(['send-due'], { NEWSLETTER_SMTP_CA: smtp.caPath });
    expect(trusted.code, describeRun(['send-due'], trusted)).toBe(0);
    expect(smtp.total).toBe(RECIPIENTS);
    expect(smtp.authAttempts).toBeGreaterThan(0);
    expect(smtp.clearTextAuthCommands).toBe(0);
  });

  it('smtps:// (TLS from the first byte) with NODE_EXTRA_CA_CERTS instead', async () => {
    const smtp = await sink({ auth: { user: USER, password: PASSWORD }, tls: 'implicit' });
    const ws = await workspace(withPassword(smtp), { NODE_EXTRA_CA_CERTS: smtp.caPath });

    const run = await ws.run(['send-due']);

    expect(run.code, describeRun(['send-due'], run)).toBe(0);
    expect(smtp.total).toBe(RECIPIENTS);
    expect(smtp.clearTextAuthCommands).toBe(0);
  });

  it('a NEWSLETTER_SMTP_CA that does not exist, or is not a certificate, is exit 3 naming it', async () => {
    const smtp = await sink({});
    const ws = await workspace(smtp.url);
    const missing = await ws.run(['send-due'], { NEWSLETTER_SMTP_CA: 'no-such-ca.pem' });
    expect(missing.code, describeRun(['send-due'], missing)).toBe(3);
    expect(missing.stderr).toMatch(/NEWSLETTER_SMTP_CA \S*no-such-ca\.pem does not exist/);
    writeFileSync(path.join(ws.dir, 'not-a-ca.pem'), 'hello\n');
    const garbage = await ws.run(['send-due'], { NEWSLETTER_SMTP_CA: 'not-a-ca.pem' });
    expect(garbage.code, describeRun(['send-due'], garbage)).toBe(3);
    expect(garbage.stderr).toContain('is not a PEM certificate');
  });
});

describe('a host that does not resolve', () => {
  it('is exit 3 (a typo, not "transient"), naming the host; nothing lost', async () => {
    // RFC 2606 and 6761: .invalid never resolves, and the transport answers it itself
    // (src/transport/special-use-lookup.ts): no DNS query leaves the host.
    const host = 'mail.newsletter-test.invalid';
    const ws = await workspace(`smtp://${host}:2525`);

    const run = await ws.run(['send-due']);

    expect(run.code, describeRun(['send-due'], run)).toBe(3);
    expect(run.stderr).toContain(`${host} does not resolve`);
    expectNothingLost(ws);
  });
});

interface DoctorReport {
  checks: Array<{ name: string; level: string; message: string; fix?: string }>;
}

async function transportCheck(ws: Workspace, env: Record<string, string> = {}) {
  const crontab = path.join(ws.dir, 'crontab');
  writeFileSync(crontab, '');
  const run = await ws.run(['doctor', '--json', '--crontab', crontab], env);
  const report = JSON.parse(run.stdout) as DoctorReport;
  const check = report.checks.find((c) => c.name === 'transport');
  if (!check) throw new Error(describeRun(['doctor'], run));
  return check;
}

describe('doctor', () => {
  it('reports the TLS version, the certificate subject and its expiry', async () => {
    const smtp = await sink({ auth: { user: USER, password: PASSWORD }, tls: 'starttls' });
    const ws = await workspace(withPassword(smtp), { NEWSLETTER_SMTP_CA: smtp.caPath });

    const check = await transportCheck(ws);

    expect(check.level).toBe('ok');
    expect(check.message).toMatch(/connected over TLSv1\.[23] \(STARTTLS\)/);
    expect(check.message).toContain('CN=127.0.0.1');
    expect(check.message).toMatch(/valid until 21\d\d-/);
    expect(check.message).toContain(`authenticated as ${USER}`);
    expect(check.message).not.toContain(PASSWORD);
    expect(smtp.total).toBe(0);
  });

  it('warns within 14 days of the certificate expiry', async () => {
    const certificate = shortLivedCertificate(7);
    cleanups.push(() => certificate.cleanup());
    const smtp = await sink({ auth: { user: USER, password: PASSWORD }, tls: 'starttls', certificate });
    const ws = await workspace(withPassword(smtp), { NEWSLETTER_SMTP_CA: smtp.caPath });

    const check = await transportCheck(ws);

    expect(check.level).toBe('warning');
    expect(check.message).toMatch(/expires in [67] days/);
    expect(check.fix).toContain('Renew');
  });

  it('says when the connection was not encrypted, never "STARTTLS when offered"', async () => {
    const smtp = await sink({ tls: 'none' });
    const ws = await workspace(smtp.url);

    const check = await transportCheck(ws);

    expect(check.level).toBe('warning');
    expect(check.message).toContain('WITHOUT encryption');
    expect(check.message).not.toContain('STARTTLS when offered');
    const relay = await transportCheck(ws, { NEWSLETTER_SMTP_TLS: 'none' });
    expect(relay.level).toBe('ok');
    expect(relay.message).toContain('WITHOUT encryption (NEWSLETTER_SMTP_TLS=none)');
  });
});
