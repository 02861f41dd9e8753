/** The message path's per-stage CPU meter (src/util/meter.ts): exclusive times, off by default, self-healing spans. */
import assert from "node:assert/strict";
import { meter, meterLine, STAGES } from "../../src/util/meter.js";

describe("stage meter", () => {
  let cpu = 0;
  /** A CPU clock the test moves by hand. */
  const clock = (): number => cpu;

  afterEach(() => meter.use(undefined));

  it("is off until given a CPU clock: spans cost nothing and report nothing", () => {
    const span = meter.start();
    assert.equal(span, -1);
    meter.stop("policy", span);
    assert.equal(meter.on, false);
    assert.deepEqual(meter.report(), { stages: [], totalMicros: 0 });
  });

  it("charges a nested span to itself and takes it out of the outer one", () => {
    cpu = 1000;
    meter.use(clock);
    const outer = meter.start();
    cpu += 30; // receive's own work
    const inner = meter.start();
    cpu += 50; // policy
    const innermost = meter.start();
    cpu += 5; // a record written while deciding
    meter.stop("record", innermost);
    meter.stop("policy", inner);
    cpu += 15; // receive again
    meter.stop("receive", outer);
    cpu += 100; // outside every stage
    const r = meter.report();
    const by = Object.fromEntries(r.stages.map((s) => [s.stage, s]));
    assert.deepEqual([by.receive!.micros, by.policy!.micros, by.record!.micros], [45, 50, 5]);
    assert.deepEqual([by.receive!.count, by.policy!.count, by.record!.count, by.seal!.count], [1, 1, 1, 0]);
    assert.equal(r.totalMicros, 200);
    assert.deepEqual(r.stages.map((s) => s.stage), [...STAGES]);
    assert.equal(meterLine(r), "profile: 1 messages 200 us; receive 1 45 45.0; policy 1 50 50.0; audit 0 0 0.0; record 1 5 5.0; queue 0 0 0.0; seal 0 0 0.0; uplink 0 0 0.0; flash 0 0 0.0; network 0 0 0.0; vendor 0 0 0.0; other - 100 100.0");
  });

  it("a span an exception left open is closed by the outer one's stop, and the next spans count right", () => {
    cpu = 0;
    meter.use(clock);
    const outer = meter.start();
    cpu += 10;
    meter.start(); // never stopped: its stage threw
    cpu += 10;
    meter.stop("receive", outer);
    const next = meter.start();
    cpu += 7;
    meter.stop("policy", next);
    const by = Object.fromEntries(meter.report().stages.map((s) => [s.stage, s]));
    assert.equal(by.receive!.micros, 20, "the leaked span's time stays with the stage that was running");
    assert.equal(by.policy!.micros, 7);
    assert.equal(by.policy!.count, 1);
  });

  it("reset starts the figures over; a stop after a reset of its span's depth is ignored", () => {
    cpu = 0;
    meter.use(clock);
    const span = meter.start();
    cpu += 40;
    meter.reset();
    meter.stop("policy", span);
    cpu += 5;
    const r = meter.report();
    assert.ok(r.stages.every((s) => s.count === 0 && s.micros === 0));
    assert.equal(r.totalMicros, 5);
  });
});
