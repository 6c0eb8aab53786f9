/**
 * Name resolution for the SMTP connection, with RFC 6761's rule for the special-use name
 * `invalid`: "name resolution APIs and libraries SHOULD recognize 'invalid' names as special and
 * SHOULD always return immediately with a negative response". getaddrinfo does not, and asks the
 * configured nameserver; we answer ENOTFOUND at once, as a resolver that knew the name would. The
 * tests rely on it to prove the "host does not resolve" path without any traffic leaving loopback,
 * and a real NEWSLETTER_TRANSPORT naming `….invalid` fails as fast as it should.
 */
import dns from 'node:dns';
import type { LookupFunction } from 'node:net';

function isInvalidName(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  return name === 'invalid' || name.endsWith('.invalid');
}

export const specialUseLookup: LookupFunction = (hostname, options, callback) => {
  if (!isInvalidName(hostname)) {
    dns.lookup(hostname, options, callback);
    return;
  }
  const error: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
  error.code = 'ENOTFOUND';
  error.syscall = 'getaddrinfo';
  process.nextTick(() => callback(error, '', 4));
};
