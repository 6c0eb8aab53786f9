/**
 * `newsletter bounces import PATH…`: reads delivery status notifications from mailboxes (an mbox,
 * a Maildir, .eml files) and records each recipient's bounce once (src/domain/bounce.ts): a hard
 * bounce suppresses the address, soft bounces do at NEWSLETTER_SOFT_BOUNCE_LIMIT. Importing the
 * same mailbox again changes nothing; a cron line may import a growing mbox every hour.
 */
import { normaliseAddress } from '../../domain/address.js';
import { classifyBounce, shortenReason } from '../../domain/bounce.js';
import type { Context } from '../context.js';
import { withStore } from '../context.js';
import { isTerminal, printJson, println, warn } from '../output.js';

const MAX_REPORTED = 20;

export interface BounceImportSummary {
  messages: number;
  /** Messages with a message/delivery-status part. */
  dsns: number;
  /** Messages that are not DSNs (replies, out-of-office): left alone. */
  notDsn: number;
  hard: number;
  soft: number;
  /** Recipients whose Action says delivered, relayed or expanded: not bounces. */
  notBounces: number;
  /** Bounces recorded by an earlier import: nothing changed. */
  alreadyImported: number;
  /** Addresses suppressed by this import. */
  suppressed: string[];
  problems: string[];
}

export async function importCommand(
  context: Context,
  paths: string[],
  options: { json?: boolean },
): Promise<void> {
  const [{ readMailbox }, { parseDsn }] = await Promise.all([
    import('../../import/mailbox.js'),
    import('../../import/dsn.js'),
  ]);
  const summary: BounceImportSummary = {
    messages: 0,
    dsns: 0,
    notDsn: 0,
    hard: 0,
    soft: 0,
    notBounces: 0,
    alreadyImported: 0,
    suppressed: [],
    problems: [],
  };
  const softLimit = context.config.softBounceLimit;
  await withStore(context, {}, async (store) => {
    for (const target of paths) {
      for await (const message of readMailbox(target)) {
        summary.messages += 1;
        let dsn: Awaited<ReturnType<typeof parseDsn>>;
        try {
          dsn = await parseDsn(message.raw);
        } catch (error) {
          summary.problems.push(`${message.source}: cannot be parsed (${(error as Error).message})`);
          continue;
        }
        if (!dsn) {
          summary.notDsn += 1;
          continue;
        }
        summary.dsns += 1;
        for (const recipient of dsn.recipients) {
          const kind = classifyBounce(recipient.action, recipient.status);
          if (kind === null) {
            if (recipient.status === '' && recipient.action === 'failed') {
              summary.problems.push(
                `${message.source}: ${recipient.address} failed without a status code; skipped`,
              );
            } else summary.notBounces += 1;
            continue;
          }
          const parsed = normaliseAddress(recipient.address);
          if (!parsed.ok) {
            summary.problems.push(`${message.source}: ${parsed.problem}`);
            continue;
          }
          const result = await store.recordBounce(
            {
              dsnId: dsn.id,
              address: parsed.address,
              kind,
              status: recipient.status,
              reason: shortenReason(recipient.diagnostic || `Action: ${recipient.action}`),
            },
            { softLimit, now: Date.now() },
          );
          if (!result.recorded) {
            summary.alreadyImported += 1;
            continue;
          }
          summary[kind] += 1;
          if (result.suppressed) summary.suppressed.push(parsed.address);
        }
      }
    }
  });

  if (options.json) {
    printJson({ ...summary, softBounceLimit: softLimit });
    return;
  }
  for (const problem of summary.problems.slice(0, MAX_REPORTED)) warn(problem);
  if (summary.problems.length > MAX_REPORTED)
    warn(`… and ${summary.problems.length - MAX_REPORTED} more problems`);
  // Quiet under cron when nothing new was found (promise 5); a person, or --verbose, sees the count.
  const news = summary.hard + summary.soft > 0;
  if (!news && !isTerminal() && !context.global.verbose) return;
  println(
    `Read ${summary.messages} ${summary.messages === 1 ? 'message' : 'messages'}: ${summary.dsns} delivery status notifications, ` +
      `${summary.hard} new hard and ${summary.soft} new soft bounces, ${summary.alreadyImported} already imported` +
      (summary.notDsn > 0 ? `, ${summary.notDsn} other messages left alone.` : '.'),
  );
  if (summary.suppressed.length > 0) {
    println(
      `Suppressed ${summary.suppressed.length}: ${summary.suppressed.slice(0, MAX_REPORTED).join(', ')}`,
    );
    if (summary.suppressed.length > MAX_REPORTED)
      println(`… and ${summary.suppressed.length - MAX_REPORTED} more`);
  }
}
