/**
 * `newsletter status --prometheus` (issue 15): node_exporter's textfile format, read back line by
 * line as the collector reads it: every sample preceded by its HELP and TYPE, every value a
 * number, and the numbers those of the database (due, sending, unknown, failed in the last run,
 * seconds since the last successful run, the hourly quota used).
 */
import { describe, expect, it } from 'vitest';
import { perTest } from '../helpers/workspace.js';

const resources = perTest();

interface Parsed {
  help: Map<string, string>;
  type: Map<string, string>;
  samples: Map<string, number>;
}

/** The text format, strictly: anything else is a failure, not something to skip. */
function parse(text: string): Parsed {
  const parsed: Parsed = { help: new Map(), type: new Map(), samples: new Map() };
  expect(text.endsWith('\n')).toBe(true);
  for (const line of text.slice(0, -1).split('\n')) {
    const help = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (gauge|counter)$/.exec(line);
    const sample =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-z_]+="(?:[^"\\\n]|\\.)*"(?:,[a-z_]+="(?:[^"\\\n]|\\.)*")*\})? (\S+)$/.exec(
        line,
      );
    if (help) parsed.help.set(help[1]!, help[2]!);
    else if (type) {
      expect(parsed.help.has(type[1]!), `HELP before TYPE of ${type[1]}`).toBe(true);
      parsed.type.set(type[1]!, type[2]!);
    } else if (sample) {
      expect(parsed.type.has(sample[1]!), `TYPE before ${sample[1]}`).toBe(true);
      const value = Number(sample[3]);
      expect(Number.isFinite(value), `${line} has a number`).toBe(true);
      parsed.samples.set(`${sample[1]}${sample[2] ?? ''}`, value);
    } else throw new Error(`not textfile format: ${JSON.stringify(line)}`);
  }
  return parsed;
}

describe('status --prometheus', () => {
  it('writes every metric with HELP and TYPE, and the numbers of the database', async () => {
    const sink = await resources.sink({
      faults: [
        {
          to: 'reader0002@example.net',
          fault: { kind: 'rejectRcpt', code: 550, text: '5.1.1 <reader0002@example.net>: user unknown' },
        },
      ],
    });
    const ws = await resources.workspace({
      recipients: 6,
      transport: sink.url,
      env: { NEWSLETTER_HOURLY_LIMIT: '100', NEWSLETTER_QUOTA_ACCOUNT: 'news@example.org' },
    });

    const before = parse((await ws.ok(['status', '--prometheus'])).stdout);
    expect(before.samples.get('newsletter_due')).toBe(1);
    expect(before.samples.get('newsletter_sending')).toBe(0);
    // No run yet: the metric is declared, with no sample.
    expect(before.type.get('newsletter_seconds_since_last_successful_run')).toBe('gauge');
    expect(before.samples.has('newsletter_seconds_since_last_successful_run')).toBe(false);

    await ws.run(['send-due']);
    const result = await ws.run(['status', '--prometheus']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const after = parse(result.stdout);
    for (const name of [
      'newsletter_due',
      'newsletter_sending',
      'newsletter_unknown_deliveries',
      'newsletter_last_run_failed_deliveries',
      'newsletter_seconds_since_last_successful_run',
      'newsletter_quota_used',
      'newsletter_quota_limit',
    ]) {
      expect(after.type.get(name), name).toBe('gauge');
    }
    expect(after.samples.get('newsletter_due')).toBe(0);
    expect(after.samples.get('newsletter_sending')).toBe(0);
    expect(after.samples.get('newsletter_unknown_deliveries')).toBe(0);
    expect(after.samples.get('newsletter_last_run_failed_deliveries')).toBe(1);
    const since = after.samples.get('newsletter_seconds_since_last_successful_run');
    expect(since).toBeGreaterThanOrEqual(0);
    expect(since).toBeLessThan(60);
    expect(after.samples.get('newsletter_quota_used{account="news@example.org"}')).toBe(6);
    expect(after.samples.get('newsletter_quota_limit{account="news@example.org"}')).toBe(100);
  });
});
