/**
 * The chaos driver's end: the operator's reconcile, and the invariants it checks.
 *
 * - every recipient of every newsletter has exactly one ledger row, in a final state (after the
 *   final clean run and the reconcile of `unknown` deliveries, as an operator would do them):
 *   `sent`, or `failed` when the 451 spells refused it at every step of NEWSLETTER_RETRY_AFTER;
 * - the SMTP server received every `sent` message once and every `failed` one never: nobody
 *   twice, nobody marked sent who was not;
 * - `unknown` deliveries (before the reconcile) are bounded by the batches in flight when faults
 *   hit: each fault could leave at most two batches per run it hit (from a run's second batch on,
 *   the next batch is claimed while the one before is on the wire: src/engine/send-newsletter.ts;
 *   a cut connection: the messages in flight on it), and every run with an unknown delivery was
 *   hit by a fault;
 * - every newsletter is `sent`;
 * - no run crashed (hosts.js): no stack trace, no exit 1, no exit code a fault does not explain.
 */
import { LEDGER_REASON } from '../../dist/domain/ledger-reasons.js';

/** Unknown deliveries per run, with the run's host and life: what the faults left behind. */
export async function unknownsByRun(query) {
  return query(
    `SELECT d.run_id, r.host_id, r.started_at, r.ended_at, d.reason, count(*)::int AS n
       FROM deliveries d LEFT JOIN runs r ON r.id = d.run_id
      WHERE d.state = 'unknown' GROUP BY d.run_id, r.host_id, r.started_at, r.ended_at, d.reason`,
  );
}

/**
 * What an operator does with `unknown` deliveries: looks each up in the mail server's log (here,
 * the sink's record), marks the delivered ones sent and has the rest resent.
 */
export async function reconcileUnknowns({ query, cli, sink, rounds }) {
  let markedSent = 0;
  let resent = 0;
  for (const [round, newsletterId] of rounds) {
    const unknown = await query(
      "SELECT address FROM deliveries WHERE newsletter_id = $1 AND state = 'unknown'",
      [newsletterId],
    );
    if (unknown.length === 0) continue;
    const delivered = unknown
      .map((row) => row.address)
      .filter((address) => sink.receivedCount(round, address) > 0);
    for (let i = 0; i < delivered.length; i += 200) {
      await cli(['reconcile', String(newsletterId), '--mark-sent', ...delivered.slice(i, i + 200)]);
    }
    markedSent += delivered.length;
    if (delivered.length < unknown.length) {
      await cli(['reconcile', String(newsletterId), '--resend']);
      resent += unknown.length - delivered.length;
    }
  }
  return { markedSent, resent };
}

/** A fault window: from its start to its end, plus two leases (what it left may settle that late). */
function hit(fault, run, leaseMs) {
  const runEnd = run.ended_at ?? Number.MAX_SAFE_INTEGER;
  return fault.at <= runEnd && run.started_at <= fault.until + 2 * leaseMs;
}

export async function checkInvariants({
  query,
  sink,
  rounds,
  recipients,
  faults,
  hosts,
  unknownBefore,
  batch,
  leaseMs,
}) {
  const violations = [];
  let duplicates = 0;
  let failed = 0;
  for (const [round, newsletterId] of rounds) {
    const [newsletter] = await query('SELECT status FROM newsletters WHERE id = $1', [newsletterId]);
    if (newsletter?.status !== 'sent')
      violations.push(`newsletter ${newsletterId} (round ${round}) is ${newsletter?.status}, not sent`);
    const rows = await query('SELECT address, state FROM deliveries WHERE newsletter_id = $1', [
      newsletterId,
    ]);
    const states = new Map();
    for (const row of rows) {
      if (states.has(row.address))
        violations.push(`newsletter ${newsletterId}: two ledger rows for ${row.address}`);
      states.set(row.address, row.state);
    }
    for (const address of recipients) {
      const state = states.get(address);
      const received = sink.receivedCount(round, address);
      if (state === 'failed') failed += 1;
      if (state !== 'sent' && state !== 'failed')
        violations.push(
          `newsletter ${newsletterId}: ${address} is ${state ?? 'missing'}, not in a final state`,
        );
      if (received > 1) {
        duplicates += received - 1;
        violations.push(`newsletter ${newsletterId}: ${address} received ${received} times`);
      } else if (state === 'sent' && received === 0)
        violations.push(`newsletter ${newsletterId}: ${address} is sent but never reached the SMTP server`);
      else if (state === 'failed' && received !== 0)
        violations.push(`newsletter ${newsletterId}: ${address} is failed but the SMTP server has it`);
    }
  }

  // Unknown, and the faults that explain it.
  const runs = await query('SELECT id, host_id, started_at, ended_at FROM runs');
  const perKind = {};
  let total = 0;
  for (const group of unknownBefore) {
    total += group.n;
    const run = {
      started_at: Number(group.started_at),
      ended_at: group.ended_at === null ? null : Number(group.ended_at),
    };
    const candidates = faults.filter(
      (fault) => hit(fault, run, leaseMs) && (fault.host === null || fault.host === group.host_id),
    );
    // A run records an SMTP server's silence itself, with the transport's words as the reason; a
    // run that is gone (or gave up) leaves one of the ledger's own reasons. Then the most direct
    // cause first: a fault on that run's own host, then the database.
    const byRun = Object.values(LEDGER_REASON).includes(group.reason);
    const order = byRun ? ['kill', 'stop', 'freeze', 'restart', 'cutAfterData'] : ['cutAfterData'];
    const cause = order.find((kind) => candidates.some((fault) => fault.kind === kind)) ?? 'none';
    perKind[cause] = (perKind[cause] ?? 0) + group.n;
    if (cause === 'none')
      violations.push(
        `run ${group.run_id} on ${group.host_id} left ${group.n} unknown with no fault to explain it`,
      );
    if (group.n > 2 * batch)
      violations.push(`run ${group.run_id} left ${group.n} unknown, more than two batches (2 × ${batch})`);
  }
  const bound = faults.reduce((sum, fault) => {
    if (fault.kind === 'cutAfterData' || fault.kind === 'cutAtRcpt') return sum + 3 * fault.inFlight;
    if (fault.kind === 'tempfail') return sum;
    return sum + 2 * batch * fault.inFlight;
  }, 0);
  if (total > bound)
    violations.push(`${total} unknown deliveries, more than the ${bound} in flight when faults hit`);

  const crashes = hosts.flatMap((host) => host.crashes.map((crash) => ({ host: host.id, ...crash })));
  for (const crash of crashes)
    violations.push(`${crash.host}: a run ended badly (exit ${crash.code}, signal ${crash.signal})`);

  const exits = {};
  for (const host of hosts)
    for (const run of host.runs) {
      const key = run.signal ?? String(run.code);
      exits[key] = (exits[key] ?? 0) + 1;
    }
  const faultCounts = {};
  for (const fault of faults) faultCounts[fault.kind] = (faultCounts[fault.kind] ?? 0) + 1;
  return {
    newsletters: rounds.size,
    messages: rounds.size * recipients.length,
    /** `send-due` processes started by the hosts (idle ones included), and the runs they registered. */
    processes: Object.values(exits).reduce((sum, n) => sum + n, 0),
    runs: runs.length,
    exits,
    faults: faultCounts,
    unknown: { total, bound, perFault: perKind },
    /** Recipients whose every attempt met a 451 spell: `failed`, a final outcome. */
    failed,
    duplicates,
    violations,
  };
}
