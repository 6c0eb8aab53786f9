/**
 * AddressSet (src/import/address-set.ts), the duplicate finder of a CSV import, behaves as a Map
 * from address to the line it first appeared on, whatever the addresses (UTF-8 local parts,
 * colliding prefixes) and however many (it grows and rehashes).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AddressSet } from '../../src/import/address-set.js';

describe('AddressSet', () => {
  it('answers as a Map would', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.emailAddress(), fc.constantFrom('jörg@bücher.de', 'a@b.c', 'a@b.cd', '')), {
          maxLength: 300,
        }),
        (list) => {
          const set = new AddressSet();
          const map = new Map<string, number>();
          list.forEach((address, i) => {
            const expected = map.get(address);
            if (expected === undefined) map.set(address, i + 1);
            expect(set.firstLineOrAdd(address, i + 1)).toBe(expected);
          });
          expect(set.size).toBe(map.size);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('keeps a hundred thousand addresses and finds each again', () => {
    const set = new AddressSet();
    const address = (i: number) => `reader${i}@example.net`;
    for (let i = 0; i < 100_000; i++) expect(set.firstLineOrAdd(address(i), i + 2)).toBeUndefined();
    for (let i = 0; i < 100_000; i += 997) expect(set.firstLineOrAdd(address(i), 0)).toBe(i + 2);
    expect(set.size).toBe(100_000);
  });
});
