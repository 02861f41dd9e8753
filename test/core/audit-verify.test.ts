/** Offline verification of exports: intact, and the journald-style tamper cases (each must fail, naming a seq). */
import assert from "node:assert/strict";
import { verifyExport } from "../../src/audit/verify.js";
import { chainNext, sealMac } from "../../src/audit/chain.js";
import { canonicalJson, type Json } from "../../src/audit/text.js";
import { fromHex, fromUtf8, toHex, utf8 } from "../../src/util/bytes.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { sampleExport, type TestDevice } from "../powerloss/support.js";

const crypto = nobleCrypto(seededRandom("verify"));
type Line = { [k: string]: Json };

/** Decodes bytes as UTF-8, replacing malformed sequences with U+FFFD as a JSONL reader would. */
function fromUtf8Lossy(b: Uint8Array): string {
  try {
    return fromUtf8(b);
  } catch {
    let s = "";
    for (const x of b) s += x < 0x80 ? String.fromCharCode(x) : "\ufffd";
    return s;
  }
}

const parse = (l: string) => JSON.parse(l) as Line;
function seqAt(lines: string[], i: number): number {
  return parse(lines[i]!).seq as number;
}

/** Recomputes the chain of every record from line `from` on (what an attacker without keys can do). */
function rechain(lines: string[], from: number): string[] {
  const out = lines.slice();
  let chain = from === 1 ? fromHex(parse(out[0]!).prevChain as string) : fromHex(parse(out[from - 1]!).chain as string);
  for (let i = from; i < out.length; i++) {
    const o = parse(out[i]!);
    const { chain: _c, epoch: _e, ...rec } = o;
    if (o.kind === "seal") (o.detail as Line).chain = toHex(chain), (rec.detail as Line).chain = toHex(chain);
    chain = chainNext(crypto, chain, utf8(canonicalJson(rec)));
    o.chain = toHex(chain);
    out[i] = canonicalJson(o);
  }
  return out;
}

describe("audit export verification", () => {
  let lines: string[];
  let dev: TestDevice;
  before(async () => ({ lines, dev } = await sampleExport()));
  const check = (ls: string[]) => verifyExport(ls, dev.verificationKey!, crypto);

  it("accepts an intact export, with or without a trailing newline", () => {
    const r = check(lines);
    assert.ok(r.ok, r.message);
    assert.match(r.message, /^intact: seq 1\.\.\d+, \d+ records, [4-9] seals/);
    assert.ok(check([...lines, ""]).ok);
  });

  it("rejects a wrong key at the first seal", () => {
    const r = verifyExport(lines, new Uint8Array(32).fill(7), crypto);
    assert.equal(r.ok, false);
    assert.equal(r.badSeq, 1);
  });

  it("names the modified record", () => {
    const ls = lines.slice();
    ls[10] = ls[10]!.replace(/"device":"d(\d)"/, '"device":"dX"');
    assert.notEqual(ls[10], lines[10]);
    assert.equal(check(ls).badSeq, seqAt(lines, 10));
  });

  it("names a removed record", () => {
    const ls = lines.slice();
    ls.splice(7, 1);
    assert.equal(check(ls).badSeq, seqAt(lines, 7));
  });

  it("names the first of two reordered records", () => {
    const ls = lines.slice();
    [ls[5], ls[6]] = [ls[6]!, ls[5]!];
    assert.equal(check(ls).badSeq, seqAt(lines, 5));
  });

  it("rejects an inserted record even with a recomputed chain (the next seal fails)", () => {
    const forged = parse(lines[8]!);
    forged.device = "intruder";
    const ls = lines.slice(0, 9).concat([canonicalJson(forged)], lines.slice(9));
    assert.equal(check(ls).badSeq, seqAt(lines, 8) + 1);
    // Renumber everything after the insertion and recompute the chain: still caught, at the next seal.
    const renum = ls.map((l, i) => (i > 9 ? canonicalJson({ ...parse(l), seq: (parse(l).seq as number) + 1 }) : l));
    const r = check(rechain(renum, 9));
    assert.equal(r.ok, false);
    assert.ok(r.badSeq! > seqAt(lines, 8), r.message);
  });

  it("rejects old records re-sealed under a newer (stolen) key", () => {
    // The attacker holds the device's current key k[n] and edits a record of an earlier epoch.
    const stolen = dev.keys.get("audit.seal")!;
    const n = new DataView(stolen.buffer).getUint32(0, true);
    const kn = stolen.slice(8);
    const ls = lines.slice();
    ls[3] = ls[3]!.replace('"kind":"flow"', '"kind":"auth"');
    const rc = rechain(ls, 3);
    // (a) keep epoch numbers, MAC each seal with k[n]: the first seal after the edit fails.
    const a = rc.map((l, i) => {
      const o = parse(l);
      if (o.kind !== "seal" || i < 3) return l;
      const d = o.detail as Line;
      d.mac = toHex(sealMac(crypto, kn, d.epoch as number, d.first as number, d.last as number, fromHex(d.chain as string)));
      return canonicalJson(o);
    });
    const firstSealAfter = rc.findIndex((l, i) => i > 3 && parse(l).kind === "seal");
    assert.equal(check(a).badSeq, seqAt(lines, firstSealAfter));
    // (b) relabel every record as epoch n so k[n] would apply: the epoch field is caught at once.
    const b = rc.map((l, i) => (i === 0 ? l : canonicalJson({ ...parse(l), epoch: n })));
    assert.equal(check(b).badSeq, 1);
  });

  it("rejects an export truncated before its last seal, or cut back to an earlier seal", () => {
    const noTrailer = check(lines.slice(0, -1));
    assert.equal(noTrailer.ok, false);
    assert.match(noTrailer.message, /no trailer after seq \d+: the export was cut/);
    assert.equal(check(lines.slice(0, -2)).ok, false);
    const records = lines.slice(0, -1);
    const lastSeal = records.length - 1 - records.slice(0, -1).reverse().findIndex((l) => parse(l).kind === "seal") - 1;
    const cut = lines.slice(0, lastSeal + 1);
    const r = check(cut);
    assert.equal(r.ok, false);
    assert.equal(r.badSeq, seqAt(lines, lastSeal) + 1);
    const half = check(lines.slice(0, -2).concat([lines.at(-2)!.slice(0, 40)]));
    assert.equal(half.badSeq, seqAt(lines, lines.length - 2));
  });

  it("fails for a flipped byte anywhere (deterministic sample of every 37th byte, every bit pattern)", () => {
    const text = lines.join("\n");
    const bytes = utf8(text);
    let checked = 0;
    for (let i = 0; i < bytes.length; i += 37) {
      const b = bytes.slice();
      b[i] = b[i]! ^ (1 << (i % 8));
      const r = check(fromUtf8Lossy(b).split("\n"));
      assert.equal(r.ok, false, `byte ${i} flipped still verifies`);
      checked++;
    }
    assert.ok(checked > 150);
  });
});
