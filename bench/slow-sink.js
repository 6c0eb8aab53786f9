/**
 * `node bench/slow-sink.js DELAY_MS`: the benchmark's discarding SMTP server (as bench/sink.js:
 * smtp-server on 127.0.0.1, no reverse DNS, STARTTLS hidden, no authentication, counts only) that
 * waits DELAY_MS before it answers each message's final 250, as a remote server that scans, queues
 * and fsyncs each message does. smtp-server handles one transaction at a time per connection, so
 * every connection carries at most 1000 / DELAY_MS messages per second however fast the client is:
 * the remote server, not this machine, is the limit, which is what several hosts are for.
 *
 * Same IPC as bench/sink.js: { cmd: 'reset' } → { ok }; { cmd: 'stats' } → counts, the times of
 * the first and last message (ms) and this process's CPU time; { cmd: 'exit' }.
 */
import { SMTPServer } from 'smtp-server';

const delayMs = Number(process.argv[2] ?? '20');
if (!Number.isFinite(delayMs) || delayMs < 0) {
  process.stderr.write('usage: node bench/slow-sink.js DELAY_MS\n');
  process.exit(2);
}

let stats = fresh();

function fresh() {
  return { messages: 0, bytes: 0, first: null, last: null, connections: 0 };
}

const server = new SMTPServer({
  name: 'bench-slow-sink',
  banner: 'bench slow sink',
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
    stream.on('data', (chunk) => {
      bytes += chunk.length;
    });
    stream.on('end', () => {
      // Counted when answered: the sender learns of the message's fate only then.
      setTimeout(() => {
        const now = performance.now();
        stats.messages += 1;
        stats.bytes += bytes;
        stats.first ??= now;
        stats.last = now;
        callback(null, `Ok: queued as S${stats.messages}`);
      }, delayMs);
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
