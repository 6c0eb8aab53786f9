/**
 * Bounces, as `newsletter bounces import` reads them from delivery status notifications (RFC
 * 3464): which ones count as hard or soft, and the words a suppression records. Pure.
 *
 * | Action                | Status | kind                              |
 * | --------------------- | ------ | --------------------------------- |
 * | failed                | 5.x.x  | hard: suppressed at once          |
 * | failed                | 4.x.x  | soft (a server that gave up on a  |
 * |                       |        | temporary failure)                |
 * | delayed               | any    | soft                              |
 * | delivered, relayed, … | any    | not a bounce                      |
 *
 * Soft bounces suppress the address once NEWSLETTER_SOFT_BOUNCE_LIMIT of them count.
 */

export type BounceKind = 'hard' | 'soft';

const STATUS = /^([245])\.\d{1,3}\.\d{1,3}$/;

export function classifyBounce(action: string, status: string): BounceKind | null {
  const act = action.trim().toLowerCase();
  const klass = STATUS.exec(status.trim())?.[1];
  if (act === 'failed') {
    if (klass === '5') return 'hard';
    if (klass === '4') return 'soft';
    return null;
  }
  if (act === 'delayed') return 'soft';
  return null;
}

/**
 * Whether this bounce suppresses its address: a hard one at once, a soft one once `softCount`
 * soft bounces of the address count (this one included) and that reaches `softLimit`.
 */
export function bounceSuppresses(kind: BounceKind, softCount: number, softLimit: number): boolean {
  return kind === 'hard' || softCount >= softLimit;
}

/** The longest reason kept: a Diagnostic-Code can be a paragraph. */
const MAX_REASON = 300;

export function shortenReason(reason: string): string {
  const flat = reason.replace(/\s+/g, ' ').trim();
  return flat.length > MAX_REASON ? `${flat.slice(0, MAX_REASON - 1)}…` : flat;
}

/** What `suppress list` shows for an address a bounce suppressed. */
export function bounceSuppressionReason(
  event: { kind: BounceKind; status: string; reason: string },
  softCount: number,
): string {
  const detail = event.reason ? `: ${event.reason}` : '';
  return shortenReason(
    event.kind === 'hard'
      ? `hard bounce ${event.status}${detail}`
      : `${softCount} soft bounces, the last ${event.status}${detail}`,
  );
}
