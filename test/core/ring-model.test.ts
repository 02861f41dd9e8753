/**
 * Model-based test of the flash ring (fast-check commands): random appends, trims, flushes, remounts
 * and idle erases against a plain array model. After every command the ring holds exactly the model's
 * records, in order, and its sequence numbers match.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { FlashRing } from "../../src/flash/ring.js";
import { ramFlash, type NorFlash } from "../../src/flash/nor.js";

interface Model {
  records: { seq: number; data: number[] }[];
  nextSeq: number;
}
interface Real {
  flash: NorFlash;
  ring: FlashRing;
}

function same(m: Model, r: Real): void {
  assert.equal(r.ring.nextSeq, m.nextSeq);
  const got = [...r.ring.entries()].map((e) => (e.type === "record" ? { seq: e.seq, data: [...e.data] } : { gap: [e.from, e.to] }));
  assert.deepEqual(got, m.records.filter((x) => x.seq >= r.ring.firstSeq));
  assert.ok(r.ring.firstSeq <= (m.records[0]?.seq ?? m.nextSeq) || m.records.every((x) => x.seq < r.ring.firstSeq));
}

class Append implements fc.AsyncCommand<Model, Real> {
  readonly data: number[];
  constructor(data: number[]) {
    this.data = data;
  }
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    if (!r.ring.canAppend(this.data.length)) {
      assert.throws(() => r.ring.append(Uint8Array.from(this.data)), /ring full/);
      return;
    }
    const seq = await r.ring.append(Uint8Array.from(this.data));
    assert.equal(seq, m.nextSeq);
    m.records.push({ seq, data: this.data });
    m.nextSeq++;
    same(m, r);
  }
  toString = () => `append(${this.data.length})`;
}

/** Trims that gave a sector up, over the whole run: the property must really be exercised. */
const trims = { real: 0 };

class TrimOldest implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const spans = r.ring.spans();
    if (spans.length < 2) {
      // The head is never given up: with one live sector (or none) a trim through everything frees nothing.
      const first = r.ring.firstSeq;
      assert.equal(r.ring.trimThrough(Number.MAX_SAFE_INTEGER), first - 1);
      assert.equal(r.ring.spans().length, spans.length);
      same(m, r);
      return;
    }
    trims.real++;
    const through = r.ring.trimThrough(spans[0]!.lastSeq);
    assert.equal(through, spans[0]!.lastSeq);
    assert.equal(r.ring.spans().length, spans.length - 1, "exactly the oldest sector is given up");
    m.records = m.records.filter((x) => x.seq > through);
    same(m, r);
  }
  toString = () => "trimOldest";
}

class Remount implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    r.ring.close();
    r.ring = FlashRing.mount({ flash: r.flash, tag: 9 });
    same(m, r);
  }
  toString = () => "remount";
}

class Maintain implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    r.ring.maintain();
    same(m, r);
  }
  toString = () => "maintain";
}

describe("FlashRing against a model (fast-check commands)", () => {
  it("holds exactly the appended, untrimmed records through appends, trims, remounts and erases", async () => {
    const commands = [
      fc.uint8Array({ minLength: 0, maxLength: 900 }).map((d) => new Append([...d])),
      // Big records fill sectors quickly, so most runs reach two or more live sectors.
      fc.uint8Array({ minLength: 1500, maxLength: 2000 }).map((d) => new Append([...d])),
      fc.constant(new TrimOldest()),
      fc.constant(new Remount()),
      fc.constant(new Maintain()),
    ];
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 120, size: "large" }), async (cmds) => {
        const flash = ramFlash(6 * 4096);
        const real: Real = { flash, ring: FlashRing.mount({ flash, tag: 9 }) };
        await fc.asyncModelRun(() => ({ model: { records: [], nextSeq: 1 }, real }), cmds);
      }),
      { numRuns: 40 },
    );
    assert.ok(trims.real >= 40, `only ${trims.real} trims with two or more live sectors`);
  });
});
