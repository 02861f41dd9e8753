/**
 * The role × route × method matrix on the whole gateway (in-memory ports, the same wiring as the
 * boards): every route `gateway.admin.routes` serves — built-in, account routes, and whatever the
 * gateway registers for other issues — with no credential, wrong credentials and each role. Zero
 * unexpected allows (or refusals). Also: the setup code goes to the console, `unlock` works there.
 */
import assert from "node:assert/strict";
import type { Board, Console } from "../../src/ports.js";
import { ramFlash } from "../../src/flash/nor.js";
import { startGateway } from "../../src/gateway.js";
import { FLASH_BYTES_NEEDED } from "../../src/gateway/outbound.js";
import { parseGatewayConfig } from "../../src/config.js";
import { FakeClock } from "../lib/fake-clock.js";
import { MemoryKeys } from "../lib/memory-keys.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { roleMatrix } from "../lib/admin-matrix.js";

describe("admin role matrix on the gateway", () => {
  it("every served route: 0 unexpected allows; setup code and unlock on the console", async () => {
    const clock = new FakeClock();
    const random = seededRandom("matrix-gateway");
    const crypto = nobleCrypto(random);
    const out: string[] = [];
    const konsole: Console = { start: () => undefined, write: (t) => void out.push(t) };
    const board: Board = {
      clock, timers: clock, random, crypto, flash: ramFlash(FLASH_BYTES_NEEDED), keys: new MemoryKeys(), console: konsole,
      network: { listen: () => { throw new Error("not used"); } },
      uplink: { connect: () => ({ publish: () => Promise.resolve(), close: () => undefined }) },
    };
    const parsed = parseGatewayConfig(JSON.stringify({ name: "matrix", devices: [], audit: { groupCommitMs: 0 } }), []);
    assert.ok(parsed.ok);
    let token = "";
    const g = await startGateway(board, parsed.config, { onVerificationKey: () => undefined, onOwnerToken: (t) => void (token = t) });
    try {
      assert.ok(out.some((l) => /Setup code [A-Z2-7]{4}(-[A-Z2-7]{4}){3}/.test(l)), "the setup code is on the console");
      const auth = g.admin.auth!;
      // Accounts straight in the store (the gateway's real PBKDF2 count; the HTTP path is tested elsewhere).
      auth.accounts.create("alice", "owner", "a long password");
      auth.accounts.create("ann", "auditor", "a long password");
      auth.accounts.create("ivan", "installer", "a long password");
      const r = await roleMatrix(g.admin, (ms) => clock.tick(ms), token, { owner: "alice", auditor: "ann", installer: "ivan" });
      assert.deepEqual(r.unexpected, []);
      assert.ok(r.checked >= g.admin.routes.length * 12);
      assert.equal(await g.shell.execute("unlock ann"), "ann unlocked");
      assert.match(await g.shell.execute("unlock"), /give an account/);
    } finally {
      await g.stop();
    }
  });
});
