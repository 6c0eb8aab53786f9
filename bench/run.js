/**
 * `npm run bench`: every comparison of issue 5 in one script, on this machine, each measured
 * against its yardstick in the same run (the machine is shared and noisy, so ratios travel
 * better than absolute figures). Writes docs/benchmarks.md and bench/results/latest.json.
 *
 *   node bench/run.js [--quick] [--only=throughput,idle,scale,personalise,profile,multihost,bounces] [--save=NAME] [--no-doc]
 *   node bench/run.js --render   # docs/benchmarks.md again from bench/results/{latest,before}.json
 *
 * --quick shrinks every size (a smoke test of the harness); --save=before keeps the results as
 * bench/results/before.json, the baseline the document compares with. Every child process is
 * killed on the way out, and every workspace removed.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  audience,
  cli,
  cpuMicros,
  forkSink,
  killChildren,
  machine,
  median,
  ROOT,
  round,
  runNode,
  workspace,
} from './lib.js';
import { bouncesMbox } from './bounces-mbox.js';
import { multihost } from './multihost.js';
import { profileTable, summariseProfile } from './profile.js';
import { batchWords, renderDoc } from './report.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const only =
  argv
    .find((a) => a.startsWith('--only='))
    ?.slice(7)
    .split(',') ?? null;
const saveAs = argv.find((a) => a.startsWith('--save='))?.slice(7) ?? 'latest';
const want = (section) => only === null || only.includes(section);

const SIZES = quick
  ? {
      throughput: 2000,
      idleRuns: 5,
      scale: [10_000, 100_000],
      personalise: 20_000,
      profile: 2000,
    }
  : {
      throughput: 20_000,
      idleRuns: 11,
      scale: [100_000, 1_000_000],
      personalise: 200_000,
      profile: 20_000,
    };
/** The send-due configuration of the throughput run, and the one beside it at the defaults. */
const TUNED = { batch: 200, connections: 4 };
/** NEWSLETTER_BATCH unset: the CLI sizes batches by the rate it reaches (src/engine/batch-size.ts). */
const DEFAULTS = { batch: null, connections: 3 };
// 4 and 8: the yardstick is the faster. 3, the defaults' connections: how fast the bare client
// itself is with as few connections as a user who changes nothing (a scale for goal 1a, not the
// yardstick).
const RAW_CONNECTIONS = [3, 4, 8];
const ROUNDS = 2;

const cleanup = [];
let sink = null;

async function main() {
  const results = { machine: machine(), quick, sizes: SIZES, commands: {}, sections: {} };
  log(
    `machine: ${results.machine.cpu}, ${results.machine.cores} cores, ${results.machine.ramGiB} GiB, Node ${results.machine.node}`,
  );
  if (want('throughput') || want('profile') || want('idle') || want('multihost')) sink = await startSink();

  if (want('throughput')) results.sections.throughput = await throughput(results);
  if (want('idle')) results.sections.idle = await idle(results);
  if (want('personalise')) results.sections.personalise = await personaliseBench(results);
  if (want('scale')) results.sections.scale = await scale(results);
  if (want('profile')) results.sections.profile = await profile(results);
  // Issue 6: several hosts on one PostgreSQL database (its own cluster, started and removed there).
  if (want('multihost')) results.sections.multihost = await multihost({ quick, log, sink });
  // Issue 18: `bounces import` of a 1 GB mbox in bounded memory (peak RSS under 200 MB).
  if (want('bounces')) {
    results.sections.bounces = await bouncesMbox({ quick, log });
    results.commands.bounces = results.sections.bounces.commands;
  }

  await mkdir(path.join(ROOT, 'bench', 'results'), { recursive: true });
  const file = path.join(ROOT, 'bench', 'results', `${saveAs}.json`);
  await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
  log(`results: ${path.relative(ROOT, file)}`);
  if (!argv.includes('--no-doc') && !quick && only === null) {
    const before = await readJson(path.join(ROOT, 'bench', 'results', 'before.json'));
    const doc = renderDoc({ after: results, before: saveAs === 'before' ? null : before });
    await writeFile(path.join(ROOT, 'docs', 'benchmarks.md'), doc);
    log('wrote docs/benchmarks.md');
  }
}

// ---- the sink ---------------------------------------------------------------------------------

function startSink() {
  return forkSink(path.join(ROOT, 'bench', 'sink.js'));
}

// ---- 1 and 2: throughput and CPU per message ----------------------------------------------------

function sendEnv(config) {
  return {
    NEWSLETTER_TRANSPORT: sink.url,
    NEWSLETTER_RATE: '1000000',
    // Unset when null: the run then sizes its batches as a user's would.
    ...(config.batch === null ? {} : { NEWSLETTER_BATCH: String(config.batch) }),
    NEWSLETTER_SMTP_CONNECTIONS: String(config.connections),
  };
}

/** One send-due run of `count` recipients, from a fresh workspace; returns what it cost. */
async function sendDueRun(label, count, config, options = {}) {
  const ws = await workspace(label, sendEnv(config));
  cleanup.push(ws.remove);
  const { id } = await audience(ws, count);
  await sink.reset(options.capture ?? null);
  const sinkBefore = await sink.stats();
  const run = await cli(ws, ['send-due'], { rusage: true, nodeArgs: options.nodeArgs ?? [] });
  // Cron's contract: a run that went well prints nothing.
  if (run.stdout !== '' || run.stderr !== '')
    throw new Error(`${label}: send-due printed:\n${run.stdout}${run.stderr}`);
  const seen = await sink.stats();
  const shown = JSON.parse((await cli(ws, ['show', String(id), '--json'])).stdout);
  if (seen.messages !== count || shown.counts.sent !== count || shown.status !== 'sent') {
    throw new Error(
      `${label}: the sink got ${seen.messages}, the ledger says ${JSON.stringify(shown.counts)}`,
    );
  }
  const cpu = cpuMicros(run.usage);
  return {
    ws,
    messages: count,
    config,
    wallMs: round(run.ms),
    rate: round((count / run.ms) * 1000),
    sinkRate: round((count / (seen.last - seen.first)) * 1000),
    bytesPerMessage: round(seen.bytes / count),
    cpuMs: round(cpu / 1000),
    cpuMicrosPerMessage: round(cpu / count, 1),
    maxRssMiB: round(run.usage.maxRSS / 1024, 1),
    sinkCpuMicrosPerMessage: round((seen.cpuMicros - sinkBefore.cpuMicros) / count, 1),
    /** Share of one core the sink used between the first and the last message. */
    sinkBusy: round((seen.cpuMicros - sinkBefore.cpuMicros) / 1000 / (seen.last - seen.first), 2),
  };
}

async function rawRun(count, connections, payload) {
  await sink.reset();
  const before = await sink.stats();
  const run = await runNode(
    path.join(ROOT, 'bench', 'raw-client.js'),
    [String(sink.port), String(count), String(connections), payload],
    { rusage: true },
  );
  if (run.code !== 0) throw new Error(`raw client exited ${run.code}: ${run.stderr}`);
  const seen = await sink.stats();
  if (seen.messages !== count) throw new Error(`raw client: the sink got ${seen.messages} of ${count}`);
  const own = JSON.parse(run.stdout);
  return {
    connections,
    messages: count,
    wallMs: round(run.ms),
    rate: round((count / run.ms) * 1000),
    innerRate: round(own.rate),
    bytesPerMessage: round(seen.bytes / count),
    cpuMicrosPerMessage: round(cpuMicros(run.usage) / count, 1),
    sinkCpuMicrosPerMessage: round((seen.cpuMicros - before.cpuMicros) / count, 1),
    sinkBusy: round((seen.cpuMicros - before.cpuMicros) / 1000 / (seen.last - seen.first), 2),
  };
}

async function throughput(results) {
  const n = SIZES.throughput;
  log(`throughput: capturing one message of the benchmark newsletter for the raw client`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'newsletter-bench-sample-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const payload = path.join(dir, 'sample.eml');
  // A small warm-up run that also captures the payload: the raw client sends these very bytes.
  await sendDueRun('warmup', 200, TUNED, { capture: payload });

  // Two rounds, each: the raw client with 3, 4 and 8 connections, then send-due; the best of each
  // counts. The machine is shared: whatever else runs slows one run or another, not a whole side.
  const raws = [];
  const sends = [];
  const defaultRuns = [];
  for (let round = 1; round <= ROUNDS; round++) {
    for (const c of RAW_CONNECTIONS) raws.push(await rawRun(n, c, payload));
    log(
      `raw client: ${raws
        .slice(-RAW_CONNECTIONS.length)
        .map((r) => `${r.rate}/s with ${r.connections} (sink ${r.sinkBusy} of a core)`)
        .join(', ')}`,
    );
    const run = await sendDueRun(`throughput-${round}`, n, TUNED);
    sends.push(run);
    log(
      `send-due (batch ${TUNED.batch}, ${TUNED.connections} connections): ${run.rate}/s, ${run.cpuMicrosPerMessage} µs CPU/message; sink ${run.sinkCpuMicrosPerMessage} µs/message, ${run.sinkBusy} of a core`,
    );
    // The defaults, with the same audience, every round: what a user who changes nothing gets.
    const atDefaults = await sendDueRun(`defaults-${round}`, n, DEFAULTS);
    defaultRuns.push(atDefaults);
    await atDefaults.ws.remove();
    log(
      `send-due at the defaults (${batchWords(DEFAULTS.batch)}, ${DEFAULTS.connections} connections): ${atDefaults.rate}/s, ${atDefaults.cpuMicrosPerMessage} µs CPU/message`,
    );
  }
  const defaults = defaultRuns.reduce((a, b) => (b.rate > a.rate ? b : a));

  const best = raws.reduce((a, b) => (b.rate > a.rate ? b : a));
  const rawAtDefaults = raws
    .filter((r) => r.connections === DEFAULTS.connections)
    .reduce((a, b) => (b.rate > a.rate ? b : a));
  const tuned = sends.reduce((a, b) => (b.rate > a.rate ? b : a));
  results.commands.throughput = [
    `node bench/sink.js   # forked; smtp-server on 127.0.0.1, disableReverseLookup, STARTTLS hidden, counts only`,
    `node bench/rusage.js OUT.json bench/raw-client.js PORT ${n} {${RAW_CONNECTIONS.join(',')}} sample.eml   # sample.eml: a message send-due sent`,
    `NEWSLETTER_TRANSPORT=smtp://127.0.0.1:PORT NEWSLETTER_RATE=1000000 NEWSLETTER_BATCH=${TUNED.batch} NEWSLETTER_SMTP_CONNECTIONS=${TUNED.connections} node bench/rusage.js OUT.json bin/newsletter.js send-due   # ${n} recipients, bench/templates/digest-40k.mjml`,
    `# then the defaults (NEWSLETTER_BATCH unset: by rate, 20–200; NEWSLETTER_SMTP_CONNECTIONS=${DEFAULTS.connections}) with ${n} recipients; all four ${ROUNDS} times`,
  ];
  // The idle section reuses a finished workspace: its newsletter is sent, nothing is due.
  results.idleWorkspace = tuned.ws;
  const strip = ({ ws, ...rest }) => rest;
  return {
    rounds: ROUNDS,
    raw: raws,
    yardstick: { connections: best.connections, rate: best.rate },
    runs: sends.map(strip),
    sendDue: strip(tuned),
    defaults: strip(defaults),
    defaultRuns: defaultRuns.map(strip),
    /** The raw client's CPU per message: the lower of its runs, as for send-due. */
    rawCpuMicrosPerMessage: Math.min(...raws.map((r) => r.cpuMicrosPerMessage)),
    defaultsCpuMicrosPerMessage: Math.min(...defaultRuns.map((r) => r.cpuMicrosPerMessage)),
    ratio: round(tuned.rate / best.rate, 3),
    defaultsRatio: round(defaults.rate / best.rate, 3),
    /** The bare client with the defaults' connections, against the yardstick and against send-due. */
    rawAtDefaults: {
      connections: rawAtDefaults.connections,
      rate: rawAtDefaults.rate,
      ofYardstick: round(rawAtDefaults.rate / best.rate, 3),
      defaultsRatio: round(defaults.rate / rawAtDefaults.rate, 3),
    },
    sinkRatio: round(
      Math.max(...sends.map((r) => r.sinkRate)) / Math.max(...raws.map((r) => r.innerRate)),
      3,
    ),
    /** CPU per message: the lower of the runs (the other shared the machine with more). */
    cpuMicrosPerMessage: Math.min(...sends.map((r) => r.cpuMicrosPerMessage)),
  };
}

// ---- 3: the idle cron run --------------------------------------------------------------------------

async function idle(results) {
  let ws = results.idleWorkspace;
  delete results.idleWorkspace;
  if (!ws) {
    ws = await workspace('idle', sendEnv(TUNED));
    cleanup.push(ws.remove);
  }
  // The same minute without NEWSLETTER_HOST_ID, as most crontabs run it: every run works the host
  // id out (machine-id, the network interfaces, a keyed hash). Bound to this host by its init.
  const detected = await workspace('idle-host', { ...sendEnv(TUNED), NEWSLETTER_HOST_ID: undefined });
  cleanup.push(detected.remove);
  const quiet = async (w) => {
    const run = await cli(w, ['send-due']);
    if (run.stdout !== '' || run.stderr !== '')
      throw new Error(`idle send-due printed: ${run.stdout}${run.stderr}`);
    return run.ms;
  };
  const node = [];
  const sendDue = [];
  const sendDueHostDetected = [];
  for (let i = 0; i < SIZES.idleRuns; i++) {
    node.push((await runNode(null, [], { nodeArgs: ['-e', '0'], cwd: ws.dir })).ms);
    sendDue.push(await quiet(ws));
    sendDueHostDetected.push(await quiet(detected));
  }
  results.commands.idle = [
    `node -e 0   # ${SIZES.idleRuns} times, interleaved with:`,
    `node bin/newsletter.js send-due   # nothing due (the throughput newsletter, already sent)`,
    `node bin/newsletter.js send-due   # nothing due, without NEWSLETTER_HOST_ID (a fresh database)`,
  ];
  const m = {
    node: round(median(node), 1),
    sendDue: round(median(sendDue), 1),
    sendDueHostDetected: round(median(sendDueHostDetected), 1),
  };
  log(
    `idle: send-due ${m.sendDue} ms (without NEWSLETTER_HOST_ID ${m.sendDueHostDetected} ms), node -e 0 ${m.node} ms (medians of ${SIZES.idleRuns})`,
  );
  return {
    runs: SIZES.idleRuns,
    medianMs: m,
    ratio: round(m.sendDue / m.node, 2),
    ratioHostDetected: round(m.sendDueHostDetected / m.node, 2),
  };
}

// ---- 4: scale: import and --dry-run ---------------------------------------------------------------

async function scale(results) {
  const rows = [];
  for (const n of SIZES.scale) {
    const ws = await workspace(`scale-${n}`);
    cleanup.push(ws.remove);
    const { imported } = await audience(ws, n, { rusage: true });
    // The dry run writes nothing, so it runs twice: the faster time counts (the machine is shared),
    // the higher peak RSS counts too.
    const dryRuns = [];
    for (let i = 0; i < 2; i++) {
      const dry = await cli(ws, ['send-due', '--dry-run', '--json'], { rusage: true });
      const report = JSON.parse(dry.stdout);
      if (report.newsletters[0]?.wouldSend !== n) throw new Error(`dry run of ${n}: ${dry.stdout}`);
      dryRuns.push(dry);
    }
    const dryMs = Math.min(...dryRuns.map((d) => d.ms));
    rows.push({
      recipients: n,
      importMs: round(imported.ms),
      dryRunMs: round(dryMs),
      dryRunsMs: dryRuns.map((d) => round(d.ms)),
      totalMs: round(imported.ms + dryMs),
      importMaxRssMiB: round(imported.usage.maxRSS / 1024, 1),
      dryRunMaxRssMiB: round(Math.max(...dryRuns.map((d) => d.usage.maxRSS)) / 1024, 1),
      dryRunMicrosPerRecipient: round((dryMs * 1000) / n, 1),
    });
    log(
      `scale ${n}: import ${round(imported.ms)} ms, dry run ${dryRuns.map((d) => round(d.ms)).join(' and ')} ms, peak RSS ${Math.max(rows.at(-1).importMaxRssMiB, rows.at(-1).dryRunMaxRssMiB)} MiB`,
    );
    await ws.remove();
  }
  results.commands.scale = [
    'node bench/rusage.js OUT.json bin/newsletter.js recipients import subscribers.csv --list readers   # email,name,city',
    'node bench/rusage.js OUT.json bin/newsletter.js send-due --dry-run --json   # twice; bench/templates/digest-40k.mjml, due now',
  ];
  const [small, large] = rows;
  return {
    rows,
    peakRssMiB: Math.max(...rows.flatMap((r) => [r.importMaxRssMiB, r.dryRunMaxRssMiB])),
    timeRatio: small && large ? round(large.totalMs / small.totalMs, 2) : null,
    sizeRatio: small && large ? large.recipients / small.recipients : null,
  };
}

// ---- 5: personalisation ---------------------------------------------------------------------------

async function personaliseBench(results) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'newsletter-bench-templates-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const ws = { dir };
  const { cp, copyFile } = await import('node:fs/promises');
  await cp(path.join(ROOT, 'templates', 'partials'), path.join(ws.dir, 'partials'), { recursive: true });
  await copyFile(
    path.join(ROOT, 'bench', 'templates', 'digest-40k.mjml'),
    path.join(ws.dir, 'digest-40k.mjml'),
  );
  const run = await runNode(path.join(ROOT, 'bench', 'personalise.js'), [ws.dir, String(SIZES.personalise)]);
  if (run.code !== 0) throw new Error(`personalise bench: ${run.stderr}`);
  const r = JSON.parse(run.stdout);
  results.commands.personalise = [`node bench/personalise.js TEMPLATES ${SIZES.personalise}`];
  log(
    `personalise: template work ${r.substituteMicros.toFixed(2)} µs (the old fill ${r.referenceMicros.toFixed(2)}), personalise() ${r.personaliseMicros.toFixed(2)} µs, with message bytes ${r.bytesMicros.toFixed(1)} µs`,
  );
  const rounded = {};
  for (const [key, value] of Object.entries(r)) {
    rounded[key] = key.endsWith('Micros') ? round(value, 2) : key === 'buildMs' ? round(value) : value;
  }
  return rounded;
}

// ---- the profile ----------------------------------------------------------------------------------

async function profile(results) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'newsletter-bench-prof-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const run = await sendDueRun('profile', SIZES.profile, DEFAULTS, {
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`],
  });
  await run.ws.remove();
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length !== 1) throw new Error(`profile: expected one .cpuprofile, found ${files.length}`);
  const summary = summariseProfile(path.join(dir, files[0]), ROOT);
  results.commands.profile = [
    `node --cpu-prof bench/rusage.js OUT.json bin/newsletter.js send-due   # ${SIZES.profile} recipients, as the throughput run`,
  ];
  log(`profile (${SIZES.profile} messages, ${summary.totalMs} ms sampled):\n${profileTable(summary)}`);
  return {
    messages: SIZES.profile,
    rate: run.rate,
    cpuMicrosPerMessage: run.cpuMicrosPerMessage,
    ...summary,
  };
}

// ---- plumbing -------------------------------------------------------------------------------------

function log(text) {
  process.stderr.write(`bench: ${text}\n`);
}

async function readJson(file) {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return null;
  }
}

async function finish() {
  sink?.stop();
  killChildren();
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
}

process.on('SIGINT', () => {
  finish().finally(() => process.exit(130));
});

if (argv.includes('--render')) {
  // Re-renders docs/benchmarks.md from the saved results (after editing bench/NOTES.md).
  const after = await readJson(path.join(ROOT, 'bench', 'results', 'latest.json'));
  const before = await readJson(path.join(ROOT, 'bench', 'results', 'before.json'));
  if (!after) throw new Error('no bench/results/latest.json: run `npm run bench` first');
  await writeFile(path.join(ROOT, 'docs', 'benchmarks.md'), renderDoc({ after, before }));
  log('wrote docs/benchmarks.md');
} else {
  try {
    await main();
  } finally {
    await finish();
  }
}
