/**
 * Renders docs/benchmarks.md from the results of one `npm run bench` (and, when present, the
 * baseline kept in bench/results/before.json, measured by the same script on the code before
 * the fast send path). Figures are compared as ratios against yardsticks measured in the same run.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './lib.js';
import { profileTable } from './profile.js';

const GOALS = {
  ratio: 0.5,
  cpu: 150,
  idle: 2,
  rss: 200,
  scale: 11,
  personalise: 2,
};

const fmt = (value, unit = '') => (value === null || value === undefined ? '–' : `${value}${unit}`);
const pass = (ok) => (ok === null ? '' : ok ? '✅' : '❌');

export function renderDoc({ after, before }) {
  const notes = readNotes();
  const a = after.sections;
  const b = before?.sections ?? null;
  const m = after.machine;
  const lines = [];
  lines.push(
    '# Benchmarks',
    '',
    'Written by `npm run bench` (bench/run.js); do not edit by hand. Every comparison runs in one',
    'script on one machine, each against a yardstick measured in the same run: the machine is shared',
    'and noisy, so the ratios are the figures to trust, the absolute rates only describe this run.',
    '',
    `- machine: ${m.cpu}, ${m.cores} cores, ${m.ramGiB} GiB RAM, ${m.kernel}`,
    `- Node ${m.node}; run ${m.date}`,
    before ? `- before: the same script on the code before the fast send path (${before.machine.date})` : '',
    '',
    '## Goals',
    '',
    '| # | goal | before | after | |',
    '| --- | --- | ---: | ---: | --- |',
  );
  const row = (n, goal, beforeValue, afterValue, ok) =>
    lines.push(`| ${n} | ${goal} | ${fmt(beforeValue)} | ${fmt(afterValue)} | ${pass(ok)} |`);
  const t = a.throughput;
  const tb = b?.throughput;
  row(
    1,
    `send-due rate / raw pipelined client rate ≥ ${GOALS.ratio}`,
    tb && `${tb.ratio} (${tb.sendDue.rate}/s vs ${tb.yardstick.rate}/s)`,
    t && `${t.ratio} (${t.sendDue.rate}/s vs ${t.yardstick.rate}/s)`,
    t ? t.ratio >= GOALS.ratio : null,
  );
  row(
    2,
    `CPU per message ≤ ${GOALS.cpu} µs`,
    tb && `${tb.sendDue.cpuMicrosPerMessage} µs`,
    t && `${t.sendDue.cpuMicrosPerMessage} µs`,
    t ? t.sendDue.cpuMicrosPerMessage <= GOALS.cpu : null,
  );
  const i = a.idle;
  const ib = b?.idle;
  row(
    3,
    `idle send-due / \`node -e 0\` ≤ ${GOALS.idle}×`,
    ib && `${ib.ratio}× (${ib.medianMs.sendDue} vs ${ib.medianMs.node} ms)`,
    i && `${i.ratio}× (${i.medianMs.sendDue} vs ${i.medianMs.node} ms)`,
    i ? i.ratio <= GOALS.idle : null,
  );
  const s = a.scale;
  const sb = b?.scale;
  row(
    '4a',
    `import + dry run of 1M: peak RSS ≤ ${GOALS.rss} MB`,
    sb && `${sb.peakRssMiB} MiB`,
    s && `${s.peakRssMiB} MiB`,
    s ? s.peakRssMiB * 1.048576 <= GOALS.rss : null,
  );
  row(
    '4b',
    `1M time / 100k time ≤ ${GOALS.scale}`,
    sb && `${sb.timeRatio}`,
    s && `${s.timeRatio}`,
    s?.timeRatio != null ? s.timeRatio <= GOALS.scale : null,
  );
  const p = a.personalise;
  const pb = b?.personalise;
  row(
    5,
    `personalisation of a ~40 KB template ≤ ${GOALS.personalise} µs per recipient`,
    pb && `${pb.personaliseMicros} µs`,
    p && `${p.personaliseMicros} µs`,
    p ? p.personaliseMicros <= GOALS.personalise : null,
  );
  lines.push(
    '',
    'MJML compiles exactly once per newsletter per run: test/unit/compile-once.test.ts counts them.',
    '',
  );

  if (t) {
    lines.push(
      '## 1–2. Throughput and CPU per message',
      '',
      `${t.sendDue.messages} recipients, \`templates/digest-40k.mjml\` (${t.sendDue.bytesPerMessage} bytes per message as`,
      'the sink received them: personalised subject, HTML and text parts, List-Unsubscribe with a signed',
      'token, List-Id, Message-ID), the ledger in SQLite with `synchronous=FULL`. The sink is',
      '`bench/sink.js`, another process. The raw client (`bench/raw-client.js`) sends the very bytes of',
      'one captured send-due message, pipelined, once before and once after send-due; the yardstick is',
      'its best rate. Rates are messages per second of the whole process (start to exit: Node start-up,',
      'MJML build, claims, sends, outcome writes); "at the sink" is first to last message received.',
      '',
      '| run | rate | at the sink | CPU per message | peak RSS |',
      '| --- | ---: | ---: | ---: | ---: |',
    );
    const sendRow = (label, r) =>
      lines.push(
        `| ${label} | ${r.rate}/s | ${r.sinkRate}/s | ${r.cpuMicrosPerMessage} µs | ${r.maxRssMiB} MiB |`,
      );
    if (tb) {
      sendRow(`before: send-due, batch ${tb.sendDue.config.batch}, ${tb.sendDue.config.connections} connections`, tb.sendDue);
      sendRow(`before: send-due at the defaults (batch ${tb.defaults.config.batch}, ${tb.defaults.config.connections} connections, ${tb.defaults.messages} recipients)`, tb.defaults);
    }
    sendRow(`send-due, batch ${t.sendDue.config.batch}, ${t.sendDue.config.connections} connections`, t.sendDue);
    sendRow(`send-due at the defaults (batch ${t.defaults.config.batch}, ${t.defaults.config.connections} connections, ${t.defaults.messages} recipients)`, t.defaults);
    for (const r of t.raw) {
      lines.push(`| raw client, ${r.connections} connections | ${r.rate}/s | ${r.innerRate}/s | ${r.cpuMicrosPerMessage} µs | |`);
    }
    lines.push(
      '',
      `Ratio send-due / raw: ${t.ratio} by whole-process rate, ${t.sinkRatio} at the sink` +
        (tb ? ` (before: ${tb.ratio} and ${tb.sinkRatio}).` : '.'),
      '',
    );
  }

  if (i) {
    lines.push(
      '## 3. Idle cron run',
      '',
      `Median wall time of ${i.runs} runs each, interleaved: \`send-due\` with nothing due ${i.medianMs.sendDue} ms,`,
      `\`node -e 0\` ${i.medianMs.node} ms: ${i.ratio}×${ib ? ` (before: ${ib.ratio}×, ${ib.medianMs.sendDue} vs ${ib.medianMs.node} ms)` : ''}.`,
      '',
    );
  }

  if (s) {
    lines.push(
      '## 4. Scale: import and dry run',
      '',
      '| recipients | import | dry run | total | dry run per recipient | peak RSS (import / dry run) |',
      '| ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    const scaleRows = (label, rows) => {
      for (const r of rows) {
        lines.push(
          `| ${label}${r.recipients.toLocaleString('en')} | ${r.importMs} ms | ${r.dryRunMs} ms | ${r.totalMs} ms | ${r.dryRunMicrosPerRecipient} µs | ${r.importMaxRssMiB} / ${r.dryRunMaxRssMiB} MiB |`,
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
      `The ~40 KB benchmark template (${p.htmlBytes} bytes of HTML, ${p.textBytes} of text) built once (${p.buildMs} ms with`,
      `MJML loaded cold), then per recipient over ${p.recipients.toLocaleString('en')} recipients:`,
      '',
      '| | before | after |',
      '| --- | ---: | ---: |',
      `| \`personalise(recipient)\` (subject, HTML, text, signed unsubscribe link, headers) | ${fmt(pb?.personaliseMicros, ' µs')} | ${p.personaliseMicros} µs |`,
      `| … and the complete message bytes the transport hands over | ${fmt(pb?.bytesMicros, ' µs')} | ${p.bytesMicros} µs |`,
      '',
      `Message bytes: before ${fmt(pb?.bytesHow)}, after ${p.bytesHow}; ${p.messageBytes} bytes.`,
      '',
    );
  }

  if (a.profile || b?.profile) {
    lines.push('## Profiles', '');
    for (const [label, prof] of [
      ['Before', b?.profile],
      ['After', a.profile],
    ]) {
      if (!prof) continue;
      lines.push(
        `### ${label}: send-due, ${prof.messages} messages (${prof.rate}/s, ${prof.cpuMicrosPerMessage} µs CPU per message), ${prof.totalMs} ms sampled`,
        '',
        profileTable(prof),
        '',
      );
    }
  }

  if (notes) lines.push(notes.trim(), '');

  lines.push('## Commands', '', '```sh', 'npm run bench   # npm run build && node bench/run.js');
  for (const [section, commands] of Object.entries(after.commands)) {
    lines.push(`# ${section}`, ...commands);
  }
  lines.push('```', '');
  return lines.filter((line, index, all) => !(line === '' && all[index - 1] === '')).join('\n');
}

/** The hand-written part: bench/NOTES.md (what dominated, what changed), kept in the document. */
function readNotes() {
  try {
    return readFileSync(path.join(ROOT, 'bench', 'NOTES.md'), 'utf8');
  } catch {
    return null;
  }
}
