/**
 * Personalisation micro-benchmark, in a process of its own: compiles the ~40 KB benchmark
 * template once (the real build: MJML, text part, checks), prepares the personaliser once, then
 * times the per-recipient work over many synthetic recipients.
 *
 * `node bench/personalise.js TEMPLATES_DIR COUNT` prints one JSON line, µs per recipient:
 * - `substituteMicros`: the template work: every field of subject, HTML and text looked up,
 *   HTML-escaped or URL-checked, once per recipient (render/fields.ts `fillValues`); the goal;
 * - `substituteStringMicros`: the same, and the HTML and text filled into strings as well;
 * - `referenceMicros`: the algorithm before this change (a pre-split template filled slot by slot,
 *   each slot looked up and escaped), copied here, measured in the same run as a yardstick;
 * - `personaliseMicros`: the engine's `personalise(recipient)`: the above, plus the signed
 *   unsubscribe token (`tokenMicros` on its own), the headers and the message object;
 * - `bytesMicros`: personalise and the complete message bytes the SMTP client writes.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './lib.js';

const [templatesDir, countArg] = process.argv.slice(2);
const count = Number(countArg ?? 200_000);
const dist = (file) => import(pathToFileURL(path.join(ROOT, 'dist', file)).href);

const { buildBody } = await dist('render/build.js');
const { preparePersonaliser } = await dist('render/personalise.js');
const fields = await dist('render/fields.js');
const { createUnsubscribeToken } = await dist('render/unsubscribe-token.js');
const { messageIdFor } = await dist('domain/message-id.js');

const t0 = performance.now();
const body = await buildBody(
  {
    id: 1,
    subject: 'Hello {{name}}: the digest for {{city}}',
    templatePath: path.join(templatesDir, 'digest-40k.mjml'),
    from: 'Example Weekly <news@example.org>',
    lists: ['readers'],
  },
  { templatesRoot: templatesDir, knownFields: ['city'], defaultFrom: null },
);
const buildMs = performance.now() - t0;
const secret = 'bench-secret-0123456789abcdef';
const personalise = preparePersonaliser(body, {
  newsletterId: 1,
  baseUrl: 'https://example.org/newsletter',
  secret,
  listNames: ['readers'],
  // The default since issue 18: a VERP envelope sender from the From address, one HMAC a message.
  returnPath: { address: null, delimiter: '+' },
});

const cities = ['Leith', 'Zürich', 'Lyon', 'Porto', 'Oslo'];
const recipients = Array.from({ length: 1000 }, (_, i) => {
  const address = `reader${String(i).padStart(7, '0')}@example.net`;
  return {
    deliveryId: i + 1,
    newsletterId: 1,
    subscriberId: i + 1,
    email: address,
    address,
    name: i % 7 === 0 ? `Zoë & Co ${i}` : `Reader ${i}`,
    fields: { city: cities[i % cities.length] },
    messageId: messageIdFor(secret, 1, address, 'example.org'),
    attempts: 0,
  };
});
// As personalise.ts looks the fields up (the link is a fixed string here: the token has its own line).
const LINK = 'https://example.org/newsletter/u/v1.1.1.0123456789abcdefghijklmnopqrstuvwxyzABCDEFG';
const valuesOf = (r) => (name) =>
  name === 'unsubscribe_url'
    ? LINK
    : name === 'email'
      ? r.email
      : name === 'name'
        ? r.name
        : fields.fieldValue(r.fields, name);

const raw = (value) => value;
const compiled = {
  subject: fields.compileTemplate(fields.splitTemplate(body.subject)),
  html: fields.compileTemplate(fields.splitTemplate(body.html)),
  text: fields.compileTemplate(fields.splitTemplate(body.text)),
};
const split = {
  subject: fields.splitTemplate(body.subject),
  html: fields.splitTemplate(body.html),
  text: fields.splitTemplate(body.text),
};

/** The per-recipient fill before this change (src/render/fields.ts renderSplit, as it was). */
function referenceRender(template, values, encode) {
  const { literals, fields: slots } = template;
  let out = literals[0] ?? '';
  for (let i = 0; i < slots.length; i++) {
    const field = slots[i];
    let value = Object.hasOwn(values, field.name) ? (values[field.name] ?? '') : '';
    if (field.urlStart) {
      while (i + 1 < slots.length && literals[i + 1] === '') {
        i++;
        value += Object.hasOwn(values, slots[i].name) ? (values[slots[i].name] ?? '') : '';
      }
      value = fields.neutraliseUrl(value);
    }
    out += encode(value) + (literals[i + 1] ?? '');
  }
  return out;
}

const { messageChunks } = await dist('transport/mime.js');

function time(fn, n) {
  for (let i = 0; i < Math.min(n, 5000); i++) fn(recipients[i % recipients.length]);
  const start = performance.now();
  let sink = 0;
  for (let i = 0; i < n; i++) sink += fn(recipients[i % recipients.length]);
  return { micros: ((performance.now() - start) * 1000) / n, sink };
}

// Each returns a length, so that the optimiser cannot drop the work.
const runs = {
  substituteMicros: (r) => {
    const values = valuesOf(r);
    return (
      fields.fillValuesWith(compiled.subject, values, fields.stripHeaderBreaks).length +
      fields.fillValuesWith(compiled.html, values, fields.escapeHtml).length +
      fields.fillValuesWith(compiled.text, values, raw).length
    );
  },
  substituteStringMicros: (r) => {
    const values = valuesOf(r);
    return (
      fields.fill(compiled.subject, fields.fillValuesWith(compiled.subject, values, fields.stripHeaderBreaks))
        .length +
      fields.fill(compiled.html, fields.fillValuesWith(compiled.html, values, fields.escapeHtml)).length +
      fields.fill(compiled.text, fields.fillValuesWith(compiled.text, values, raw)).length
    );
  },
  referenceMicros: (r) => {
    // The object the code before this change built per recipient, and its fill.
    const values = { ...r.fields, email: r.email, name: r.name, unsubscribe_url: LINK };
    return (
      referenceRender(split.subject, values, fields.stripHeaderBreaks).length +
      referenceRender(split.html, values, fields.escapeHtml).length +
      referenceRender(split.text, values, raw).length
    );
  },
  tokenMicros: (r) =>
    createUnsubscribeToken(secret, { subscriberId: r.subscriberId, newsletterId: 1 }).length,
  personaliseMicros: (r) => personalise(r).subject.length,
};
const result = {
  recipients: count,
  htmlBytes: Buffer.byteLength(body.html),
  textBytes: Buffer.byteLength(body.text),
  buildMs,
};
for (const [name, fn] of Object.entries(runs)) result[name] = time(fn, count).micros;
result.bytesMicros = time(
  (r) => Buffer.concat(messageChunks(personalise(r))).length,
  Math.min(count, 50_000),
).micros;
result.messageBytes = Buffer.concat(messageChunks(personalise(recipients[0]))).length;
result.bytesHow = 'prepared MIME (transport/mime.ts), concatenated as the SMTP client writes it';
process.stdout.write(`${JSON.stringify(result)}\n`);
