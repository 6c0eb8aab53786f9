import { randomUUID } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { problemsForRealSend } from '../../config.js';
import { normaliseAddress } from '../../domain/address.js';
import { ConfigError, InputError } from '../../domain/errors.js';
import { ExitCode, type ExitCodeValue } from '../../domain/exit-codes.js';
import { domainOf, messageIdFor } from '../../domain/message-id.js';
import { shortDigest } from '../../domain/stored-template.js';
import type { ClaimedDelivery, Newsletter, VerifiedBody } from '../../domain/types.js';
import { formatInZone } from '../../domain/zone.js';
import type { OutgoingMessage } from '../../engine/ports.js';
import type { Store } from '../../store/store.js';
import type { Context } from '../context.js';
import { templatesRootOf, withStore } from '../context.js';
import { printError, printJson, println } from '../output.js';
import { parseId, requireNewsletter } from './newsletters.js';

/** Builds the body as send-due would (or uses the stored one) and personalises it for one recipient. */
async function personaliseFor(
  context: Context,
  store: Store,
  newsletter: Newsletter,
  recipientEmail: string | undefined,
) {
  const body = await bodyOf(context, store, newsletter);
  const recipient = await chooseRecipient(store, newsletter, recipientEmail);
  const { preparePersonaliser } = await import('../../render/personalise.js');
  const personalise = preparePersonaliser(body, {
    newsletterId: newsletter.id,
    baseUrl: context.config.baseUrl ?? 'https://newsletter.invalid',
    secret: context.config.secret ?? 'preview-placeholder-secret-not-for-sending',
    listNames: newsletter.lists,
    replyTo: context.config.replyTo,
    // Preview files and test sends reach people who are not the subscriber shown: their links
    // must not unsubscribe that subscriber (issue 13).
    testToken: true,
  });
  return { message: personalise(recipient), body };
}

async function bodyOf(context: Context, store: Store, newsletter: Newsletter): Promise<VerifiedBody> {
  if (newsletter.body) return newsletter.body;
  const { buildBody } = await import('../../render/build.js');
  return buildBody(newsletter, {
    templatesRoot: templatesRootOf(newsletter.templatePath),
    knownFields: ['email', 'name', 'unsubscribe_url', ...(await store.knownFieldNames())],
    defaultFrom: context.config.from,
  });
}

/**
 * Which template this preview compiled (issue 14): the digest of what was built, which is the
 * stored copy's (src/domain/stored-template.ts) and what a send will use, with when it was stored.
 */
function templateVersion(newsletter: Newsletter, body: VerifiedBody) {
  return {
    sha256: body.templateHash,
    storedAt: newsletter.template === null ? null : new Date(newsletter.template.storedAt).toISOString(),
    /** False: a newsletter created before templates were stored, built from its file on disk. */
    stored: newsletter.template !== null,
  };
}

function versionWords(version: ReturnType<typeof templateVersion>): string {
  const sha = `template sha256 ${shortDigest(version.sha256)}`;
  if (version.storedAt === null) return `${sha}, read from the file: not stored`;
  return `${sha}, stored ${formatInZone(Date.parse(version.storedAt), null)}`;
}

async function chooseRecipient(
  store: Store,
  newsletter: Newsletter,
  email: string | undefined,
): Promise<ClaimedDelivery> {
  let subscriber = null;
  if (email !== undefined) {
    const parsed = normaliseAddress(email);
    if (!parsed.ok) throw new InputError(`--recipient "${email}" is not a usable address: ${parsed.problem}`);
    subscriber = await store.getSubscriber(parsed.address);
    if (!subscriber) throw new InputError(`There is no subscriber ${parsed.address}.`);
  } else {
    // The first of its audience (its lists, within its segment), as the send's first claim takes.
    const [first] = await store.pendingRecipients(null, newsletter.lists, 0, 1, newsletter.segment);
    if (first) subscriber = { ...first, id: first.subscriberId ?? 0 };
  }
  const fallback = {
    id: 0,
    email: 'subscriber@example.org',
    address: 'subscriber@example.org',
    name: 'Subscriber',
    fields: {},
  };
  const s = subscriber ?? fallback;
  return {
    deliveryId: 0,
    newsletterId: newsletter.id,
    subscriberId: s.id,
    email: s.email,
    address: s.address,
    name: s.name,
    fields: s.fields,
    messageId: messageIdFor(
      null,
      newsletter.id,
      s.address,
      domainOf(newsletter.body?.from ?? newsletter.from ?? 'localhost'),
    ),
    attempts: 0,
  };
}

export async function previewCommand(
  context: Context,
  id: string,
  options: {
    toFile: string;
    recipient?: string;
    json?: boolean;
    png?: string;
    width?: string;
    chromium?: string;
  },
): Promise<void> {
  const newsletterId = parseId(id);
  // --png: check for Chromium before any work, so that a missing one is the only message.
  const screenshot = options.png === undefined ? null : await import('../../render/screenshot.js');
  const chromium =
    screenshot?.requireChromium(options.chromium === undefined ? undefined : [options.chromium]) ?? null;
  const { message, version } = await withStore(context, { readonly: true }, async (store) => {
    const newsletter = await requireNewsletter(store, newsletterId);
    const personalised = await personaliseFor(context, store, newsletter, options.recipient);
    return { ...personalised, version: templateVersion(newsletter, personalised.body) };
  });
  if (screenshot && chromium !== null && options.png !== undefined) {
    // Instead of the HTML file, not beside it: --to-file has a default, so it cannot tell.
    const png = await screenshot.screenshotHtml(message.html, {
      file: path.resolve(context.cwd, options.png),
      width: Number(options.width ?? 600),
      executablePath: chromium,
    });
    if (options.json) printJson({ ...png, to: message.to, subject: message.subject, template: version });
    else
      println(
        `Wrote ${png.file} (${png.width}×${png.height} px, for ${message.to}; ${versionWords(version)}).`,
      );
    return;
  }
  const file = path.resolve(context.cwd, options.toFile);
  // The preview holds a subscriber's data: owner-only whatever the umask (an existing file keeps
  // its mode on rewrite, hence the chmod).
  writeFileSync(file, message.html, { mode: 0o600 });
  chmodSync(file, 0o600);
  if (options.json)
    printJson({
      file,
      to: message.to,
      subject: message.subject,
      textLength: message.text.length,
      template: version,
    });
  else println(`Wrote ${file} (for ${message.to}, subject "${message.subject}"; ${versionWords(version)}).`);
}

/**
 * One copy to one address through the configured transport. The ledger is never touched.
 * Returns the exit code: 0 when the server took it, else what its reply means.
 */
export async function testSendCommand(
  context: Context,
  id: string,
  options: { to: string; recipient?: string },
): Promise<ExitCodeValue> {
  const to = normaliseAddress(options.to);
  if (!to.ok) throw new InputError(`--to "${options.to}" is not a usable address: ${to.problem}`);
  const transportSpec = context.config.transport;
  if (!transportSpec)
    throw new ConfigError('test-send needs a transport:', problemsForRealSend(context.config).slice(0, 1));
  const newsletterId = parseId(id);
  const { message } = await withStore(context, { readonly: true }, async (store) =>
    personaliseFor(context, store, await requireNewsletter(store, newsletterId), options.recipient),
  );
  const testMessage: OutgoingMessage = {
    ...message,
    to: to.email,
    subject: `[test] ${message.subject}`,
    messageId: `<test.${randomUUID()}@${domainOf(message.from)}>`,
  };
  const { createTransport } = await import('../../transport/index.js');
  const transport = await createTransport(transportSpec, {
    maxConnections: 1,
    timeoutMs: context.config.smtpTimeoutMs,
    dkim: context.config.dkim,
    tlsPolicy: context.config.smtpTls.policy,
    ca: context.config.smtpTls.ca?.pem ?? null,
  });
  try {
    const outcome = await transport.send(testMessage);
    if (outcome.kind === 'sent') {
      println(`Sent a test of newsletter ${newsletterId} to ${to.email}: ${outcome.reply}`);
      return ExitCode.ok;
    }
    printError(`The test message was not sent (${outcome.kind}): ${outcome.reply}`, []);
    return outcome.kind === 'retry'
      ? ExitCode.transient
      : outcome.kind === 'fatal'
        ? ExitCode.config
        : ExitCode.partlyFailed;
  } finally {
    await transport.close();
  }
}
