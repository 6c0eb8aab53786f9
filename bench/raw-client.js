/**
 * The yardstick: a minimal SMTP client that pipelines (RFC 2920) and does nothing else.
 *
 * `node bench/raw-client.js PORT COUNT CONNECTIONS MESSAGE_FILE` sends COUNT copies of the
 * message in MESSAGE_FILE (already a complete RFC 5322 message) over CONNECTIONS connections to
 * 127.0.0.1:PORT. Per connection: EHLO once, then for each message MAIL FROM + RCPT TO + DATA in
 * one write; on the 354 the data, the final "." and the next message's envelope go out in one
 * write, so every message costs one round trip. The payload is dot-stuffed once, up front. No
 * ledger, no personalisation, no MIME: the physical limit of this machine and this sink.
 *
 * Prints one JSON line: { messages, ms, rate }.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';

const [port, count, connections, file] = process.argv.slice(2);
const total = Number(count);
const lanes = Number(connections);
const payload = stuff(readFileSync(file));

function stuff(raw) {
  let text = raw.toString('latin1').replace(/\r?\n/g, '\r\n');
  if (!text.endsWith('\r\n')) text += '\r\n';
  return Buffer.from(text.replace(/(^|\r\n)\./g, '$1..'), 'latin1');
}

const envelope = (i) =>
  Buffer.from(`MAIL FROM:<news@example.org>\r\nRCPT TO:<reader${i}@example.net>\r\nDATA\r\n`, 'latin1');
const DOT = Buffer.from('.\r\n');

function lane(first, howMany) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1');
    socket.setNoDelay(true);
    let buffered = '';
    let sent = 0;
    let done = 0;
    // What each reply means, in order: greeting, EHLO, then per message MAIL, RCPT, DATA (354), end.
    const expect = ['greeting'];
    const onReply = (code, kind) => {
      if (kind === 'greeting') {
        expect.push('ehlo');
        socket.write('EHLO bench.local\r\n');
      } else if (kind === 'ehlo') {
        if (howMany === 0) return finish();
        socket.write(envelope(first + sent));
        expect.push('mail', 'rcpt', 'data');
      } else if (kind === 'data') {
        if (code !== 354) return reject(new Error(`DATA got ${code}`));
        sent += 1;
        expect.push('end');
        if (sent < howMany) {
          socket.write(Buffer.concat([payload, DOT, envelope(first + sent)]));
          expect.push('mail', 'rcpt', 'data');
        } else {
          socket.write(Buffer.concat([payload, DOT]));
        }
      } else if (kind === 'end') {
        if (code !== 250) return reject(new Error(`end of data got ${code}`));
        done += 1;
        if (done === howMany) finish();
      } else if (code >= 400) {
        reject(new Error(`${kind} got ${code}`));
      }
    };
    const finish = () => {
      socket.end('QUIT\r\n');
      resolve(done);
    };
    socket.setEncoding('latin1');
    socket.on('data', (chunk) => {
      buffered += chunk;
      let end = buffered.indexOf('\r\n');
      while (end !== -1) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        // A multi-line reply ("250-…") ends with its "250 " line.
        if (line[3] !== '-') onReply(Number(line.slice(0, 3)), expect.shift());
        end = buffered.indexOf('\r\n');
      }
    });
    socket.on('error', reject);
  });
}

const started = performance.now();
const per = Math.floor(total / lanes);
const shares = Array.from({ length: lanes }, (_, i) => per + (i < total % lanes ? 1 : 0));
let first = 0;
const results = await Promise.all(
  shares.map((share) => {
    const start = first;
    first += share;
    return lane(start, share);
  }),
);
const ms = performance.now() - started;
const messages = results.reduce((a, b) => a + b, 0);
process.stdout.write(`${JSON.stringify({ messages, ms, rate: (messages / ms) * 1000 })}\n`);
