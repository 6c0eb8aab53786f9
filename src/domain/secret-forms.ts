/**
 * Every spelling a secret can take on its way to a message, a log or a ledger column, so that
 * redaction masks each (DESIGN, "Configuration": secrets are never printed). A password shows up
 * raw, percent-encoded in a URL (`Pg%40Pass`, with either case of hex digits, or with only some
 * characters encoded, as the operator typed it), JSON-escaped in `--json` output, and in base64
 * inside SMTP's AUTH dialogue: alone (AUTH LOGIN) or in the middle of `\0user\0password`
 * (AUTH PLAIN), where its base64 depends on how many bytes come before it.
 */

/** Forms shorter than this are not masked: they would mask ordinary text. */
const SHORTEST = 3;

/**
 * The forms of `secret`, longest first (so that masking a long form is not spoiled by a short form
 * masked inside it first). `alsoAsWritten` are extra spellings known from the source, e.g. the
 * still-encoded password of a URL.
 */
export function secretForms(secret: string, alsoAsWritten: readonly string[] = []): string[] {
  if (!secret) return [];
  const forms = new Set<string>([secret, ...alsoAsWritten]);
  const encoded = encodeURIComponent(secret);
  forms.add(encoded);
  forms.add(encoded.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase()));
  // URL serialisation (WHATWG) leaves more characters as they are than encodeURIComponent.
  forms.add(secret.replace(/[\s"#<>?`{}/:;=@[\\\]^|%]/g, (c) => encodeURIComponent(c)));
  forms.add(JSON.stringify(secret).slice(1, -1));
  for (const form of base64Forms(Buffer.from(secret, 'utf8'))) forms.add(form);
  return [...forms].filter((form) => form.length >= SHORTEST).sort((a, b) => b.length - a.length);
}

/** Masks each given secret, in each of its forms, with `***`. */
export function maskSecrets(text: string, forms: readonly string[]): string {
  let out = text;
  for (const form of forms) out = out.split(form).join('***');
  return out;
}

/**
 * The base64 characters that depend only on the secret's bytes, for each of the three ways the
 * secret can line up with base64's 3-byte groups: whatever comes before or after it, its base64
 * contains one of these. Each character encodes 6 bits; character i covers bits 6i..6i+5.
 */
function base64Forms(bytes: Buffer): string[] {
  const forms: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
    const first = Math.ceil((offset * 8) / 6);
    const end = Math.floor(((offset + bytes.length) * 8) / 6);
    const form = encoded.slice(first, end);
    // Short base64 runs are too likely to occur by chance in ordinary text.
    if (form.length >= 4) forms.push(form);
  }
  return forms;
}
