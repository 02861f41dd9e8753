/**
 * The `npm test` totals count skipped tests, and on CI a skip for a tool `.ci/run` installs is a
 * failure (test/lib/skip.ts). Runs a real mocha on a fixture with a pass, a skip, a failure and a
 * helper skip, locally and with CI=true.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mochaCounts, totalsLine, xsCounts } from "../../tools/test-totals.mjs";
import { onCi, skipUnlessAvailable } from "../lib/skip.js";

function mochaOnFixture(env: Record<string, string>) {
  const { CI: _ci, ...rest } = process.env;
  const r = spawnSync("npx", ["--no-install", "mocha", "--no-config", "-n", "import=tsx", "--reporter", "spec", "test/fixtures/skip/skip-fixture.ts"], {
    encoding: "utf8",
    env: { ...rest, FORCE_COLOR: "0", ...env },
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

describe("npm test totals and the CI skip rule", function () {
  this.timeout(60_000);

  it("counts mocha's pending tests as skipped; locally the helper skips", () => {
    const r = mochaOnFixture({});
    assert.deepEqual(mochaCounts(r.out), { passed: 1, failed: 1, skipped: 2 });
    assert.match(r.out, /skipped: mosquitto not installed \(fixture\) \(apt-get install -y mosquitto\)/);
  });

  it("with CI=true a skip for a dependency .ci/run installs fails the run instead", () => {
    const r = mochaOnFixture({ CI: "true" });
    assert.deepEqual(mochaCounts(r.out), { passed: 1, failed: 2, skipped: 1 });
    assert.match(r.out, /CI=true and mosquitto is missing/);
    assert.notEqual(r.code, 0);
  });

  it("reads the XS closing line with and without skips, and prints the three totals", () => {
    assert.deepEqual(xsCounts("…\nxs: 12 passed, 1 failed, 3 skipped\n"), { passed: 12, failed: 1, skipped: 3 });
    assert.deepEqual(xsCounts("xs: 5 passed, 0 failed\n"), { passed: 5, failed: 0, skipped: 0 });
    assert.equal(xsCounts("no closing line"), undefined);
    assert.equal(totalsLine({ passed: 3, failed: 0, skipped: 2 }), "3 passed, 0 failed, 2 skipped");
    // A test that prints a count of its own before mocha's summary does not fool the totals.
    assert.deepEqual(mochaCounts("  99 passing\n...\n  4 passing (1s)\n  1 pending\n"), { passed: 4, failed: 0, skipped: 1 });
  });

  it("knows CI from the CI variable, and a present dependency never skips", () => {
    assert.equal(onCi({ CI: "true" }), true);
    assert.equal(onCi({ CI: "1" }), true);
    assert.equal(onCi({}), false);
    assert.equal(onCi({ CI: "false" }), false);
    assert.equal(onCi({ CI: "" }), false);
    const never = { skip(): never { throw new Error("skip must not be called"); } };
    skipUnlessAvailable(never, "cc", undefined, "apt-get install -y gcc", { CI: "true" });
  });
});
