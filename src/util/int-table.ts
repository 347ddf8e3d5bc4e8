/**
 * A table keyed by non-negative integers (PubAck reply tokens, MQTT packet ids) whose keys come
 * and go at the reading rate. A drop-in for the few `Map` methods those users need.
 *
 * Why not a `Map` (issue 13): V8 links every backing table a `Map` replaces (it rehashes after
 * a few set/delete pairs) to its successor, for iterators still on the old one. Once a current
 * table is moved to the old generation (any full GC does that), each table it is replaced by
 * is kept alive by that link through every young-generation GC, promoted, and links the next
 * one in turn: the chain, and every entry a table held, moves to the old generation until the
 * next full GC, which starts it again. At 1k readings/s the daemon promoted ~100 kB per
 * young-generation GC instead of ~3 from its first full GC on, ran a full GC every ~7 s and
 * kept ~7 MiB more RSS. A null-prototype object keeps integer keys in a dictionary whose
 * replaced stores link to nothing (test/util/int-table.test.ts measures both).
 */
export class IntTable<T> {
  private slots: Record<number, T> = Object.create(null) as Record<number, T>;
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(key: number): T | undefined {
    return this.slots[key];
  }

  /** `value` must not be undefined (it would read as absent). */
  set(key: number, value: T): void {
    if (this.slots[key] === undefined) this.count++;
    this.slots[key] = value;
  }

  delete(key: number): boolean {
    if (this.slots[key] === undefined) return false;
    delete this.slots[key];
    this.count--;
    return true;
  }

  /** The values, by ascending key. */
  values(): T[] {
    return Object.values(this.slots);
  }

  clear(): void {
    this.slots = Object.create(null) as Record<number, T>;
    this.count = 0;
  }
}
