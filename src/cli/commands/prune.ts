/**
 * `newsletter prune --sent-before DATE [--dry-run]`: deletes the ledger rows of final newsletters
 * finished before DATE, keeping their counts (src/domain/prune.ts has the rule; the stores apply
 * it again under their lock, newsletter by newsletter, so a plan that went stale refuses rather
 * than deletes).
 */
import { UsageError } from '../../domain/errors.js';
import { keptBecause, type PruneCandidate, type PruneKeptReason, pruneDecision } from '../../domain/prune.js';
import { parseWhen } from '../../domain/when.js';
import { formatInZone } from '../../domain/zone.js';
import type { Context } from '../context.js';
import { withStore } from '../context.js';
import { isTerminal, printJson, println, warn } from '../output.js';

interface PruneOptions {
  sentBefore: string;
  dryRun?: boolean;
  json?: boolean;
}

/** A newsletter left as it was, and why (src/domain/prune.ts). */
interface Kept {
  id: number;
  reason: PruneKeptReason;
  why: string;
}

interface Pruned {
  id: number;
  subject: string;
  status: string;
  finishedAt: string | null;
  deliveries: number;
}

export async function pruneCommand(context: Context, options: PruneOptions): Promise<void> {
  const now = Date.now();
  const sentBefore = parseWhen(options.sentBefore, now);
  if (sentBefore === null)
    throw new UsageError(`--sent-before "${options.sentBefore}" is not a date; use e.g. 2026-01-01.`);
  const dryRun = options.dryRun === true;
  const report = await withStore(context, { readonly: dryRun }, async (store) => {
    const candidates = await store.pruneCandidates();
    const pruned: Pruned[] = [];
    const kept: Kept[] = [];
    for (const candidate of candidates) {
      const decision = pruneDecision(candidate, sentBefore);
      if (!decision.prune) {
        // Newer newsletters are simply not asked for; the others are worth a word.
        if (decision.reason !== 'too-recent' && decision.reason !== 'nothing-to-delete')
          kept.push({
            id: candidate.newsletterId,
            reason: decision.reason,
            why: keptBecause(candidate, decision.reason),
          });
        continue;
      }
      if (dryRun) {
        pruned.push(describe(candidate, candidate.ledgerRows));
        continue;
      }
      const outcome = await store.pruneNewsletter(candidate.newsletterId, sentBefore, now);
      if (outcome.pruned) pruned.push(describe(candidate, outcome.deleted));
      else if (outcome.reason !== null)
        kept.push({
          id: candidate.newsletterId,
          reason: outcome.reason,
          why: keptBecause(candidate, outcome.reason),
        });
    }
    if (!dryRun && pruned.length > 0)
      await store.recordEvent(
        'prune',
        { sentBefore, newsletters: pruned.map((p) => p.id), deliveries: total(pruned) },
        now,
      );
    return { pruned, kept };
  });
  if (options.json) {
    printJson({ dryRun, sentBefore: new Date(sentBefore).toISOString(), ...report });
    return;
  }
  const verb = dryRun ? 'would delete' : 'deleted';
  const talk = dryRun || isTerminal() || context.global.verbose;
  if (talk) {
    for (const p of report.pruned)
      println(
        `newsletter ${p.id} (${p.status}, finished ${p.finishedAt}): ${verb} ${p.deliveries} ledger rows`,
      );
    println(
      report.pruned.length === 0
        ? `Nothing to prune: no final newsletter finished before ${formatInZone(sentBefore, null)} has ledger rows.`
        : `${dryRun ? 'Would delete' : 'Deleted'} ${total(report.pruned)} ledger rows of ${report.pruned.length} newsletter${report.pruned.length === 1 ? '' : 's'}; their counts, the suppressions and the opt-outs are kept.`,
    );
  }
  // A newsletter still sending is routine (cron would mail it on every prune); unsettled rows
  // wait for a person, and are said whatever the output.
  for (const kept of report.kept) {
    if (kept.reason === 'unsettled') warn(kept.why);
    else if (talk) println(kept.why);
  }
}

function describe(candidate: PruneCandidate, deliveries: number): Pruned {
  return {
    id: candidate.newsletterId,
    subject: candidate.subject,
    status: candidate.status,
    finishedAt: candidate.finishedAt === null ? null : new Date(candidate.finishedAt).toISOString(),
    deliveries,
  };
}

const total = (pruned: readonly Pruned[]) => pruned.reduce((sum, p) => sum + p.deliveries, 0);
