/**
 * doctor's return-path check (issue 18): where bounces go, whether the token fits, whether the
 * List-Unsubscribe mailto is offered, and whether DMARC can still pass on SPF. DMARC's SPF
 * alignment compares the envelope sender's domain with the From's: a NEWSLETTER_RETURN_PATH on
 * another domain leaves DMARC resting on DKIM alone, which is worth a warning, not a refusal.
 */
import type { Config } from '../config.js';
import { normaliseAddress } from '../domain/address.js';
import { returnPathProblem } from '../domain/return-path.js';
import { type CheckResult, ok, warning } from './types.js';

const NAME = 'return-path';

export function returnPathCheck(config: Config): CheckResult {
  const { address, delimiter } = config.returnPath;
  const from = config.from ? normaliseAddress(config.from) : null;
  const fromAddress = from?.ok ? from.address : null;
  if (address === null) {
    if (fromAddress === null)
      return ok(
        NAME,
        "Bounces go to each newsletter's From address, with a VERP token (NEWSLETTER_FROM is not set).",
      );
    const problem = returnPathProblem(fromAddress, delimiter);
    if (problem)
      return warning(
        NAME,
        `Bounces go to the From address without a token: NEWSLETTER_FROM ${problem}`,
        'Set NEWSLETTER_RETURN_PATH to a short address on the From domain, e.g. bounces@example.org.',
      );
    return ok(
      NAME,
      `Bounces go to ${tokenForm(fromAddress, delimiter)} (the From address, aligned for DMARC). No List-Unsubscribe mailto is offered: set NEWSLETTER_RETURN_PATH to a mailbox that \`bounces receive\`, \`import\` or \`fetch\` reads to offer one.`,
    );
  }
  const where = `Bounces and mailto unsubscribes go to ${tokenForm(address, delimiter)}`;
  if (fromAddress !== null && domain(fromAddress) !== domain(address))
    return warning(
      NAME,
      `${where}, on another domain than the From (${domain(fromAddress)}): SPF does not align, so DMARC rests on DKIM alone.`,
      `Use a return path on ${domain(fromAddress)} (e.g. bounces@${domain(fromAddress)}), or make sure every message is DKIM-signed for ${domain(fromAddress)} (NEWSLETTER_DKIM_KEY).`,
    );
  return ok(
    NAME,
    `${where}; make sure that mailbox is read by \`bounces receive\`, \`import\` or \`fetch\`.`,
  );
}

function tokenForm(address: string, delimiter: string): string {
  const at = address.lastIndexOf('@');
  return `${address.slice(0, at)}${delimiter}TOKEN${address.slice(at)}`;
}

function domain(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1);
}
