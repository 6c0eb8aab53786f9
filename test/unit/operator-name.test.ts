import { describe, expect, it } from 'vitest';
import { operatorName } from '../../src/domain/opt-out.js';

describe('who resubscribed someone (recorded in the events table)', () => {
  it('is the sudo user first, then USER, then LOGNAME', () => {
    expect(operatorName({ SUDO_USER: 'ada', USER: 'root' })).toBe('ada');
    expect(operatorName({ USER: 'bob', LOGNAME: 'x' })).toBe('bob');
    expect(operatorName({ LOGNAME: 'cy' })).toBe('cy');
  });

  it("is the process's own account when cron or su left no name in the environment", () => {
    expect(operatorName({}, () => 'mailer')).toBe('mailer');
    expect(operatorName({}, () => null)).toBe('unknown');
  });
});
