/**
 * Personalisation micro-benchmark, in a process of its own: compiles the ~40 KB benchmark
 * template once (the real build: MJML, text part, checks), prepares the personaliser once, then
 * times the per-recipient work over many synthetic recipients.
 *
 * `node bench/personalise.js TEMPLATES_DIR COUNT` prints one JSON line:
 * - `personaliseMicros`: µs per recipient for `personalise(recipient)` (the engine's call);
 * - `bytesMicros`: µs per recipient for personalise + the complete message bytes the transport
 *   hands over (MIME, headers, encodings), when the built code can produce them;
 * - the sizes, and the build time.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './lib.js';

const [templatesDir, countArg] = process.argv.slice(2);
const count = Number(countArg ?? 200_000);
const dist = (file) => import(pathToFileURL(path.join(ROOT, 'dist', file)).href);

const { buildBody } = await dist('render/build.js');
const { preparePersonaliser } = await dist('render/personalise.js');
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
const personalise = preparePersonaliser(body, {
  newsletterId: 1,
  baseUrl: 'https://example.org/newsletter',
  secret: 'bench-secret-0123456789abcdef',
  listNames: ['readers'],
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
    messageId: messageIdFor(1, address, 'example.org'),
    attempts: 0,
  };
});

// What the transport does with a personalised message: the bytes it hands over.
const bytes = await messageBytes();

function time(fn, n) {
  for (let i = 0; i < Math.min(n, 5000); i++) fn(recipients[i % recipients.length]);
  const start = performance.now();
  let sink = 0;
  for (let i = 0; i < n; i++) sink += fn(recipients[i % recipients.length]);
  return { micros: ((performance.now() - start) * 1000) / n, sink };
}

async function timeAsync(fn, n) {
  for (let i = 0; i < Math.min(n, 500); i++) await fn(recipients[i % recipients.length]);
  const start = performance.now();
  let sink = 0;
  for (let i = 0; i < n; i++) sink += await fn(recipients[i % recipients.length]);
  return { micros: ((performance.now() - start) * 1000) / n, sink };
}

// A result the optimiser cannot drop: the length of what was produced.
const personaliseRun = time((r) => {
  const m = personalise(r);
  return m.subject.length + m.html.length + m.text.length;
}, count);
const bytesRun = bytes.sync
  ? time((r) => bytes.build(personalise(r)).length, Math.min(count, 50_000))
  : await timeAsync(async (r) => (await bytes.build(personalise(r))).length, 2000);
const sample = await bytes.build(personalise(recipients[0]));

process.stdout.write(
  `${JSON.stringify({
    recipients: count,
    htmlBytes: Buffer.byteLength(body.html),
    textBytes: Buffer.byteLength(body.text),
    messageBytes: sample.length,
    buildMs,
    personaliseMicros: personaliseRun.micros,
    bytesMicros: bytesRun.micros,
    bytesHow: bytes.how,
  })}\n`,
);

/** The transport's fast byte builder when the build has one, else MailComposer (composeMessage). */
async function messageBytes() {
  try {
    const mime = await dist('transport/mime.js');
    if (typeof mime.messageBytes === 'function') {
      return { sync: true, build: (m) => mime.messageBytes(m), how: 'prepared MIME (transport/mime.ts)' };
    }
  } catch {
    // not in this build
  }
  const { composeMessage } = await dist('transport/compose.js');
  return { sync: false, build: (m) => composeMessage(m), how: 'nodemailer MailComposer (transport/compose.ts)' };
}
