/**
 * One outgoing message, as render builds it and a transport sends it. Render and transport meet
 * here, in the domain, so that neither needs the engine (or the other) to agree on a message.
 */

/**
 * A part of the body prepared once per newsletter: literal text around slots. Shared, unchanged,
 * by every message of the newsletter, so a transport may cache what it derives from one (the
 * encoded literals) by identity.
 */
export interface BodyTemplate {
  /** `literals.length === slots.length + 1`; the text is literals[0] + value of slots[0] + literals[1] + … */
  readonly literals: readonly string[];
  /** For each gap between two literals, the index of its value in `FilledTemplate.values`. */
  readonly slots: readonly number[];
}

/** A body part for one recipient: the newsletter's template and this recipient's values. */
export interface FilledTemplate {
  readonly template: BodyTemplate;
  /** Already escaped for the part (HTML-escaped in the HTML); a value may fill several slots. */
  readonly values: readonly string[];
}

/** One fully personalised message, ready for a transport. */
export interface OutgoingMessage {
  /** With angle brackets: `<n12.3f9a…@example.org>`. Deterministic per (newsletter, recipient). */
  messageId: string;
  /** A full From header value, e.g. `"Example News" <news@example.org>`. */
  from: string;
  /** The envelope and header recipient: a single mailbox. */
  to: string;
  /**
   * The envelope sender (MAIL FROM, sendmail's -f), a bare address: the VERP return path that
   * names this delivery (src/domain/return-path.ts). Absent: the From address, as before.
   */
  returnPath?: string | undefined;
  /** NEWSLETTER_REPLY_TO, when set. */
  replyTo?: string | undefined;
  subject: string;
  html: string;
  text: string;
  /** Extra headers: List-Unsubscribe, List-Unsubscribe-Post, List-Id, … */
  headers: Record<string, string>;
  /**
   * `text` and `html` as template + values (the personaliser sets it; hand-made messages need
   * not): a transport builds the bytes from encodings prepared once per newsletter instead of
   * encoding the whole body for every recipient. Both forms always hold the same text.
   */
  parts?: { text: FilledTemplate; html: FilledTemplate } | undefined;
}
