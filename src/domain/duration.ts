/** Durations as operators write them: `500ms`, `0s`, `90s`, `5m`, `2h`, `1d`. */
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(value: string): number | null {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(value);
  if (!match) return null;
  const unit = UNITS[match[2] as string] as number;
  return Math.round(Number(match[1]) * unit);
}

/** `1m,5m,30m,2h` → milliseconds; null when any step is malformed. */
export function parseDurationList(value: string): number[] | null {
  const steps = value.split(',').map((part) => parseDuration(part));
  if (steps.length === 0 || steps.some((step) => step === null)) return null;
  return steps as number[];
}

export function formatDuration(ms: number): string {
  if (ms % 86_400_000 === 0 && ms > 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
