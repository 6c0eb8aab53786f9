/**
 * `node bench/multihost-run.js [--quick] [--slow-only[=ROUNDS]]`: section 6 of the benchmark on its own (several hosts,
 * one PostgreSQL database; bench/multihost.js). Prints the results as JSON on stdout, then the
 * section's markdown; progress goes to stderr. Starts the sink as bench/run.js does; the sink, every
 * child and the PostgreSQL cluster are gone when it ends, whichever way it ends.
 */
import path from 'node:path';
import { forkSink, killChildren, machine, ROOT } from './lib.js';
import { multihost, multihostSlowOnly, renderMultihost } from './multihost.js';

const quick = process.argv.includes('--quick');
// `--slow-only[=ROUNDS]`: only the slow-sink runs (goal 4 of issue 17), each side ROUNDS times
// (default: the section's); JSON only.
const slowArg = process.argv.find((a) => a === '--slow-only' || a.startsWith('--slow-only='));
const slowOnly = slowArg !== undefined;
const slowRounds = slowArg?.includes('=') ? Number(slowArg.split('=')[1]) : undefined;
let sink = null;

function log(text) {
  process.stderr.write(`bench: ${text}\n`);
}

function finish() {
  sink?.stop();
  killChildren();
}

// Ctrl-C: the children go first; pg-cluster.js stops the server on exit (and its watchdog would).
process.on('SIGINT', () => {
  finish();
  process.exit(130);
});
process.on('SIGTERM', () => {
  finish();
  process.exit(143);
});

try {
  const m = machine();
  log(`machine: ${m.cpu}, ${m.cores} cores, ${m.ramGiB} GiB, Node ${m.node}`);
  sink = await forkSink(path.join(ROOT, 'bench', 'sink.js'));
  const started = Date.now();
  if (slowOnly) {
    const result = await multihostSlowOnly({ quick, log, rounds: slowRounds });
    process.stdout.write(`${JSON.stringify({ machine: m, quick, slowOnly: result }, null, 2)}\n`);
  } else {
    const section = await multihost({ quick, log, sink });
    log(`multihost: ${Math.round((Date.now() - started) / 1000)} s in all`);
    process.stdout.write(`${JSON.stringify({ machine: m, quick, multihost: section }, null, 2)}\n\n`);
    process.stdout.write(renderMultihost(section));
  }
} finally {
  finish();
}
