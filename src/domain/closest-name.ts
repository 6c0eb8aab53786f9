/**
 * "Did you mean …?" for a name someone typed: the closest of the known names, when it is close
 * enough that the typo is the likely story (NEWSLETTER_FORM → NEWSLETTER_FROM), and none when the
 * name is simply something else (a suggestion that is plainly wrong teaches people to ignore them).
 */

/**
 * Edits (insert, delete, replace, swap two neighbours) between `a` and `b`: the optimal string
 * alignment distance. A swap counts once, as it is one slip of the fingers.
 */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number): number => d[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = best;
    }
  }
  return at(a.length, b.length);
}

/**
 * The known name closest to `typed` (case aside), or null when even the closest needs more than
 * a third of the typed part (`prefix` excluded, at least 2) to be changed.
 */
export function closestName(typed: string, known: readonly string[], prefix = ''): string | null {
  const strip = (name: string) => {
    const upper = name.toUpperCase();
    return upper.startsWith(prefix.toUpperCase()) ? upper.slice(prefix.length) : upper;
  };
  const wanted = strip(typed);
  let best: { name: string; distance: number } | null = null;
  for (const name of known) {
    const distance = editDistance(wanted, strip(name));
    if (best === null || distance < best.distance) best = { name, distance };
  }
  if (best === null) return null;
  return best.distance <= Math.max(2, Math.floor(wanted.length / 3)) ? best.name : null;
}
