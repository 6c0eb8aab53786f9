/**
 * Per-recipient messages from a verified body. Everything that is the same for every recipient
 * (the split templates, List-Id, the From domain) is worked out once in preparePersonaliser; the
 * returned function only concatenates strings and signs one token.
 *
 * Deliberately light: no mjml, no html-to-text, so sending never loads the compiler.
 */
import { domainOf } from '../domain/message-id.js';
import type { PreparePersonaliser } from '../engine/ports.js';
import { escapeHtml, renderSplit, splitTemplate, stripHeaderBreaks } from './fields.js';
import { createUnsubscribeToken } from './unsubscribe-token.js';

const raw = (value: string): string => value;

export const preparePersonaliser: PreparePersonaliser = (body, context) => {
  const subject = splitTemplate(body.subject);
  const html = splitTemplate(body.html);
  const text = splitTemplate(body.text);
  const fromDomain = domainOf(body.from);
  const baseUrl = context.baseUrl.replace(/\/+$/, '');
  const listId = `<${listIdLabel(context.listNames[0])}.${fromDomain}>`;

  return (recipient) => {
    const token = createUnsubscribeToken(context.secret, {
      // A recipient without a subscriber row (a test send) still gets a well-formed link.
      subscriberId: recipient.subscriberId ?? 0,
      newsletterId: context.newsletterId,
    });
    const unsubscribeUrl = `${baseUrl}/u/${token}`;
    // The built-in fields come last: a CSV column called `unsubscribe_url` or `email` must not
    // replace the real link or address. A field this recipient's CSV lacked renders empty.
    const values: Record<string, string> = {
      ...recipient.fields,
      email: recipient.email,
      name: recipient.name,
      unsubscribe_url: unsubscribeUrl,
    };
    return {
      messageId: recipient.messageId,
      from: body.from,
      to: recipient.email,
      ...(context.replyTo ? { replyTo: context.replyTo } : {}),
      subject: renderSplit(subject, values, stripHeaderBreaks),
      html: renderSplit(html, values, escapeHtml),
      text: renderSplit(text, values, raw),
      headers: {
        // RFC 8058 one-click: the HTTPS link first (mail providers POST to it), mailto as fallback.
        'List-Unsubscribe': `<${unsubscribeUrl}>, <mailto:unsubscribe@${fromDomain}?subject=unsubscribe-${token}>`,
        'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
        'List-Id': listId,
      },
    };
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
