/**
 * `newsletter demo`: the whole product on the embedded defaults, in ./demo — a SQLite database,
 * a list of sample subscribers, a newsletter from templates/, and send-due into a file outbox.
 * It runs the real CLI for each step, so what it shows is what an operator would type.
 * Run again, it sends nobody a second copy: the newsletter is created once, and send-due finds
 * everyone already in the ledger.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import chalk from 'chalk';
import { NewsletterError } from '../../domain/errors.js';
import { ExitCode } from '../../domain/exit-codes.js';
import type { Context } from '../context.js';
import { println } from '../output.js';
import { PACKAGED_TEMPLATES, PACKAGE_ROOT } from '../package-paths.js';

const BIN = path.join(PACKAGE_ROOT, 'bin', 'newsletter.js');

const SUBSCRIBERS = `email,name,city
ada@example.org,Ada Lovelace,London
grace@example.org,Grace Hopper,Arlington
linus@example.org,Linus Torvalds,Portland
margaret@example.org,Margaret Hamilton,Boston
dennis@example.org,Dennis Ritchie,Murray Hill
`;

export async function demoCommand(context: Context, options: { dir: string }): Promise<void> {
  const dir = path.resolve(context.cwd, options.dir);
  mkdirSync(dir, { recursive: true });
  const csv = path.join(dir, 'subscribers.csv');
  writeFileSync(csv, SUBSCRIBERS);
  const database = path.join(dir, 'newsletter.db');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NEWSLETTER_DATABASE: database,
    NEWSLETTER_TRANSPORT: `file:${path.join(dir, 'outbox')}`,
    NEWSLETTER_FROM: 'Demo News <news@example.org>',
    NEWSLETTER_BASE_URL: 'http://localhost:8080',
    NEWSLETTER_SECRET: 'demo-secret-only-for-the-demo-folder',
    NEWSLETTER_RATE: '100',
  };
  const run = (args: string[], quiet = false): string => {
    println(chalk.dim(`$ newsletter ${args.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`));
    const result = spawnSync(process.execPath, ['--', BIN, ...args], { env, cwd: dir, encoding: 'utf8' });
    if (!quiet && result.stdout) process.stdout.write(result.stdout);
    if (result.stderr) process.stderr.write(result.stderr);
    if (result.status !== 0) {
      throw new NewsletterError(
        `The demo step \`newsletter ${args[0]}\` exited with ${result.status}.`,
        ExitCode.internal,
      );
    }
    return result.stdout;
  };

  run(['init']);
  run(['recipients', 'import', csv, '--list', 'demo']);
  const idFile = path.join(dir, 'newsletter-id');
  let id: string;
  if (existsSync(idFile)) {
    id = readFileSync(idFile, 'utf8').trim();
    println(chalk.dim(`(newsletter ${id} was created by an earlier demo run; not creating another)`));
  } else {
    id = run([
      'create',
      '--subject',
      'Welcome, {{name}}',
      '--template',
      path.join(PACKAGED_TEMPLATES, 'welcome.mjml'),
      '--list',
      'demo',
      '--at',
      'now',
    ]).trim();
    writeFileSync(idFile, `${id}\n`);
  }
  run(['send-due', '--dry-run', '--verbose', '--log-format', 'text']);
  run(['send-due', '--verbose', '--log-format', 'text']);
  run(['show', id]);
  const outbox = path.join(dir, 'outbox');
  const files = existsSync(outbox) ? readdirSync(outbox).filter((f) => f.endsWith('.eml')) : [];
  println();
  println(
    `The outbox ${outbox} holds ${files.length} messages (one .eml per recipient, named by Message-ID).`,
  );
  println(`Run \`${againCommand(context.cwd, dir)}\` again: nobody gets a second copy.`);
  println(
    "Next, your own: `newsletter templates init templates` copies the starter templates into ./templates to edit, and the README's tour goes on from there.",
  );
}

/**
 * The command that ran this demo, as the operator would type it again: `npm run demo` in a
 * checkout of the project (npm names the script it runs), `newsletter demo` after
 * `npm install -g`, with `--dir` when the demo went somewhere other than ./demo.
 */
function againCommand(cwd: string, dir: string): string {
  if (process.env.npm_lifecycle_event === 'demo') return 'npm run demo';
  const relative = path.relative(cwd, dir) || '.';
  if (relative === 'demo') return 'newsletter demo';
  return `newsletter demo --dir ${/\s/.test(relative) ? JSON.stringify(relative) : relative}`;
}
