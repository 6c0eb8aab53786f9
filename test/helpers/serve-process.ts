/**
 * `newsletter serve --port 0` as a child process of the built CLI (cli-process.ts), for the
 * end-to-end tests that follow real unsubscribe links: started in a workspace, resolved once it
 * prints the address it listens on, stopped with SIGTERM (which must end it cleanly).
 */
import { expect } from 'vitest';
import { type CliProcess, startCli } from './cli-process.js';

export async function startServe(
  ws: { dir: string; env: Record<string, string> },
  env: Record<string, string> = {},
): Promise<{ child: CliProcess; base: string }> {
  const child = startCli(['serve', '--port', '0'], {
    cwd: ws.dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: ws.dir, ...ws.env, ...env },
    timeoutMs: 60_000,
  });
  const deadline = Date.now() + 15_000;
  for (;;) {
    const match = /listening on (http:\/\/[^\s/]+)\/u\//.exec(child.stdout());
    if (match?.[1]) return { child, base: match[1] };
    if (!child.running() || Date.now() > deadline) {
      child.signal('SIGKILL');
      const result = await child.exited;
      throw new Error(`serve did not start: ${result.stdout}\n${result.stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** SIGTERM, then checks that serve exited 0; returns what it wrote to stderr (its log). */
export async function stopServe(child: CliProcess): Promise<string> {
  child.signal('SIGTERM');
  const result = await child.exited;
  expect(result, `serve stderr: ${result.stderr}`).toMatchObject({ code: 0, signal: null });
  return result.stderr;
}

/** The link's path on our server: what the site's reverse proxy forwards (/u/TOKEN). */
export const onServer = (base: string, link: string): string => `${base}${new URL(link).pathname}`;
