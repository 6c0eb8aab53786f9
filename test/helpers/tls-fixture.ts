/**
 * Certificates for SMTP tests on 127.0.0.1. test/fixtures/tls/ holds a test CA and a server
 * certificate it signed (CN 127.0.0.1, SAN IP:127.0.0.1 and DNS:localhost, valid for 100 years);
 * the CA's key was thrown away. `shortLivedCertificate()` makes a self-signed one that expires in
 * a few days with `openssl req -x509` (Node has no X.509 generator), for doctor's expiry warning.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const folder = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/tls');

/** The PEM file of the CA that signed `serverCertificate`: what NEWSLETTER_SMTP_CA points at. */
export const TEST_CA_PATH = path.join(folder, 'ca.pem');
export const testCa = (): string => readFileSync(TEST_CA_PATH, 'utf8');

export interface ServerCertificate {
  key: string;
  cert: string;
  /** A file that trusts it: the CA, or the certificate itself when self-signed. */
  caPath: string;
}

export function serverCertificate(): ServerCertificate {
  return {
    key: readFileSync(path.join(folder, 'server-key.pem'), 'utf8'),
    cert: readFileSync(path.join(folder, 'server.pem'), 'utf8'),
    caPath: TEST_CA_PATH,
  };
}

/** A self-signed certificate for 127.0.0.1 valid for `days` days; `cleanup()` removes its folder. */
export function shortLivedCertificate(days: number): ServerCertificate & { cleanup(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'newsletter-tls-'));
  const keyPath = path.join(dir, 'key.pem');
  const certPath = path.join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      String(days),
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout',
      keyPath,
      '-out',
      certPath,
    ],
    { stdio: 'ignore' },
  );
  return {
    key: readFileSync(keyPath, 'utf8'),
    cert: readFileSync(certPath, 'utf8'),
    caPath: certPath,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
