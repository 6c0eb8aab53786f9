/**
 * Per delivery, the VERP envelope sender (`local+bTOKEN@domain`) and, when the return path is a
 * mailbox we read (NEWSLETTER_RETURN_PATH set), the List-Unsubscribe mailto
 * (`local+uTOKEN@domain?subject=unsubscribe`). The base address is worked out once per
 * newsletter; per message it costs one HMAC, mailto or not (issue 17 measures CPU per message).
 *
 * No token where none can name a delivery: test sends and previews (their copies reach people who
 * are not the subscriber shown; a bounce of one is unmatched), and a From whose local part cannot
 * carry one (too long, or holding the delimiter; doctor says so) goes out as the plain From.
 */
import { normaliseAddress } from '../domain/address.js';
import { returnPathProblem, verpAddress } from '../domain/return-path.js';
import { createReturnPathToken, createReturnPathTokens } from '../domain/return-path-token.js';
import type { ClaimedDelivery } from '../domain/types.js';
import type { PersonaliseContext } from '../engine/ports.js';

export interface DeliveryEnvelope {
  /** MAIL FROM; undefined: the From address (the transport's default). */
  sender: string | undefined;
  /** The mailto address (with its subject), or null: no mailto is offered. */
  mailto: string | null;
}

const NONE: DeliveryEnvelope = Object.freeze({ sender: undefined, mailto: null });

export function prepareReturnPath(
  from: string,
  context: PersonaliseContext,
): (recipient: ClaimedDelivery) => DeliveryEnvelope {
  const setting = context.returnPath;
  if (!setting || context.testToken || !context.secret) {
    // A test copy still goes out from the configured return path, without a token.
    const plain = setting?.address ?? undefined;
    return plain ? () => ({ sender: plain, mailto: null }) : () => NONE;
  }
  const parsedFrom = normaliseAddress(from);
  const base = setting.address ?? (parsedFrom.ok ? parsedFrom.address : null);
  if (base === null || returnPathProblem(base, setting.delimiter) !== null) return () => NONE;
  const { delimiter } = setting;
  const offerMailto = setting.address !== null;
  const { secret, newsletterId } = context;
  return (recipient) => {
    const delivery = { deliveryId: recipient.deliveryId, newsletterId, address: recipient.address };
    if (!offerMailto)
      return {
        sender: verpAddress(base, delimiter, createReturnPathToken(secret, 'bounce', delivery)),
        mailto: null,
      };
    const tokens = createReturnPathTokens(secret, delivery);
    return {
      sender: verpAddress(base, delimiter, tokens.bounce),
      mailto: `${verpAddress(base, delimiter, tokens.unsubscribe)}?subject=unsubscribe`,
    };
  };
}
