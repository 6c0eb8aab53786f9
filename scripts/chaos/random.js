/**
 * The chaos driver's only source of randomness: a seeded generator (mulberry32), so that
 * `--seed N` replays the same schedule of faults. (What the processes do between faults still
 * depends on the machine's timing; the schedule, its kinds, targets and durations do not.)
 */
export function seeded(seed) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    /** In [0, 1). */
    next,
    /** An integer in [min, max]. */
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    /** One of `items`. */
    pick: (items) => items[Math.floor(next() * items.length)],
    /** One key of `weights` ({ name: weight }), in proportion to its weight. */
    weighted(weights) {
      const entries = Object.entries(weights);
      let roll = next() * entries.reduce((sum, [, w]) => sum + w, 0);
      for (const [name, weight] of entries) {
        roll -= weight;
        if (roll < 0) return name;
      }
      return entries.at(-1)[0];
    },
  };
}
