/**
 * Renders docs/benchmarks.md from the results of one `npm run bench` and, when present, the
 * baseline kept in bench/results/before.json (the same script, run on the code before the fast
 * send path). Figures are compared as ratios against yardsticks measured in the same run; the
 * hand-written part (what dominated, what changed, why it is safe) is bench/NOTES.md.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './lib.js';
import { renderMultihost } from './multihost.js';
import { profileTable } from './profile.js';

const GOALS = { ratio: 0.5, cpu: 150, idle: 2, rssMB: 200, scale: 11, personalise: 2 };
/** Issue 17, "Fast at the defaults, on PostgreSQL too": every figure a ratio within this run. */
const GOALS_17 = {
  defaultsRatio: 0.6,
  defaultsCpuTimesRaw: 3,
  tunedRatio: 0.75,
  postgresVsSqlite: 0.75,
  slowHosts: 2.8,
  idle: 2,
  rssMB: 200,
};

const fmt = (value, unit = '') => (value === null || value === undefined ? '–' : `${value}${unit}`);
const mb = (mib) => Math.round(mib * 1.048576);
const mark = (ok) => (ok === null || ok === undefined ? '' : ok ? 'yes' : '**no**');

export function renderDoc({ after, before }) {
  const a = after.sections;
  const b = before?.sections ?? null;
  const m = after.machine;
  const lines = [];
  const t = a.throughput;
  const tb = b?.throughput;
  const cpu = (x) => x && (x.cpuMicrosPerMessage ?? x.sendDue.cpuMicrosPerMessage);
  const i = a.idle;
  const ib = b?.idle;
  const s = a.scale;
  const sb = b?.scale;
  const p = a.personalise;
  const pb = b?.personalise;

  lines.push(
    '# Benchmarks',
    '',
    'Written by `npm run bench` (bench/run.js, bench/NOTES.md); do not edit by hand. Every comparison',
    'runs in one script on one machine, against a yardstick measured in the same run: the machine is',
    'shared and noisy, so the ratios are the figures to trust; absolute rates describe one run.',
    '',
    `- machine: ${m.cpu}, ${m.cores} cores, ${m.ramGiB} GiB RAM, ${m.kernel}`,
    `- Node ${m.node}; this run ${m.date}`,
    before ? `- "before": the same script on the code before this work (run ${before.machine.date})` : '',
    '',
    '## Goals',
    '',
    '| # | goal | before | after | met |',
    '| --- | --- | ---: | ---: | :---: |',
  );
  const row = (n, goal, was, now, ok) =>
    lines.push(`| ${n} | ${goal} | ${fmt(was)} | ${fmt(now)} | ${mark(ok)} |`);
  row(
    1,
    `send-due / raw pipelined client, messages per second ≥ ${GOALS.ratio}`,
    tb && `${tb.ratio} (${tb.sendDue.rate} / ${tb.yardstick.rate})`,
    t && `${t.ratio} (${t.sendDue.rate} / ${t.yardstick.rate})`,
    t ? t.ratio >= GOALS.ratio : null,
  );
  row(
    2,
    `CPU per message ≤ ${GOALS.cpu} µs`,
    tb && `${cpu(tb)} µs`,
    t && `${cpu(t)} µs`,
    t ? cpu(t) <= GOALS.cpu : null,
  );
  row(
    3,
    `idle \`send-due\` / \`node -e 0\`, medians ≤ ${GOALS.idle}×`,
    ib && `${ib.ratio}× (${ib.medianMs.sendDue} / ${ib.medianMs.node} ms)`,
    i && `${i.ratio}× (${i.medianMs.sendDue} / ${i.medianMs.node} ms)`,
    i ? i.ratio <= GOALS.idle : null,
  );
  row(
    '4a',
    `import + dry run of 1,000,000: peak RSS ≤ ${GOALS.rssMB} MB`,
    sb && `${mb(sb.peakRssMiB)} MB`,
    s && `${mb(s.peakRssMiB)} MB`,
    s ? mb(s.peakRssMiB) <= GOALS.rssMB : null,
  );
  row(
    '4b',
    `import + dry run: 1M time / 100k time ≤ ${GOALS.scale}`,
    sb?.timeRatio,
    s?.timeRatio,
    s?.timeRatio != null ? s.timeRatio <= GOALS.scale : null,
  );
  row(
    5,
    `personalisation, ~40 KB template ≤ ${GOALS.personalise} µs per recipient`,
    p && `${p.referenceMicros} µs (the old fill, same run)`,
    p && `${p.substituteMicros} µs`,
    p ? p.substituteMicros <= GOALS.personalise : null,
  );
  renderGoals17(lines, a);
  lines.push(
    '',
    'MJML is compiled at most once per newsletter per run (test/unit/compile-once.test.ts counts the',
    'compiles at mjml itself, through the real build, engine and store), and not at all when `create`',
    'kept the HTML it compiled (src/render/compiled-template.ts; test/e2e/cron-quiet.test.ts).',
    '',
  );

  if (t) {
    lines.push(
      '## 1–2. Throughput and CPU per message',
      '',
      `${t.sendDue.messages} recipients of \`bench/templates/digest-40k.mjml\` (${t.sendDue.bytesPerMessage} bytes per message`,
      'at the sink: personalised subject, HTML and text parts, List-Unsubscribe with a signed token,',
      'List-Id, Message-ID), the ledger in SQLite: each batch claimed in one transaction, committed and',
      'its WAL fsynced (off the event loop) before any of it is sent, its outcomes written in one more',
      '(fsynced by a later claim); two batches overlap (src/engine/send-newsletter.ts). The sink',
      '(`bench/sink.js`) is another process; the raw client (`bench/raw-client.js`) sends the bytes of',
      'one message send-due sent, pipelined, one round trip per message. Rates are messages per second',
      'of the whole process, from start to exit (Node start-up, MJML build, claims, sends, writes);',
      `"at the sink" is first to last message received. Best of ${t.rounds ?? 1} rounds for each side.`,
      '',
      '| run | rate | at the sink | CPU per message | sink busy | peak RSS |',
      '| --- | ---: | ---: | ---: | ---: | ---: |',
    );
    const sendRow = (label, r) =>
      lines.push(
        `| ${label} | ${r.rate}/s | ${r.sinkRate}/s | ${r.cpuMicrosPerMessage} µs | ${fmt(r.sinkBusy)} | ${r.maxRssMiB} MiB |`,
      );
    const label = (r, what = 'send-due') =>
      `${what}, ${batchWords(r.config.batch)}, ${r.config.connections} connections${r.messages !== t.sendDue.messages ? `, ${r.messages} recipients` : ''}`;
    if (tb) {
      sendRow(`before: ${label(tb.sendDue)}`, tb.sendDue);
      sendRow(`before: ${label(tb.defaults, 'at the defaults')}`, tb.defaults);
    }
    for (const r of t.runs ?? [t.sendDue]) sendRow(label(r), r);
    for (const r of t.defaultRuns ?? [t.defaults]) sendRow(label(r, 'at the defaults'), r);
    for (const r of t.raw) {
      lines.push(
        `| raw client, ${r.connections} connections | ${r.rate}/s | ${r.innerRate}/s | ${r.cpuMicrosPerMessage} µs | ${fmt(r.sinkBusy)} | |`,
      );
    }
    lines.push(
      '',
      `send-due / raw: ${t.ratio} by whole-process rate, ${t.sinkRatio} at the sink` +
        (tb ? ` (before: ${tb.ratio} and ${tb.sinkRatio}).` : '.') +
        (t.defaultsRatio != null
          ? ` At the defaults (${batchWords(t.defaults.config.batch)}, ${t.defaults.config.connections} connections): ${t.defaultsRatio}.`
          : ''),
      '',
    );
  }

  if (i) {
    lines.push(
      '## 3. Idle cron run',
      '',
      `Median wall time of ${i.runs} runs each, interleaved, from spawn to exit: \`send-due\` with nothing due`,
      `${i.medianMs.sendDue} ms, \`node -e 0\` ${i.medianMs.node} ms: ${i.ratio}×` +
        (ib ? ` (before: ${ib.ratio}×, ${ib.medianMs.sendDue} / ${ib.medianMs.node} ms).` : '.'),
      '',
    );
    if (i.ratioHostDetected !== undefined) {
      lines.push(
        `Without NEWSLETTER_HOST_ID (the host id worked out in every run, as most crontabs run it):`,
        `${i.medianMs.sendDueHostDetected} ms, ${i.ratioHostDetected}×.`,
        '',
      );
    }
  }

  if (s) {
    lines.push(
      '## 4. Scale: import and dry run',
      '',
      'The dry run runs twice on the imported database; the faster counts, and the higher peak RSS.',
      '',
      '| recipients | import | dry run | total | dry run per recipient | peak RSS, import / dry run |',
      '| ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    const scaleRows = (prefix, rows) => {
      for (const r of rows) {
        lines.push(
          `| ${prefix}${r.recipients.toLocaleString('en')} | ${r.importMs} ms | ${r.dryRunMs} ms | ${r.totalMs} ms | ${r.dryRunMicrosPerRecipient} µs | ${mb(r.importMaxRssMiB)} / ${mb(r.dryRunMaxRssMiB)} MB |`,
        );
      }
    };
    if (sb) scaleRows('before: ', sb.rows);
    scaleRows('', s.rows);
    lines.push('', `1M / 100k time: ${s.timeRatio}${sb ? ` (before: ${sb.timeRatio})` : ''}.`, '');
  }

  if (p) {
    lines.push(
      '## 5. Personalisation',
      '',
      `\`bench/templates/digest-40k.mjml\`: ${p.htmlBytes} bytes of HTML, ${p.textBytes} of text, built once (${p.buildMs} ms, MJML`,
      `loaded cold); then µs per recipient, over ${p.recipients.toLocaleString('en')} recipients:`,
      '',
      '| | µs |',
      '| --- | ---: |',
      `| the template work: every field of subject, HTML and text looked up, escaped or URL-checked (the goal) | ${p.substituteMicros} |`,
      `| the same, and HTML and text filled into strings | ${p.substituteStringMicros} |`,
      `| the fill before this change (pre-split template, slot by slot), same run | ${p.referenceMicros} |`,
      `| the signed unsubscribe token alone (HMAC-SHA256) | ${p.tokenMicros} |`,
      `| \`personalise(recipient)\`: all of the above, headers, the message | ${p.personaliseMicros} |`,
      `| … and the message's ${p.messageBytes} bytes as the SMTP client writes them | ${p.bytesMicros} |`,
      '',
      pb
        ? `Before: \`personalise(recipient)\` took ${pb.personaliseMicros} µs; building its bytes with nodemailer's MailComposer ${pb.bytesMicros} µs.`
        : '',
      '',
    );
  }

  if (a.multihost) lines.push(renderMultihost(a.multihost), '');

  if (a.bounces) {
    const m = a.bounces;
    lines.push(
      '## Bounce mailbox: a large mbox, streamed',
      '',
      `\`newsletter bounces import\` of a generated mbox of ${m.mboxBytes.toLocaleString('en')} bytes (${m.messages.toLocaleString('en')}`,
      'Postfix-style DSNs returning the whole original message, `From ` lines quoted in bodies, one',
      'message over the 10 MiB a message is read to). Goal: peak RSS under',
      `${m.limitMiB} MiB whatever the file's size (the code before read it whole: 1.3 GB of RSS for 400 MB).`,
      '',
      '| mbox | time | MiB/s | CPU | peak RSS | goal met |',
      '| ---: | ---: | ---: | ---: | ---: | :---: |',
      `| ${Math.round(m.mboxBytes / 1024 / 1024)} MiB | ${m.seconds} s | ${m.mibPerSecond} | ${m.cpuSeconds} s | ${m.peakRssMiB} MiB | ${m.withinLimit ? 'yes' : '**no**'} |`,
      '',
    );
  }

  const notes = readNotes();
  if (notes) lines.push(notes.trim(), '');

  if (a.profile || b?.profile) {
    lines.push('## Profiles', '');
    for (const [label, prof] of [
      ['Before', b?.profile],
      ['After', a.profile],
    ]) {
      if (!prof) continue;
      lines.push(
        `### ${label}: send-due, ${prof.messages} messages (${prof.rate}/s, ${prof.cpuMicrosPerMessage} µs CPU per message under the profiler), ${prof.totalMs} ms sampled`,
        '',
        profileTable(prof),
        '',
      );
    }
  }

  lines.push('## Commands', '', '```sh', 'npm run bench   # npm run build && node bench/run.js');
  for (const [section, commands] of Object.entries(after.commands)) lines.push(`# ${section}`, ...commands);
  lines.push('```', '');
  return lines.filter((line, index, all) => !(line === '' && all[index - 1] === '')).join('\n');
}

/** The hand-written part: bench/NOTES.md. */
function readNotes() {
  try {
    return readFileSync(path.join(ROOT, 'bench', 'NOTES.md'), 'utf8');
  } catch {
    return null;
  }
}

/** Issue 17's goals, each a ratio measured within this run (sections 1–2, 3, 4 and 6). */
function renderGoals17(lines, a) {
  const t = a.throughput;
  const mh = a.multihost;
  const g = GOALS_17;
  const cpuTimes = t?.rawCpuMicrosPerMessage
    ? Math.round((t.defaultsCpuMicrosPerMessage / t.rawCpuMicrosPerMessage) * 100) / 100
    : null;
  const rows = [
    [
      '17.1a',
      `the defaults (NEWSLETTER_BATCH unset, 3 connections) / raw client, messages per second ≥ ${g.defaultsRatio}`,
      t && `${t.defaultsRatio} (${t.defaults.rate} / ${t.yardstick.rate})`,
      t ? t.defaultsRatio >= g.defaultsRatio : null,
    ],
    [
      '17.1b',
      `CPU per message at the defaults ≤ ${g.defaultsCpuTimesRaw}× the raw client's`,
      cpuTimes !== null && `${cpuTimes}× (${t.defaultsCpuMicrosPerMessage} / ${t.rawCpuMicrosPerMessage} µs)`,
      cpuTimes !== null ? cpuTimes <= g.defaultsCpuTimesRaw : null,
    ],
    [
      '17.2',
      `batch 200, 4 connections / raw client ≥ ${g.tunedRatio}`,
      t && `${t.ratio} (${t.sendDue.rate} / ${t.yardstick.rate})`,
      t ? t.ratio >= g.tunedRatio : null,
    ],
    [
      '17.3',
      `PostgreSQL, 1 host / SQLite, the same settings ≥ ${g.postgresVsSqlite}`,
      mh?.sqlite && `${mh.postgresVsSqlite} (${mh.one.rate} / ${mh.sqlite.rate})`,
      mh?.sqlite ? mh.postgresVsSqlite >= g.postgresVsSqlite : null,
    ],
    [
      '17.4',
      `3 hosts / 1 host, a server answering after 20 ms ≥ ${g.slowHosts}×`,
      mh?.slow &&
        `${mh.slow.ratio}× (${mh.slow.three.rate} / ${mh.slow.one.rate})` +
          (mh.slow.sending ? `; sending parts only: ${mh.slow.sending.ratio}×` : '') +
          (mh.slow.ceiling ? `; at most ${mh.slow.ceiling.ratio}× at this size (section 6)` : ''),
      mh?.slow ? mh.slow.ratio >= g.slowHosts : null,
    ],
    [
      '17.5',
      `idle \`send-due\` / \`node -e 0\` ≤ ${g.idle}×`,
      a.idle && `${a.idle.ratio}×`,
      a.idle ? a.idle.ratio <= g.idle : null,
    ],
    [
      '17.6',
      `1,000,000 import + dry run, peak RSS ≤ ${g.rssMB} MB`,
      a.scale && `${mb(a.scale.peakRssMiB)} MB`,
      a.scale ? mb(a.scale.peakRssMiB) <= g.rssMB : null,
    ],
  ];
  lines.push(
    '',
    'Issue 17 ("Fast at the defaults, on PostgreSQL too"), every figure a ratio within this run:',
    '',
    '| # | goal | this run | met |',
    '| --- | --- | ---: | :---: |',
  );
  for (const [n, goal, now, ok] of rows) lines.push(`| ${n} | ${goal} | ${fmt(now)} | ${mark(ok)} |`);
  const r3 = t?.rawAtDefaults;
  if (r3) {
    lines.push(
      '',
      `For scale (17.1a): the bare client itself, with the defaults' ${r3.connections} connections, sent ${r3.rate}/s, ` +
        `${r3.ofYardstick} of the yardstick; send-due at the defaults reached ${r3.defaultsRatio} of that.`,
    );
  }
  lines.push(
    '',
    "One run's figures: on this shared 2-core machine the throughput ratios move by ±0.1 from one hour, " +
      'or one minute, to the next; bench/NOTES.md (below) gives several runs of the same code side by side.',
  );
}

/** A run's batch setting: NEWSLETTER_BATCH, or unset (null, or absent in older results: 20 then). */
export function batchWords(batch) {
  return batch === null ? 'batch by rate (20–200, NEWSLETTER_BATCH unset)' : `batch ${batch ?? 20}`;
}
