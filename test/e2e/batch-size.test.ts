/**
 * How many recipients `send-due` claims at a time (src/engine/batch-size.ts), through the built
 * CLI against a real SMTP server: with NEWSLETTER_BATCH unset a fast run grows its batches from 20
 * towards 200 (about 100 ms of sending each), never past 200, and a run held to 100 a second keeps
 * them at 20; with NEWSLETTER_BATCH set every batch is that size. Every recipient gets one message.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { assertBuilt, describeRun, makeWorkspace, type Workspace } from '../helpers/cli.js';
import { type SmtpSink, startSmtpSink } from '../helpers/smtp-sink.js';

let sink: SmtpSink;
const workspaces: Workspace[] = [];

beforeAll(async () => {
  assertBuilt();
  sink = await startSmtpSink();
});
afterAll(async () => {
  await sink?.close();
  for (const ws of workspaces) await ws.cleanup();
});

/** A fresh workspace with `count` readers and a newsletter due to them; the claims of one run. */
async function claimsOfOneRun(count: number, env: Record<string, string>): Promise<number[]> {
  const ws = await makeWorkspace('newsletter-batch-size-');
  workspaces.push(ws);
  await ws.ok(['init']);
  const { file } = await ws.writeCsv(count);
  await ws.ok(['recipients', 'import', file, '--list', 'readers']);
  const id = await ws.createDue();
  const before = sink.total;
  const args = ['send-due', '--verbose'];
  const result = await ws.run(args, { env: { NEWSLETTER_TRANSPORT: sink.url, ...env } });
  expect(result.code, describeRun(args, result)).toBe(0);
  expect(sink.total - before).toBe(count);
  const claims = [
    ...result.stderr.matchAll(new RegExp(`newsletter ${id}: claimed (\\d+), skipped`, 'g')),
  ].map((match) => Number(match[1]));
  expect(claims.reduce((a, b) => a + b, 0)).toBe(count);
  return claims;
}

it('NEWSLETTER_BATCH unset, rate unlimited: batches grow from 20, never past 200', async () => {
  const claims = await claimsOfOneRun(3000, { NEWSLETTER_RATE: '1000000' });
  expect(claims[0]).toBe(20);
  expect(Math.max(...claims)).toBeGreaterThan(20);
  expect(Math.max(...claims)).toBeLessThanOrEqual(200);
  expect(Math.min(...claims.slice(0, -1))).toBeGreaterThanOrEqual(20);
}, 60_000);

it('unset at 100 a second: batches of 20, as at the default rate', async () => {
  const claims = await claimsOfOneRun(150, { NEWSLETTER_RATE: '100' });
  expect(claims.slice(0, -1).every((size) => size === 20)).toBe(true);
}, 60_000);

it('NEWSLETTER_BATCH set: every batch that size, however fast the run', async () => {
  const claims = await claimsOfOneRun(500, { NEWSLETTER_RATE: '1000000', NEWSLETTER_BATCH: '25' });
  expect(claims.slice(0, -1).every((size) => size === 25)).toBe(true);
}, 60_000);
