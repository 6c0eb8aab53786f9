/**
 * A small message for the SMTP transport's tests: "Hello <to>" as subject, HTML and text, from
 * example.org, with a Message-ID of newsletter `newsletterId`. `overrides` changes any field.
 */
import { messageIdFor } from '../../src/domain/message-id.js';
import type { OutgoingMessage } from '../../src/engine/ports.js';

export function helloMessage(
  to: string,
  overrides: Partial<OutgoingMessage> = {},
  newsletterId = 7,
): OutgoingMessage {
  return {
    messageId: messageIdFor(null, newsletterId, to, 'example.org'),
    from: 'News <news@example.org>',
    to,
    subject: `Hello ${to}`,
    html: `<p>Hello ${to}</p>`,
    text: `Hello ${to}`,
    headers: {},
    ...overrides,
  };
}
