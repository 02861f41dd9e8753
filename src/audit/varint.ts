/** Byte writer and reader for the audit body encoding: bytes, unsigned LEB128 varints up to 2^53, UTF-8 strings. */
import { fromUtf8, utf8 } from "../util/bytes.js";

export class Writer {
  bytes: number[] = [];
  u8(v: number): void {
    this.bytes.push(v & 0xff);
  }
  raw(b: Uint8Array): void {
    for (const x of b) this.bytes.push(x);
  }
  /** Unsigned LEB128 up to 2^53 (arithmetic, not 32-bit shifts). */
  varint(v: number): void {
    while (v >= 0x80) {
      this.bytes.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.bytes.push(v);
  }
  str(s: string): void {
    const b = utf8(s);
    this.varint(b.length);
    this.raw(b);
  }
}

/** Reads what {@link Writer} wrote; every method throws RangeError on truncated or malformed input. */
export class Reader {
  at = 0;
  readonly b: Uint8Array;
  constructor(b: Uint8Array) {
    this.b = b;
  }
  u8(): number {
    if (this.at >= this.b.length) throw new RangeError("truncated body");
    return this.b[this.at++]!;
  }
  raw(n: number): Uint8Array {
    if (this.at + n > this.b.length) throw new RangeError("truncated body");
    const out = this.b.slice(this.at, this.at + n);
    this.at += n;
    return out;
  }
  varint(): number {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const x = this.u8();
      v += (x & 0x7f) * scale;
      if (x < 0x80) return v;
      scale *= 0x80;
    }
    throw new RangeError("varint too long");
  }
  str(): string {
    const n = this.varint();
    if (this.at + n > this.b.length) throw new RangeError("truncated string");
    const s = fromUtf8(this.b.subarray(this.at, this.at + n));
    this.at += n;
    return s;
  }
}
