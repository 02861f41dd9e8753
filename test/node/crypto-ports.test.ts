/** The Crypto contract suite against node:crypto (the Node board) and @noble (the XS test run), plus Random. */
import assert from "node:assert/strict";
import { cryptoContract } from "../contract/crypto.contract.js";
import { nodeCrypto } from "../../hosts/node/crypto.js";
import { nodeRandom } from "../../hosts/node/random.js";
import { nobleCrypto } from "../lib/noble-crypto.js";

cryptoContract("node:crypto", () => nodeCrypto());
cryptoContract("@noble", () => nobleCrypto(nodeRandom()));

describe("nodeRandom", () => {
  it("fills the whole array and differs between calls", () => {
    const r = nodeRandom();
    const a = new Uint8Array(64);
    const b = new Uint8Array(64);
    r.fill(a);
    r.fill(b);
    assert.notDeepEqual(a, b);
    assert.ok(a.some((x) => x !== 0));
    r.fill(new Uint8Array(0));
  });
});
