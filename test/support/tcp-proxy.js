/**
 * A TCP proxy on 127.0.0.1 between one host and PostgreSQL, that a test (or the chaos driver,
 * scripts/chaos/) freezes to simulate a network partition: a few lines of node:net.
 *
 * `freeze()` stops carrying bytes in both directions without closing anything, as a partition
 * does: what either side writes waits in the buffers, no error is raised, every query hangs; new
 * connections are accepted but not carried further. `thaw()` carries everything on, in order.
 * `cut()` destroys every connection at once (a reset), as a failing router would. Plain
 * JavaScript so that the chaos driver, which runs under plain `node`, uses it too;
 * tcp-proxy.d.ts types it.
 */
import { createConnection, createServer } from 'node:net';

export async function startTcpProxy({ targetPort, targetHost = '127.0.0.1' }) {
  let frozen = false;
  const pairs = new Set();

  const server = createServer((client) => {
    const upstream = createConnection({ port: targetPort, host: targetHost });
    // Bytes that arrived while frozen, per direction, carried on in order by thaw().
    const pair = { client, upstream, held: [] };
    pairs.add(pair);
    const end = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    for (const socket of [client, upstream]) {
      socket.on('error', end);
      socket.on('close', end);
    }
    // By hand rather than pipe(): a frozen proxy must hold every byte, whatever backpressure did.
    client.on('data', (chunk) => (frozen ? pair.held.push([upstream, chunk]) : upstream.write(chunk)));
    upstream.on('data', (chunk) => (frozen ? pair.held.push([client, chunk]) : client.write(chunk)));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();

  return {
    port,
    get frozen() {
      return frozen;
    },
    get connections() {
      return pairs.size;
    },
    freeze() {
      frozen = true;
    },
    thaw() {
      frozen = false;
      for (const pair of pairs) {
        for (const [socket, chunk] of pair.held) socket.write(chunk);
        pair.held = [];
      }
    },
    cut() {
      for (const { client, upstream } of [...pairs]) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
    },
    async close() {
      for (const { client, upstream } of [...pairs]) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
      await new Promise((resolve) => server.close(() => resolve(undefined)));
    },
  };
}
