/**
 * Which log format nobody asked for (issue 15): text for a person (a terminal, or cron's mail),
 * JSON lines only under systemd, whose journal feeds a collector. `--log-format` always wins.
 */
import { describe, expect, it } from 'vitest';
import { resolveLogFormat } from '../../src/cli/log.js';

describe('resolveLogFormat', () => {
  it('text under cron or at a terminal: nothing says systemd', () => {
    expect(resolveLogFormat(undefined, {})).toBe('text');
    expect(resolveLogFormat(undefined, { JOURNAL_STREAM: '', INVOCATION_ID: '' })).toBe('text');
  });

  it('JSON lines under systemd: JOURNAL_STREAM or INVOCATION_ID set', () => {
    expect(resolveLogFormat(undefined, { JOURNAL_STREAM: '8:123456' })).toBe('json');
    expect(resolveLogFormat(undefined, { INVOCATION_ID: '0f1e2d3c4b5a69788796a5b4c3d2e1f0' })).toBe('json');
  });

  it('--log-format wins either way', () => {
    expect(resolveLogFormat('json', {})).toBe('json');
    expect(resolveLogFormat('text', { JOURNAL_STREAM: '8:123456' })).toBe('text');
  });
});
