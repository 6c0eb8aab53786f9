/**
 * NEWSLETTER_TRANSPORT, parsed. The password stays inside this object: describeTransport() is the
 * only way it is ever shown, and it never shows the password.
 */
export type TransportSpec =
  | {
      kind: 'smtp';
      /** smtps:// (TLS from the first byte) rather than smtp:// (STARTTLS when offered). */
      secure: boolean;
      host: string;
      port: number;
      user: string | null;
      password: string | null;
    }
  | { kind: 'sendmail'; path: string }
  | { kind: 'file'; dir: string };

export function parseTransport(value: string): TransportSpec | { error: string } {
  const trimmed = value.trim();
  if (trimmed === 'sendmail') return { kind: 'sendmail', path: '/usr/sbin/sendmail' };
  if (trimmed.startsWith('sendmail:')) {
    const path = trimmed.slice('sendmail:'.length);
    if (!path) return { error: 'sendmail: needs a path after the colon, or use plain `sendmail`' };
    return { kind: 'sendmail', path };
  }
  if (trimmed.startsWith('file:')) {
    const dir = trimmed.slice('file:'.length).replace(/^\/\/(?=\/)/, '');
    if (!dir) return { error: 'file: needs a folder, e.g. file:./outbox' };
    return { kind: 'file', dir };
  }
  if (trimmed.startsWith('smtp://') || trimmed.startsWith('smtps://')) {
    let url: URL;
    try {
      url = new URL(trimmed);
    } catch {
      return { error: 'is not a valid URL; expected smtp://user:pass@host:port' };
    }
    if (!url.hostname) return { error: 'has no host; expected smtp://user:pass@host:port' };
    const secure = url.protocol === 'smtps:';
    const port = url.port ? Number(url.port) : secure ? 465 : 587;
    // A `%` not followed by two hex digits (a typo, or a password with a literal `%`) would make
    // decodeURIComponent throw: that is a configuration error to report, not a crash. The
    // message never repeats the value: it holds the password.
    const user = decodedOrNull(url.username);
    const password = decodedOrNull(url.password);
    if (user === undefined || password === undefined) {
      return {
        error: `has a user name or password that is not valid percent-encoding: write a literal % as %25 (and @ as %40, : as %3A, / as %2F)`,
      };
    }
    return {
      kind: 'smtp',
      secure,
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port,
      user,
      password,
    };
  }
  return { error: 'must be smtp://…, smtps://…, sendmail or file:./outbox' };
}

/** A URL's percent-encoded user or password: null when empty, undefined when malformed. */
function decodedOrNull(value: string): string | null | undefined {
  if (!value) return null;
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}

/** A printable description, never including the password. */
export function describeTransport(spec: TransportSpec): string {
  switch (spec.kind) {
    case 'smtp': {
      // An IPv6 literal keeps its brackets, as in the URL it came from.
      const host = spec.host.includes(':') ? `[${spec.host}]` : spec.host;
      return `${spec.secure ? 'smtps' : 'smtp'}://${spec.user ? `${spec.user}:***@` : ''}${host}:${spec.port}`;
    }
    case 'sendmail':
      return `sendmail (${spec.path})`;
    case 'file':
      return `file outbox ${spec.dir}`;
  }
}
