/**
 * The benchmark's discarding SMTP server, in a process of its own (started with fork(), driven
 * over IPC): smtp-server on 127.0.0.1, no reverse DNS, STARTTLS hidden, no authentication. It
 * reads every message to its end, counts messages and bytes, answers 250 and keeps nothing,
 * except one message on request (`capture`), which the raw client then sends as its payload.
 *
 * `node bench/sink.js [DELAY_MS]`: with a delay, each message's final 250 waits DELAY_MS, as a
 * remote server that scans, queues and fsyncs each message does. smtp-server handles one
 * transaction at a time per connection, so each connection then carries at most 1000 / DELAY_MS
 * messages per second however fast the client is (the multi-host bench's slow server). A message
 * counts when it is answered: the sender learns of its fate only then.
 *
 * IPC: { cmd: 'reset', capture?: FILE } → { ok }; { cmd: 'stats' } → counts, the times of the
 * first and last message (ms, this process's clock) and this process's CPU time; { cmd: 'exit' }.
 */
import { writeFileSync } from 'node:fs';
import { SMTPServer } from 'smtp-server';

const delayMs = Number(process.argv[2] ?? '0');
if (!Number.isFinite(delayMs) || delayMs < 0) {
  process.stderr.write('usage: node bench/sink.js [DELAY_MS]\n');
  process.exit(2);
}

let stats = fresh();
let capture = null;

function fresh() {
  return { messages: 0, bytes: 0, first: null, last: null, connections: 0 };
}

const server = new SMTPServer({
  name: 'bench-sink',
  banner: 'bench sink',
  disableReverseLookup: true,
  hideSTARTTLS: true,
  disabledCommands: ['STARTTLS'],
  authOptional: true,
  logger: false,
  socketTimeout: 120_000,
  onConnect(_session, callback) {
    stats.connections += 1;
    callback();
  },
  onData(stream, _session, callback) {
    let bytes = 0;
    const keep = capture ? [] : null;
    stream.on('data', (chunk) => {
      bytes += chunk.length;
      keep?.push(chunk);
    });
    stream.on('end', () => {
      const answer = () => {
        const now = performance.now();
        stats.messages += 1;
        stats.bytes += bytes;
        stats.first ??= now;
        stats.last = now;
        if (keep && capture) {
          writeFileSync(capture, Buffer.concat(keep));
          capture = null;
        }
        callback(null, `Ok: queued as B${stats.messages}`);
      };
      if (delayMs > 0) setTimeout(answer, delayMs);
      else answer();
    });
  },
});
server.on('error', () => {
  // A client that goes away mid-session is not the sink's problem.
});

server.listen(0, '127.0.0.1', () => {
  process.send?.({ ready: true, port: server.server.address().port });
});

process.on('message', (message) => {
  switch (message?.cmd) {
    case 'reset':
      stats = fresh();
      capture = message.capture ?? null;
      process.send?.({ ok: true });
      break;
    case 'stats': {
      const cpu = process.cpuUsage();
      process.send?.({ ...stats, cpuMicros: cpu.user + cpu.system });
      break;
    }
    case 'exit':
      server.close(() => process.exit(0));
      setTimeout(() => process.exit(0), 500).unref();
      break;
  }
});
process.on('disconnect', () => process.exit(0));
