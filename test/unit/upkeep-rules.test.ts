/**
 * The pure rules behind prune, the growth check and the textfile format (issue 15).
 */
import { describe, expect, it } from 'vitest';
import { type PruneCandidate, pruneDecision, storedCounts } from '../../src/domain/prune.js';
import {
  GROWTH_BASE_BYTES,
  GROWTH_BYTES_PER_ROW,
  growthCheck,
  WAL_LIMIT_BYTES,
} from '../../src/doctor/growth.js';
import { textfile } from '../../src/cli/prometheus.js';

const candidate = (overrides: Partial<PruneCandidate>): PruneCandidate => ({
  newsletterId: 1,
  subject: 's',
  status: 'sent',
  finishedAt: 1000,
  ledgerRows: 10,
  unsettled: 0,
  ...overrides,
});

describe('pruneDecision', () => {
  it('prunes only final newsletters, finished before the date, with rows and none unsettled', () => {
    expect(pruneDecision(candidate({}), 2000)).toEqual({ prune: true });
    for (const status of ['cancelled', 'failed'] as const)
      expect(pruneDecision(candidate({ status }), 2000)).toEqual({ prune: true });
    for (const status of ['draft', 'scheduled', 'sending'] as const)
      expect(pruneDecision(candidate({ status }), 2000)).toEqual({ prune: false, reason: 'not-final' });
    expect(pruneDecision(candidate({ finishedAt: 2000 }), 2000)).toEqual({
      prune: false,
      reason: 'too-recent',
    });
    expect(pruneDecision(candidate({ finishedAt: null }), 2000)).toEqual({
      prune: false,
      reason: 'too-recent',
    });
    expect(pruneDecision(candidate({ unsettled: 1 }), 2000)).toEqual({ prune: false, reason: 'unsettled' });
    expect(pruneDecision(candidate({ ledgerRows: 0 }), 2000)).toEqual({
      prune: false,
      reason: 'nothing-to-delete',
    });
  });

  it('reads kept counts as text or parsed JSON', () => {
    const counts = {
      audience: 3,
      pending: 0,
      claimed: 0,
      sent: 2,
      failed: 1,
      retry: 0,
      unknown: 0,
      skipped: 0,
    };
    expect(storedCounts(JSON.stringify(counts))).toEqual(counts);
    expect(storedCounts(counts)).toEqual(counts);
    expect(storedCounts(null)).toBeNull();
  });
});

describe('growthCheck', () => {
  const footprint = { subscribers: 1000, ledgerRows: 9000, otherRows: 0, newsletterBytes: 0, freeBytes: 0 };
  const explained = GROWTH_BASE_BYTES + 10_000 * GROWTH_BYTES_PER_ROW;

  it('is quiet while the size is in proportion, and warns past the rule', () => {
    expect(growthCheck({ ...footprint, databaseBytes: explained }, 0)).toEqual([
      expect.objectContaining({ name: 'growth', level: 'ok' }),
    ]);
    const [warned] = growthCheck({ ...footprint, databaseBytes: explained + 1, freeBytes: explained }, null);
    expect(warned).toMatchObject({ name: 'growth', level: 'warning' });
    expect(warned?.fix).toContain('VACUUM');
  });

  it('warns about a WAL past 64 MB and past the database', () => {
    const small = { ...footprint, databaseBytes: 10 * 1024 * 1024 };
    expect(growthCheck(small, WAL_LIMIT_BYTES)).toHaveLength(1);
    expect(growthCheck(small, WAL_LIMIT_BYTES + 1)[1]).toMatchObject({ name: 'wal', level: 'warning' });
    expect(growthCheck({ ...small, databaseBytes: 2 * WAL_LIMIT_BYTES }, WAL_LIMIT_BYTES + 1)).toHaveLength(
      1,
    );
  });
});

describe('textfile', () => {
  it('writes HELP and TYPE before the samples, and escapes what the format escapes', () => {
    expect(
      textfile([
        { name: 'a', help: 'line\\one\nline two', samples: [{ value: 1 }] },
        { name: 'b', help: 'b', samples: [{ labels: { account: 'x"y\\z' }, value: Number.NaN }] },
        { name: 'c', help: 'c', samples: [] },
      ]),
    ).toBe(
      [
        '# HELP a line\\\\one\\nline two',
        '# TYPE a gauge',
        'a 1',
        '# HELP b b',
        '# TYPE b gauge',
        'b{account="x\\"y\\\\z"} NaN',
        '# HELP c c',
        '# TYPE c gauge',
        '',
      ].join('\n'),
    );
  });
});
