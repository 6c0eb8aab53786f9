/**
 * The chaos driver's SMTP server (smtp-server on 127.0.0.1), whose faults the driver switches on
 * and off while the hosts send: a share of messages answered 451 (a 4xx: the sender retries
 * later), connections cut right after the message data (the sender cannot know whether the
 * message was taken: `unknown`), or cut at RCPT TO (no data sent: a retry).
 *
 * It keeps what a mail server's log would tell an operator: per newsletter round (read from the
 * Subject, "Chaos round N") and address, how many times the message data was received, answered
 * or not. A 451 is not a receipt (the server refused it). "Nobody twice" is checked on these
 * counts.
 */
import { SMTPServer } from 'smtp-server';

export async function startChaosSink({ random }) {
  /** round → address → times the data was received (accepted, or cut after it). */
  const received = new Map();
  const faults = { tempfail: 0, cutAfterData: 0, cutAtRcpt: 0 };
  const stats = { accepted: 0, tempfailed: 0, cutAfterData: 0, cutAtRcpt: 0 };
  const sockets = new Map();

  const note = (round, address) => {
    const byAddress = received.get(round) ?? new Map();
    received.set(round, byAddress);
    byAddress.set(address, (byAddress.get(address) ?? 0) + 1);
  };

  const server = new SMTPServer({
    name: 'chaos.sink',
    banner: 'chaos sink',
    disableReverseLookup: true,
    hideSTARTTLS: true,
    disabledCommands: ['STARTTLS'],
    authOptional: true,
    logger: false,
    socketTimeout: 30_000,
    closeTimeout: 500,
    onRcptTo(_address, session, callback) {
      if (faults.cutAtRcpt > 0) {
        faults.cutAtRcpt -= 1;
        stats.cutAtRcpt += 1;
        sockets.get(session.remotePort)?.destroy();
        return;
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks = [];
      stream.on('data', (chunk) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const round = Number(/^Subject: Chaos round (\d+)/m.exec(raw)?.[1] ?? 0);
        const to = session.envelope.rcptTo.map((entry) => entry.address.toLowerCase());
        if (random() < faults.tempfail) {
          stats.tempfailed += 1;
          const error = new Error('4.3.0 Try again later (chaos)');
          error.responseCode = 451;
          callback(error);
          return;
        }
        for (const address of to) note(round, address);
        if (faults.cutAfterData > 0) {
          faults.cutAfterData -= 1;
          stats.cutAfterData += 1;
          sockets.get(session.remotePort)?.destroy();
          return;
        }
        stats.accepted += 1;
        callback(null, 'Ok: queued');
      });
    },
  });
  server.on('error', () => undefined);
  server.server.on('connection', (socket) => {
    const port = socket.remotePort;
    sockets.set(port, socket);
    socket.once('close', () => sockets.delete(port));
  });
  await new Promise((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.server.address();
  return {
    url: `smtp://127.0.0.1:${port}`,
    faults,
    stats,
    /** Times the message of `round` to `address` was received. */
    receivedCount: (round, address) => received.get(round)?.get(address.toLowerCase()) ?? 0,
    received,
    async close() {
      for (const socket of sockets.values()) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
