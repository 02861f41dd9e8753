/**
 * Every cut of an export is detected or explained: the trailer binds the header and the device's
 * newest seal; a missing head must be a sealed purge; checkpoints catch replayed older exports;
 * freshness catches a device that stopped sealing. Each attack must fail, naming what is wrong.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { verifyExport, type VerifyOptions } from "../../src/audit/verify.js";
import { chainNext, GENESIS_CHAIN } from "../../src/audit/chain.js";
import { canonicalJson, type Json } from "../../src/audit/text.js";
import { ramFlash } from "../../src/flash/nor.js";
import { fromHex, toHex, utf8 } from "../../src/util/bytes.js";
import type { FlashAuditLog } from "../../src/audit/log.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { FakeClock } from "../lib/fake-clock.js";
import { MemoryKeyStore, newDevice, openLog, type TestDevice } from "../powerloss/support.js";
import { AdminApi } from "../../src/admin/api.js";
import type { AuditEvent } from "../../src/audit/types.js";

const crypto = nobleCrypto(seededRandom("cuts"));
type Line = { [k: string]: Json };
const parse = (l: string) => JSON.parse(l) as Line;
const seqOf = (l: string) => parse(l).seq as number;

/** A log sealed every 8 records holding `n` appends, a second apart. */
async function device(n = 40, dev: TestDevice = newDevice(), seed = "audit"): Promise<{ log: FlashAuditLog; dev: TestDevice }> {
  const log = await openLog(ramFlash(32 * 4096), dev, { sealEveryRecords: 8 }, seed);
  await fill(log, dev, n);
  return { log, dev };
}
async function fill(log: FlashAuditLog, dev: TestDevice, n: number, tag = "a"): Promise<void> {
  for (let i = 0; i < n; i++) {
    await log.append({ kind: i % 2 ? "flow" : "admin", decision: i % 3 ? "deny" : "info", device: `${tag}${i % 3}`, detail: { i } });
    dev.clock.tick(1000);
  }
}

/**
 * What an attacker without keys can do after editing lines: renumber from line `from` on, recompute
 * every chain value, and make each seal's first/last/chain fit where it now stands.
 */
function rechain(lines: string[], from: number): string[] {
  const out = lines.slice();
  let chain = fromHex(parse(out[from - 1]!)[from === 1 ? "prevChain" : "chain"] as string);
  let seq = from === 1 ? (parse(out[0]!).from as number) : seqOf(out[from - 1]!) + 1;
  let epochFirst = seq;
  for (let i = 1; i < from; i++) if (parse(out[i]!).kind === "seal") epochFirst = seqOf(out[i]!) + 1;
  for (let i = from; i < out.length; i++) {
    const o = parse(out[i]!);
    if (o.trailer !== undefined) break;
    o.seq = seq;
    if (o.kind === "seal") Object.assign(o.detail as Line, { chain: toHex(chain), last: seq - 1, first: epochFirst });
    const { chain: _c, epoch: _e, ...rec } = o;
    chain = chainNext(crypto, chain, utf8(canonicalJson(rec)));
    o.chain = toHex(chain);
    out[i] = canonicalJson(o);
    if (o.kind === "seal") epochFirst = seq + 1;
    seq++;
  }
  return out;
}

/** The header rewritten to describe records `lines[first..last]` (line indexes) exactly. */
function headerFor(lines: string[], first: number, last: number, extra: Line = {}): string {
  const h = parse(lines[0]!);
  const prevChain = first === 1 ? h.prevChain! : parse(lines[first - 1]!).chain!;
  return canonicalJson({ ...h, from: seqOf(lines[first]!), to: seqOf(lines[last]!), epoch: parse(lines[first]!).epoch!, prevChain, ...extra });
}
const sealLines = (lines: string[]) => lines.map((l, i) => [l, i] as const).filter(([l]) => parse(l).kind === "seal").map(([, i]) => i);

describe("audit export: every cut is detected or explained", () => {
  let log: FlashAuditLog;
  let dev: TestDevice;
  let lines: string[];
  before(async () => {
    ({ log, dev } = await device());
    lines = log.exportJsonl();
  });
  const check = (ls: string[], o?: VerifyOptions) => verifyExport(ls, dev.verificationKey!, crypto, o);

  it("an intact export says what it vouches for: range, epochs, head, newest seal and its time", () => {
    const r = check(lines);
    assert.ok(r.ok, r.message);
    assert.equal(r.vouches!.head, "genesis");
    assert.equal(r.vouches!.complete, true);
    assert.equal(r.vouches!.newestSeal.seq, seqOf(lines.at(-2)!));
    assert.match(r.details[0]!, /^head: the log's first record \(seq 1\)$/);
    assert.match(r.details[1]!, /^tail: the device's newest seal at export time \(seq \d+, closing epoch \d+\), sealed at 2026-01-01T00:00:\d\d\.\d{3}Z$/);
    assert.ok(parse(lines.at(-1)!).trailer, "the last line is the trailer");
  });

  it("a tail cut at a seal boundary with `to` edited fails: no trailer, or the trailer's MAC", () => {
    const seals = sealLines(lines);
    const s = seals[seals.length - 3]!;
    const cut = [headerFor(lines, 1, s), ...lines.slice(1, s + 1)];
    const a = check(cut);
    assert.equal(a.ok, false);
    assert.match(a.message, new RegExp(`no trailer after seq ${seqOf(lines[s]!)}: the export was cut`));
    const b = check([...cut, lines.at(-1)!]);
    assert.equal(b.ok, false);
    assert.match(b.message, /trailer's MAC does not verify: the header .* was edited/);
  });

  it("a head cut with from, epoch and prevChain edited fails, even claiming a purge or a requested range", () => {
    const s = sealLines(lines)[2]!;
    const first = s + 1;
    const from = seqOf(lines[first]!);
    for (const extra of [{}, { retained: from }]) {
      const cut = [headerFor(lines, first, lines.length - 2, extra), ...lines.slice(first)];
      const r = check(cut);
      assert.equal(r.ok, false, JSON.stringify(extra));
      assert.match(r.message, /trailer's MAC does not verify/);
      assert.match(check(cut.slice(0, -1)).message, /no trailer/);
    }
    // The header left as it was: the first record is not the one named.
    assert.equal(check([lines[0]!, ...lines.slice(first)]).badSeq, 1);
  });

  it("a dropped epoch fails, naming the seal where the epochs jump (or the key that does not fit)", () => {
    const seals = sealLines(lines);
    const [a, b] = [seals[2]!, seals[3]!];
    const dropped = rechain([...lines.slice(0, a + 1), ...lines.slice(b + 1)], a + 1);
    const r = check(dropped);
    assert.equal(r.ok, false);
    assert.match(r.message, /epochs are not consecutive \(one dropped\?\)/);
    assert.equal(r.badSeq, seqOf(lines[a + 1]!), "the first record after the gap");
    // Relabel the later epochs to close the gap: the seals then do not verify under the keys they claim.
    const relabelled = dropped.map((l, i) => {
      if (i <= a || parse(l).trailer !== undefined) return l;
      const o = parse(l);
      o.epoch = (o.epoch as number) - 1;
      if (o.kind === "seal") (o.detail as Line).epoch = o.epoch;
      return canonicalJson(o);
    });
    const r2 = check(rechain(relabelled, a + 1));
    assert.equal(r2.ok, false);
    assert.match(r2.message, /seal MAC does not verify under the key of epoch/);
  });

  it("a replayed older export fails against a checkpoint saved later; the current export matches it", async () => {
    const { log: l2, dev: d2 } = await device(20);
    const older = l2.exportJsonl();
    await fill(l2, d2, 13, "b");
    const cp = JSON.parse(JSON.stringify(l2.checkpoint())) as Json;
    const current = l2.exportJsonl();
    const v = (ls: string[], o: VerifyOptions) => verifyExport(ls, d2.verificationKey!, crypto, o);
    const old = v(older, { checkpoint: cp });
    assert.equal(old.ok, false);
    assert.match(old.message, /ends at seq \d+, before the checkpoint's seq \d+ saved earlier: an older export replayed/);
    assert.ok(v(older, {}).ok, "without the checkpoint the older export is intact, and says when it was sealed");
    const now = v(current, { checkpoint: cp });
    assert.ok(now.ok, now.message);
    assert.match(now.details.at(-1)!, /^checkpoint: seq \d+ \(epoch \d+\) matches the export's chain$/);
    // Edited, or from another history under the same verification key: named as such.
    const edited = { ...(cp as Line), seq: (cp as Line).seq as number - 1 };
    assert.match(v(current, { checkpoint: edited }).message, /checkpoint's MAC does not verify/);
    assert.match(v(current, { checkpoint: { ...(cp as Line), format: "x" } }).message, /checkpoint is malformed: format must be/);
    const twin = await device(33, newDevice()); // same seed, same k0, different records
    assert.deepEqual(twin.dev.verificationKey, d2.verificationKey);
    const fork = v(current, { checkpoint: twin.log.checkpoint() as unknown as Json });
    assert.equal(fork.ok, false);
    assert.match(fork.message, /differs from the checkpoint's: not the history the device vouched for/);
  });

  it("a checkpoint is given only for a sealed state: it seals first, and never for unsealed records", async () => {
    const { log: l2 } = await device(5);
    const cp = l2.checkpoint();
    const [rec] = l2.query({ since: cp.seq, until: cp.seq });
    assert.equal(rec!.kind, "seal");
    assert.equal(cp.seq, l2.nextSeq - 1, "it sealed the records before it");
    assert.equal(cp.epoch, l2.epoch);
    assert.equal(l2.checkpoint().seq, cp.seq, "an empty epoch is not sealed again");
    assert.equal(rec!.time, cp.time);
  });

  it("GET /api/v1/audit/checkpoint: owner token required, the request recorded and sealed, 501 without a log that vouches", async () => {
    const { log: l2, dev: d2 } = await device(3);
    const token = "pct_checkpoint-test-token";
    const opts = { crypto, clock: d2.clock, audit: l2, tokenHash: crypto.sha256(utf8(token)), status: () => ({}), onEvent: (e: AuditEvent) => void l2.append(e).catch(() => undefined) };
    const api = new AdminApi({ ...opts, checkpoint: async () => l2.checkpoint() });
    const ask = (a: AdminApi, auth?: string) => a.handle({ method: "GET", target: "/api/v1/audit/checkpoint", authorization: auth, remote: "192.0.2.9:1" });
    assert.equal((await ask(api)).status, 401);
    assert.equal((await ask(api, "Bearer pct_wrong")).status, 401);
    const res = await ask(api, `Bearer ${token}`);
    assert.equal(res.status, 200);
    assert.equal(res.contentType, "application/json");
    const cp = JSON.parse(res.body.join("")) as Line;
    const admin = l2.query({ kind: "admin" }).at(-1)!;
    assert.equal(admin.reason, "checkpoint");
    assert.ok(admin.seq < (cp.seq as number), "the request itself is inside the sealed state it got");
    const r = verifyExport(l2.exportJsonl(), d2.verificationKey!, crypto, { checkpoint: cp });
    assert.ok(r.ok, r.message);
    assert.equal((await ask(new AdminApi(opts), `Bearer ${token}`)).status, 501);
    await l2.close();
    assert.equal((await ask(api, `Bearer ${token}`)).status, 503);
  });

  it("an honest export from mid-log (head purged) verifies and says which purge explains it", async () => {
    const dev2 = newDevice();
    const l2 = await openLog(ramFlash(16 * 4096), dev2, { retention: { connect: 3_600_000 }, retentionCheckMs: 1e12 });
    for (let i = 0; i < 200; i++) await l2.append({ kind: "connect", decision: "info", device: `d${i % 5}`, detail: { pad: "x".repeat(60) } });
    await l2.append({ kind: "admin", decision: "info" });
    dev2.clock.tick(2 * 3_600_000);
    const through = l2.applyRetention()!;
    const ls = l2.exportJsonl();
    const r = verifyExport(ls, dev2.verificationKey!, crypto);
    assert.ok(r.ok, r.message);
    assert.equal(r.vouches!.head, "purged");
    assert.equal(r.firstSeq, through + 1);
    assert.match(r.details[0]!, new RegExp(`^head: records 1\\.\\.${through} were purged \\(purge record seq \\d+, reason retention, chain value matches\\)$`));
    // Cutting that export's head further still fails.
    const s = sealLines(ls)[1]!;
    const cut = [headerFor(ls, s + 1, ls.length - 2, { retained: seqOf(ls[s + 1]!) }), ...ls.slice(s + 1)];
    assert.match(verifyExport(cut, dev2.verificationKey!, crypto).message, /trailer's MAC does not verify/);
  });

  it("full under legal hold with no room left even for a seal, the export and the checkpoint still vouch for the last seal", async () => {
    const d = newDevice();
    const l2 = await openLog(ramFlash(8 * 4096), d, {});
    await l2.hold("case 7");
    let refused = false;
    for (let i = 0; i < 2000 && !refused; i++) {
      await l2.append({ kind: "admin", decision: "info", detail: { pad: "z".repeat(100), i } }).catch(() => (refused = true));
    }
    assert.ok(refused, "ordinary records are refused");
    let sealed = 0;
    for (; sealed < 200; sealed++) {
      try {
        l2.seal();
      } catch {
        break;
      }
    }
    assert.ok(sealed < 200, "the priority reserve runs out too");
    const before = l2.nextSeq;
    const ls = l2.exportJsonl();
    assert.equal(l2.nextSeq, before, "the export wrote nothing");
    const r = verifyExport(ls, d.verificationKey!, crypto, { checkpoint: l2.checkpoint() as unknown as Json });
    assert.ok(r.ok, r.message);
    assert.equal(r.vouches!.complete, true);
    assert.equal(r.lastSeq, before - 1);
  });

  it("a requested range verifies and is labelled: head left out, tail short of the newest seal", () => {
    const r = check(log.exportJsonl(12, 20));
    assert.ok(r.ok, r.message);
    assert.equal(r.vouches!.head, "omitted");
    assert.equal(r.vouches!.complete, false);
    assert.match(r.details[0]!, /^head: records 1\.\.11 are on the device but not in this export \(exported from seq 12\)$/);
    assert.match(r.details[1]!, /^tail: ends at seal seq \d+; the device had sealed through seq \d+ \(epoch \d+\) at .*, not in this export$/);
  });

  it("freshness: passes for a recent newest seal, fails for an old one or one made before the clock was set", async () => {
    const sealed = check(lines).vouches!.newestSeal.time;
    const fresh = check(lines, { now: sealed + 60_000, freshWithinMs: 15 * 60_000 });
    assert.ok(fresh.ok, fresh.message);
    assert.match(fresh.details.at(-1)!, /^fresh: the newest seal is 1\.0 min old \(allowed 15\.0 min\)$/);
    const stale = check(lines, { now: sealed + 3 * 3_600_000, freshWithinMs: 15 * 60_000 });
    assert.equal(stale.ok, false);
    assert.match(stale.message, /is 3\.0 h old, more than the 15\.0 min allowed: the device stopped sealing, or this export is old/);
    const unset = await device(10, { keys: new MemoryKeyStore(), clock: new FakeClock(0, false), alarms: [] });
    const u = unset.log.exportJsonl();
    assert.ok(verifyExport(u, unset.dev.verificationKey!, crypto).ok);
    assert.match(verifyExport(u, unset.dev.verificationKey!, crypto, { now: 1e12, freshWithinMs: 1e15 }).message, /not evidence \(the device's clock was not set\)/);
  });

  it("property: any other cut of head or tail, with or without the header rewritten to match, fails", () => {
    const n = lines.length - 2; // record lines are 1..n, the trailer n + 1
    fc.assert(
      fc.property(fc.integer({ min: 1, max: n }), fc.integer({ min: 0, max: n - 1 }), fc.boolean(), fc.boolean(), (first, len, rewrite, keepTrailer) => {
        const last = Math.min(n, first + len);
        fc.pre(first !== 1 || last !== n);
        const body = lines.slice(first, last + 1);
        const ls = [rewrite ? headerFor(lines, first, last) : lines[0]!, ...body, ...(keepTrailer ? [lines.at(-1)!] : [])];
        const r = check(ls);
        assert.equal(r.ok, false, `cut ${first}..${last} (rewrite ${rewrite}, trailer ${keepTrailer}) verifies`);
      }),
      { numRuns: 60, seed: 13 },
    );
    assert.equal(toHex(GENESIS_CHAIN), parse(lines[0]!).prevChain);
  });
});
