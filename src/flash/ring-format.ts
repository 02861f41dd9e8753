/**
 * The on-flash format of the record ring (format version 1): sector headers and record frames.
 * SPEC.md "Audit log" gives the same layout byte by byte. All integers are little-endian (the ESP32's
 * byte order); every program is a multiple of 4 bytes at a 4-byte-aligned offset.
 */
import { crc32c } from "./crc32c.js";

export const RING_FORMAT_VERSION = 1;
/** "PCRG": a Portcullis ring sector. */
export const SECTOR_MAGIC = 0x47524350;
/** Sector header: part A (written right after erase) 16 bytes, part B (activation) 12, retire word 4. */
export const HEADER_SIZE = 32;
export const PART_B_OFFSET = 16;
export const RETIRE_OFFSET = 28;
/** Record frame: magic u16, length u16, seq u32, crc32c u32, then the payload padded to 4 bytes. */
export const FRAME_HEADER = 12;
export const FRAME_MAGIC = 0x5ac3;

/** What a sector header says. */
export type SectorState =
  /** No valid part A: unknown content (never written, torn erase, torn header). Erase before use. */
  | "dirty"
  /** Part A valid, part B erased: pre-erased and ready to activate. */
  | "prepared"
  /** Part A and B valid, retire word erased: holds live records. */
  | "live"
  /** Part B torn, or the retire word programmed: free, but must be erased before use. */
  | "retired";

export interface SectorHeader {
  readonly state: SectorState;
  /** The ring tag of a valid header that belongs to another ring (the regions overlap), else -1. */
  readonly foreignTag: number;
  /** Erase count from part A, or -1 when unknown. */
  readonly eraseCount: number;
  readonly sectorSeq: number;
  readonly firstSeq: number;
}

function u32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}
function putU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
  b[at + 2] = (v >>> 16) & 0xff;
  b[at + 3] = (v >>> 24) & 0xff;
}
function allErased(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0xff) return false;
  return true;
}

/** Part A: magic, version, ring tag, 0xFFFF, erase count, CRC-32C of the first 12 bytes. */
export function encodePartA(tag: number, eraseCount: number): Uint8Array {
  const b = new Uint8Array(16);
  putU32(b, 0, SECTOR_MAGIC);
  b[4] = RING_FORMAT_VERSION;
  b[5] = tag;
  b[6] = 0xff;
  b[7] = 0xff;
  putU32(b, 8, eraseCount);
  putU32(b, 12, crc32c(b, 0, 12));
  return b;
}

/** Part B: sector sequence number, first record seq, CRC-32C of those 8 bytes. */
export function encodePartB(sectorSeq: number, firstSeq: number): Uint8Array {
  const b = new Uint8Array(12);
  putU32(b, 0, sectorSeq);
  putU32(b, 4, firstSeq);
  putU32(b, 8, crc32c(b, 0, 8));
  return b;
}

/** Reads the 32 header bytes of a sector belonging to the ring `tag`. */
export function parseHeader(h: Uint8Array, tag: number): SectorHeader {
  const headed = u32(h, 0) === SECTOR_MAGIC && h[4] === RING_FORMAT_VERSION && u32(h, 12) === crc32c(h, 0, 12);
  if (!headed || h[5] !== tag) return { state: "dirty", foreignTag: headed ? h[5]! : -1, eraseCount: -1, sectorSeq: 0, firstSeq: 0 };
  const eraseCount = u32(h, 8);
  if (allErased(h, PART_B_OFFSET, HEADER_SIZE)) return { state: "prepared", foreignTag: -1, eraseCount, sectorSeq: 0, firstSeq: 0 };
  const bValid = u32(h, PART_B_OFFSET + 8) === crc32c(h, PART_B_OFFSET, PART_B_OFFSET + 8);
  // A retire word with any bit cleared means a trim began: the caller had already given the sector up.
  const retired = !bValid || u32(h, RETIRE_OFFSET) !== 0xffffffff;
  return {
    state: retired ? "retired" : "live",
    foreignTag: -1,
    eraseCount,
    sectorSeq: u32(h, PART_B_OFFSET),
    firstSeq: u32(h, PART_B_OFFSET + 4),
  };
}

/** Bytes a frame with `length` payload bytes occupies on flash. */
export function frameSize(length: number): number {
  return (FRAME_HEADER + length + 3) & ~3;
}

/** A frame: header, payload, 0xFF padding to a 4-byte multiple. */
export function encodeFrame(seq: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(frameSize(payload.length)).fill(0xff);
  f[0] = FRAME_MAGIC & 0xff;
  f[1] = FRAME_MAGIC >>> 8;
  f[2] = payload.length & 0xff;
  f[3] = payload.length >>> 8;
  putU32(f, 4, seq);
  f.set(payload, FRAME_HEADER);
  putU32(f, 8, crc32c(payload, 0, payload.length, crc32c(f, 0, 8)));
  return f;
}

/** A valid frame found in a sector image. */
export interface ParsedFrame {
  readonly seq: number;
  readonly offset: number;
  readonly payload: Uint8Array;
  /** Offset just past the frame (padding included). */
  readonly end: number;
}

/** Parses the frame at `at` in `sector`, or returns undefined when it is absent, torn or corrupt. */
export function parseFrame(sector: Uint8Array, at: number): ParsedFrame | undefined {
  if (at + FRAME_HEADER > sector.length) return undefined;
  if (sector[at] !== (FRAME_MAGIC & 0xff) || sector[at + 1] !== FRAME_MAGIC >>> 8) return undefined;
  const length = sector[at + 2]! | (sector[at + 3]! << 8);
  const end = at + frameSize(length);
  if (end > sector.length) return undefined;
  const crc = crc32c(sector, at + FRAME_HEADER, at + FRAME_HEADER + length, crc32c(sector, at, at + 8));
  if (crc !== u32(sector, at + 8)) return undefined;
  return { seq: u32(sector, at + 4), offset: at, payload: sector.slice(at + FRAME_HEADER, at + FRAME_HEADER + length), end };
}

/** Result of scanning one sector image. */
export interface SectorScan {
  readonly frames: ParsedFrame[];
  /** Offset after the last valid frame (where an append would go). */
  readonly end: number;
  /** True when bytes after `end` are not all erased: a torn tail. */
  readonly dirtyTail: boolean;
  /** The first 4-byte-aligned offset from which the rest of the sector is erased (appends resume there). */
  readonly erasedFrom: number;
}

/**
 * Walks the frames of a sector image. After a bad frame it resynchronises on the next 4-byte boundary
 * that holds a valid frame, so one corrupt record never hides the ones after it; the caller sees the
 * hole as a gap in the sequence numbers.
 */
export function scanSector(sector: Uint8Array): SectorScan {
  const frames: ParsedFrame[] = [];
  let at = HEADER_SIZE;
  let end = HEADER_SIZE;
  while (at + FRAME_HEADER <= sector.length) {
    const f = parseFrame(sector, at);
    if (f) {
      frames.push(f);
      at = end = f.end;
      continue;
    }
    if (allErased(sector, at, sector.length)) break;
    at += 4;
  }
  let erasedFrom = sector.length;
  while (erasedFrom > end && sector[erasedFrom - 1] === 0xff) erasedFrom--;
  erasedFrom = (erasedFrom + 3) & ~3;
  return { frames, end, dirtyTail: erasedFrom > end, erasedFrom };
}

export { u32 as readU32, putU32 as writeU32 };
