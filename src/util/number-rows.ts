/**
 * Rows of up to four numbers in one growable Float64Array, oldest first: what a list of small objects
 * would hold, without an object (and its slots) per row. The outbound queue's index (seq, size, enqueue
 * time, store ref per queued message) and the audit log's list of noise records (seq, bytes) use it: a
 * queue holding its slot's 64 KiB of small messages while a vendor is away, or a log under a flood of
 * unauthenticated noise, holds hundreds of rows, which as objects cost ~100 B each on the ESP32 (five
 * slots and an array item) and here cost 8 B a number, in chunk, and no slot (issue 9, "no input from the
 * network may grow the heap without bound").
 *
 * Front removal moves a start offset (acknowledged, dropped and purged rows leave from the front); the
 * storage is compacted when the dead front passes half of it, and grows by doubling.
 */

const INITIAL = 8;

export class NumberRows {
  readonly stride: number;
  #a: Float64Array;
  /** First live row. */
  #start = 0;
  #length = 0;

  /** @throws RangeError unless `stride` is 1..4. */
  constructor(stride: number) {
    if (!(Number.isInteger(stride) && stride >= 1 && stride <= 4)) throw new RangeError("stride must be 1..4");
    this.stride = stride;
    this.#a = new Float64Array(INITIAL * stride);
  }

  get length(): number {
    return this.#length;
  }

  /** Column `c` of row `i` (no bounds check: callers index below `length`). */
  get(i: number, c: number): number {
    return this.#a[(this.#start + i) * this.stride + c]!;
  }

  /** Appends a row (columns past the stride are ignored). */
  push(a: number, b = 0, c = 0, d = 0): void {
    const s = this.stride;
    if ((this.#start + this.#length + 1) * s > this.#a.length) this._make(this.#length + 1);
    const at = (this.#start + this.#length) * s;
    this.#a[at] = a;
    if (s > 1) this.#a[at + 1] = b;
    if (s > 2) this.#a[at + 2] = c;
    if (s > 3) this.#a[at + 3] = d;
    this.#length++;
  }

  /** Removes the first `n` rows. */
  removeFront(n: number): void {
    const k = Math.min(Math.max(0, n), this.#length);
    this.#start += k;
    this.#length -= k;
    if (this.#length === 0) this.#start = 0;
    else if (this.#start * this.stride * 2 > this.#a.length) this._make(this.#length);
  }

  /** Removes row `i` (the later ones move up). */
  removeAt(i: number): void {
    if (i < 0 || i >= this.#length) return;
    const s = this.stride;
    const from = (this.#start + i + 1) * s;
    this.#a.copyWithin(from - s, from, (this.#start + this.#length) * s);
    this.#length--;
  }

  /** Keeps only the rows whose first column is above `through`, in order. */
  keepAbove(through: number): void {
    const s = this.stride;
    let w = 0;
    for (let r = 0; r < this.#length; r++) {
      if (this.get(r, 0) <= through) continue;
      if (w !== r) this.#a.copyWithin((this.#start + w) * s, (this.#start + r) * s, (this.#start + r + 1) * s);
      w++;
    }
    this.#length = w;
  }

  /** Moves the live rows to the front of a buffer sized for `need` (doubling, or halving when sparse). */
  private _make(need: number): void {
    const s = this.stride;
    let cap = INITIAL;
    while (cap < need * 2) cap *= 2;
    if (cap * s === this.#a.length) this.#a.copyWithin(0, this.#start * s, (this.#start + this.#length) * s);
    else {
      const next = new Float64Array(cap * s);
      next.set(this.#a.subarray(this.#start * s, (this.#start + this.#length) * s));
      this.#a = next;
    }
    this.#start = 0;
  }
}
