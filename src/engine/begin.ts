/**
 * Step 8 of a run: build and verify each due newsletter, then compare-and-set scheduled → sending
 * with the body in one transaction (the store's `beginSending`). Promise 3: nothing here sets a
 * flag that a later step trusts; the next step reads the newsletters that are `sending` (with
 * their stored body) back from the database.
 */
import { BuildError } from '../domain/errors.js';
import type { Newsletter } from '../domain/types.js';
import type { RenderModule, SendDueDeps } from './deps.js';
import type { SendDueResult } from './result.js';

export async function beginDueNewsletters(
  deps: SendDueDeps,
  render: RenderModule,
  runId: number,
  result: SendDueResult,
): Promise<void> {
  const knownFields = ['email', 'name', 'unsubscribe_url', ...(await deps.store.knownFieldNames())];
  for (const newsletter of await deps.store.dueNewsletters(deps.now())) {
    if (deps.stop.stopped) return;
    await deps.at?.('before-build');
    try {
      const body = await render.buildBody(newsletter, {
        templatesRoot: deps.templatesRoot(newsletter),
        knownFields,
        defaultFrom: deps.options.from,
      });
      await deps.at?.('after-build');
      if (await deps.store.beginSending(newsletter, body, runId, deps.now())) {
        await deps.at?.('after-begin-sending');
        deps.events({ type: 'newsletter-built', newsletterId: newsletter.id, subject: newsletter.subject });
        result.newsletters.push({ id: newsletter.id, subject: newsletter.subject, result: 'began' });
      } else {
        await reportLostBegin(deps, newsletter, result);
      }
    } catch (error) {
      if (!(error instanceof BuildError)) throw error;
      const reason = [error.message, ...error.details].join('\n');
      if (await deps.store.markBuildFailed(newsletter, reason, deps.now())) {
        deps.events({ type: 'newsletter-build-failed', newsletterId: newsletter.id, reason });
        result.newsletters.push({
          id: newsletter.id,
          subject: newsletter.subject,
          result: 'build-failed',
          reason,
        });
      }
    }
  }
}

/**
 * The compare-and-set that begins sending changed nothing: another run began it, or an operator
 * changed it (`schedule --at LATER`, cancel) while its body was being built. The operator wins.
 */
async function reportLostBegin(deps: SendDueDeps, read: Newsletter, result: SendDueResult): Promise<void> {
  const now = (await deps.store.getNewsletter(read.id)) ?? read;
  if (now.status === 'sending' || now.status === 'sent') {
    deps.events({ type: 'newsletter-taken-by-another-run', newsletterId: read.id });
    return;
  }
  deps.events({
    type: 'newsletter-changed-during-build',
    newsletterId: read.id,
    status: now.status,
    scheduledAt: now.scheduledAt,
  });
  result.newsletters.push({ id: read.id, subject: read.subject, result: 'changed-during-build' });
}
