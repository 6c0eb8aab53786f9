/**
 * The addresses an import has seen, each with the line it first appeared on: what finds the
 * duplicate rows of a CSV. A Map of a million address strings costs ~140 MB of heap (measured,
 * docs/benchmarks.md); this keeps their UTF-8 bytes in one growing buffer and an open-addressing
 * table in typed arrays: about 50 MB for a million, and nothing for the garbage collector to walk.
 */
export class AddressSet {
  private bytes = Buffer.allocUnsafe(1 << 16);
  private used = 0;
  /** Entry i's bytes are bytes[starts[i] .. starts[i + 1]). */
  private starts: Uint32Array = new Uint32Array(1025);
  private hashes: Uint32Array = new Uint32Array(1024);
  private lines: Uint32Array = new Uint32Array(1024);
  private count = 0;
  /** Entry index + 1, 0 when free; its size is a power of two, at most half full. */
  private table = new Uint32Array(2048);
  private scratch = Buffer.allocUnsafe(1024);

  get size(): number {
    return this.count;
  }

  /** The line `address` first appeared on, or undefined; records it with `line` if it is new. */
  firstLineOrAdd(address: string, line: number): number | undefined {
    if (this.scratch.length < address.length * 3) this.scratch = Buffer.allocUnsafe(address.length * 3);
    const length = this.scratch.write(address, 0, 'utf8');
    const hash = fnv1a(this.scratch, length);
    const mask = this.table.length - 1;
    let slot = hash & mask;
    for (let entry = this.table[slot] as number; entry !== 0; entry = this.table[slot] as number) {
      const i = entry - 1;
      if (this.hashes[i] === hash && this.equals(i, length)) return this.lines[i];
      slot = (slot + 1) & mask;
    }
    this.add(slot, hash, length, line);
    return undefined;
  }

  private equals(i: number, length: number): boolean {
    const start = this.starts[i] as number;
    const end = this.starts[i + 1] as number;
    return end - start === length && this.scratch.compare(this.bytes, start, end, 0, length) === 0;
  }

  private add(slot: number, hash: number, length: number, line: number): void {
    if (this.used + length > this.bytes.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, this.used + length));
      this.bytes.copy(bigger, 0, 0, this.used);
      this.bytes = bigger;
    }
    if (this.count + 1 >= this.hashes.length) {
      this.hashes = grow(this.hashes, this.hashes.length * 2);
      this.lines = grow(this.lines, this.lines.length * 2);
      this.starts = grow(this.starts, this.starts.length * 2);
    }
    this.scratch.copy(this.bytes, this.used, 0, length);
    const i = this.count;
    this.starts[i] = this.used;
    this.used += length;
    this.starts[i + 1] = this.used;
    this.hashes[i] = hash;
    this.lines[i] = line;
    this.count += 1;
    this.table[slot] = i + 1;
    if (this.count * 2 > this.table.length) this.rehash();
  }

  private rehash(): void {
    const table = new Uint32Array(this.table.length * 2);
    const mask = table.length - 1;
    for (let i = 0; i < this.count; i++) {
      let slot = (this.hashes[i] as number) & mask;
      while (table[slot] !== 0) slot = (slot + 1) & mask;
      table[slot] = i + 1;
    }
    this.table = table;
  }
}

function grow(array: Uint32Array, length: number): Uint32Array {
  const bigger = new Uint32Array(length);
  bigger.set(array);
  return bigger;
}

/** 32-bit FNV-1a of the first `length` bytes. */
function fnv1a(bytes: Buffer, length: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < length; i++) {
    hash ^= bytes[i] as number;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
