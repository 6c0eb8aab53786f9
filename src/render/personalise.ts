/**
 * Per-recipient messages from a verified body. Everything that is the same for every recipient
 * (the compiled templates, List-Id, the From domain) is worked out once in preparePersonaliser;
 * the returned function looks each field up and escapes it once, and signs one token.
 *
 * The HTML and text parts also go out as template + values (`parts`): the transport encodes the
 * newsletter's literal text once and only the values per recipient (src/transport/mime.ts).
 *
 * Deliberately light: no mjml, no html-to-text, so sending never loads the compiler.
 */
import { domainOf } from '../domain/message-id.js';
import type { OutgoingMessage } from '../domain/message.js';
import type { PreparePersonaliser } from '../engine/ports.js';
import {
  compileTemplate,
  escapeHtml,
  fieldValue,
  fill,
  fillValuesWith,
  splitTemplate,
  stripHeaderBreaks,
} from './fields.js';
import { createTestUnsubscribeToken, createUnsubscribeToken } from './unsubscribe-token.js';
import { prepareReturnPath } from './return-path.js';

const raw = (value: string): string => value;

export const preparePersonaliser: PreparePersonaliser = (body, context) => {
  const subject = compileTemplate(splitTemplate(body.subject));
  const html = compileTemplate(splitTemplate(body.html));
  const text = compileTemplate(splitTemplate(body.text));
  const fromDomain = domainOf(body.from);
  const baseUrl = context.baseUrl.replace(/\/+$/, '');
  const listId = `<${listIdLabel(context.listNames[0])}.${fromDomain}>`;
  // The VERP envelope sender and the mailto unsubscribe address, per delivery (render/return-path.ts).
  const returnPath = prepareReturnPath(body.from, context);
  const replyTo = context.replyTo ? { replyTo: context.replyTo } : {};

  // One inert token for every copy of a test send or preview: it names nobody, so it unsubscribes nobody.
  const testToken = context.testToken
    ? createTestUnsubscribeToken(context.secret, context.newsletterId)
    : null;

  return (recipient) => {
    const token =
      testToken ??
      createUnsubscribeToken(context.secret, {
        // A recipient without a subscriber row still gets a well-formed link.
        subscriberId: recipient.subscriberId ?? 0,
        newsletterId: context.newsletterId,
      });
    const unsubscribeUrl = `${baseUrl}/u/${token}`;
    // The built-in fields win: a CSV column called `unsubscribe_url` or `email` must not replace
    // the real link or address. A field this recipient's CSV lacked renders empty.
    const lookup = (name: string): string =>
      name === 'unsubscribe_url'
        ? unsubscribeUrl
        : name === 'email'
          ? recipient.email
          : name === 'name'
            ? recipient.name
            : fieldValue(recipient.fields, name);
    const parts = {
      html: { template: html, values: fillValuesWith(html, lookup, escapeHtml) },
      text: { template: text, values: fillValuesWith(text, lookup, raw) },
    };
    const envelope = returnPath(recipient);
    const message: OutgoingMessage = {
      messageId: recipient.messageId,
      from: body.from,
      to: recipient.email,
      returnPath: envelope.sender,
      ...replyTo,
      subject: fill(subject, fillValuesWith(subject, lookup, stripHeaderBreaks)),
      // Plain strings, built by concatenation: V8 keeps them as ropes, which cost next to nothing
      // unless something reads them out (preview, a test); the SMTP path never does. Getters would
      // be lazier, but an object literal with accessors per message kept the garbage collector
      // busy and the resident memory of a large dry run high (docs/benchmarks.md).
      html: fill(html, parts.html.values),
      text: fill(text, parts.text.values),
      headers: {
        // RFC 8058 one-click: the HTTPS link first (mail providers POST to it), mailto as fallback
        // when a read mailbox takes it (NEWSLETTER_RETURN_PATH set; never a mailto nothing reads).
        'List-Unsubscribe':
          envelope.mailto === null
            ? `<${unsubscribeUrl}>`
            : `<${unsubscribeUrl}>, <mailto:${envelope.mailto}>`,
        'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
        'List-Id': listId,
      },
      parts,
    };
    return message;
  };
};

/**
 * RFC 2919 wants a dot-atom: lower-case letters, digits and hyphens, so `Monthly News!` becomes
 * `monthly-news`. A newsletter with no list (or an unusable name) is `newsletter`.
 */
function listIdLabel(listName: string | undefined): string {
  const label = (listName ?? '')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .slice(0, 60)
    .replace(/^-|-$/g, '');
  return label === '' ? 'newsletter' : label;
}
