/**
 * The JSON forms of what the device vouches for under the open epoch's key (SPEC.md "Audit log" §5
 * and §7): a checkpoint (`GET /api/v1/audit/checkpoint`) and an export's trailer line. Building and
 * parsing live together so the device, the verifier and the CLI agree byte for byte.
 */
import { CHAIN_SIZE, type Checkpoint } from "./chain.js";
import { canonicalJson, type Json } from "./text.js";
import { fromHex, toHex } from "../util/bytes.js";

export const CHECKPOINT_FORMAT = "portcullis-audit-checkpoint";
/** The value of the `trailer` member that marks an export's last line. */
export const TRAILER_MARK = "portcullis-audit-export";

/** A checkpoint as served and saved: canonical JSON, digests in lowercase hex. */
export interface CheckpointJson {
  readonly format: typeof CHECKPOINT_FORMAT;
  readonly seq: number;
  readonly chain: string;
  readonly time: number;
  readonly timeSet: boolean;
  readonly epoch: number;
  readonly mac: string;
}

/** A checkpoint or trailer as parsed: the vouched state, its MAC, and (trailer) chain[to]. */
export interface Vouched {
  readonly cp: Checkpoint;
  readonly mac: Uint8Array;
  readonly toChain?: Uint8Array;
}

export function checkpointJson(cp: Checkpoint, mac: Uint8Array): CheckpointJson {
  return { format: CHECKPOINT_FORMAT, seq: cp.seq, chain: toHex(cp.chain), time: cp.time, timeSet: cp.timeSet, epoch: cp.epoch, mac: toHex(mac) };
}

/** An export's last line: the checkpoint of the newest seal, chain[to] and the trailer MAC. */
export function trailerLine(cp: Checkpoint, toChain: Uint8Array, mac: Uint8Array): string {
  return canonicalJson({
    trailer: TRAILER_MARK, seq: cp.seq, chain: toHex(cp.chain), time: cp.time, timeSet: cp.timeSet, epoch: cp.epoch,
    toChain: toHex(toChain), mac: toHex(mac),
  });
}

type Obj = { readonly [k: string]: Json | undefined };

function digest(v: unknown): Uint8Array | undefined {
  if (typeof v !== "string" || !/^[0-9a-f]+$/.test(v) || v.length !== 2 * CHAIN_SIZE) return undefined;
  return fromHex(v);
}
function u32(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 && v <= 0xffffffff;
}

/** The common fields, or the name of the first one that is wrong. */
function fields(o: Obj, keys: readonly string[]): Vouched | string {
  const extra = Object.keys(o).find((k) => !keys.includes(k));
  if (extra !== undefined) return `unknown field "${extra}"`;
  const chain = digest(o.chain);
  const mac = digest(o.mac);
  if (!u32(o.seq)) return "seq must be a sequence number";
  if (!u32(o.epoch)) return "epoch must be an epoch number";
  if (typeof o.time !== "number" || !Number.isSafeInteger(o.time) || o.time < 0) return "time must be ms since the epoch";
  if (typeof o.timeSet !== "boolean") return "timeSet must be true or false";
  if (!chain) return "chain must be 64 lowercase hex digits";
  if (!mac) return "mac must be 64 lowercase hex digits";
  return { cp: { seq: o.seq, chain, time: o.time, timeSet: o.timeSet, epoch: o.epoch }, mac };
}

const CP_KEYS = Object.freeze(["format", "seq", "chain", "time", "timeSet", "epoch", "mac"]);
const TRAILER_KEYS = Object.freeze(["trailer", "seq", "chain", "time", "timeSet", "epoch", "toChain", "mac"]);

/** Parses a saved checkpoint (the parsed JSON of the file), or says what is wrong with it. */
export function parseCheckpoint(v: unknown): Vouched | string {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return "a checkpoint is a JSON object";
  const o = v as Obj;
  if (o.format !== CHECKPOINT_FORMAT) return `format must be "${CHECKPOINT_FORMAT}"`;
  return fields(o, CP_KEYS);
}

/** Parses an export's trailer object, or says what is wrong with it (undefined: not a trailer). */
export function parseTrailer(o: Obj): Vouched | string | undefined {
  if (o.trailer === undefined) return undefined;
  if (o.trailer !== TRAILER_MARK) return `trailer must be "${TRAILER_MARK}"`;
  const f = fields(o, TRAILER_KEYS);
  if (typeof f === "string") return f;
  const toChain = digest(o.toChain);
  return toChain ? { ...f, toChain } : "toChain must be 64 lowercase hex digits";
}
