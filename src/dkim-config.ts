/**
 * NEWSLETTER_DKIM_KEY, _SELECTOR and _DOMAIN: read and checked when the configuration is loaded
 * (src/config.ts), beside smtp-tls-config.ts and imap-config.ts. node:crypto is required only when
 * a key is set, so that the every-minute cron run without DKIM does not load it.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { ReadSetting } from './config.js';

const require = createRequire(import.meta.url);
const crypto = (): typeof import('node:crypto') => require('node:crypto');

/** NEWSLETTER_DKIM_*: the key is read and checked when the configuration is loaded. */
export interface DkimConfig {
  /** Where the key was read from: shown in messages, never the key itself. */
  keyPath: string;
  /** The PEM text of the RSA private key. A secret. */
  privateKey: string;
  selector: string;
  /** The d= domain; null signs with the domain of each message's From address. */
  domain: string | null;
}

/**
 * NEWSLETTER_DKIM_KEY (a PEM file), _SELECTOR and _DOMAIN. The key is read and parsed here, so a
 * wrong path or a file that is not an RSA private key stops every command before any work, and
 * no message ever goes out unsigned because of it. Messages name the path, never the contents.
 */
export function dkimConfig(get: ReadSetting, cwd: string, problems: string[]): DkimConfig | null {
  const keyValue = get('NEWSLETTER_DKIM_KEY');
  const selector = get('NEWSLETTER_DKIM_SELECTOR');
  const domain = get('NEWSLETTER_DKIM_DOMAIN');
  if (keyValue === null) {
    if (selector !== null || domain !== null) {
      problems.push(
        'NEWSLETTER_DKIM_SELECTOR or NEWSLETTER_DKIM_DOMAIN is set without NEWSLETTER_DKIM_KEY (the path of the private key).',
      );
    }
    return null;
  }
  const keyPath = path.resolve(cwd, keyValue);
  const before = problems.length;
  if (selector === null) {
    problems.push(
      'NEWSLETTER_DKIM_SELECTOR is not set: it names the DNS record <selector>._domainkey.<domain>.',
    );
  } else if (!DNS_NAME.test(selector)) {
    problems.push(`NEWSLETTER_DKIM_SELECTOR "${selector}" is not a DNS label; use e.g. news2026.`);
  }
  if (domain !== null && (!DNS_NAME.test(domain) || !domain.includes('.'))) {
    problems.push(`NEWSLETTER_DKIM_DOMAIN "${domain}" is not a domain name; use e.g. example.org.`);
  }
  let privateKey: string | null = null;
  try {
    privateKey = readFileSync(keyPath, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    problems.push(
      code === 'ENOENT'
        ? `NEWSLETTER_DKIM_KEY ${keyPath} does not exist; generate a key with \`openssl genrsa -out dkim.pem 2048\`.`
        : `NEWSLETTER_DKIM_KEY ${keyPath} cannot be read (${code}); check its permissions.`,
    );
  }
  if (privateKey !== null) {
    const problem = rsaKeyProblem(privateKey);
    if (problem) problems.push(`NEWSLETTER_DKIM_KEY ${keyPath} ${problem}`);
  }
  if (problems.length > before || privateKey === null || selector === null) return null;
  return { keyPath, privateKey, selector, domain: domain?.toLowerCase() ?? null };
}

/** Dot-separated labels of letters, digits and inner hyphens (a selector may have dots too). */
const DNS_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Why a PEM text cannot sign DKIM, or null. Never quotes the text or the parser's words about it. */
function rsaKeyProblem(pem: string): string | null {
  let key: ReturnType<typeof import('node:crypto').createPrivateKey>;
  try {
    key = crypto().createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    return 'is not a PEM private key (expected "-----BEGIN PRIVATE KEY-----" or "-----BEGIN RSA PRIVATE KEY-----").';
  }
  if (key.asymmetricKeyType !== 'rsa') {
    return `is a ${key.asymmetricKeyType ?? 'non-RSA'} key; DKIM signing here needs an RSA key (openssl genrsa -out dkim.pem 2048).`;
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < 1024) return `is a ${bits}-bit RSA key; receivers refuse keys under 1024 bits (use 2048).`;
  return null;
}
