/**
 * Outbound figures: HPKE seals per second with the context established (node:crypto and @noble),
 * the cost of setting a context up (one ECDH + key schedule), envelope overhead, and XS meter counts
 * (computrons) per seal and per setup, measured by running the same core code inside xsnap.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { nodeCrypto } from "../hosts/node/crypto.js";
import { nodeRandom } from "../hosts/node/random.js";
import { nobleCrypto } from "../test/lib/noble-crypto.js";
import { EnvelopeSealer } from "../src/outbound/envelope.js";
import { setupBaseS } from "../src/crypto/hpke.js";
import type { Clock, Crypto } from "../src/ports.js";
import { bundleForXs, runInXs } from "../test/xs/xsnap.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const clock: Clock = { now: () => Date.now(), monotonic: () => performance.now(), isSet: () => true };

function perSecond(ms: number, n: number): number {
  return Math.round((n / ms) * 1000);
}

function timeIt(minMs: number, op: () => void): { n: number; ms: number } {
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < minMs) {
    for (let i = 0; i < 20; i++) op();
    n += 20;
    t = performance.now();
  }
  return { n, ms: t - t0 };
}

function measure(c: Crypto, payloadBytes: number) {
  const vendor = c.p256Generate();
  const sealer = new EnvelopeSealer({ crypto: c, clock, integration: "acme", contractVersion: "1", encryption: "hpke", vendorPublicKey: vendor.publicKey });
  const payload = new Uint8Array(payloadBytes).fill(7);
  let seq = 0;
  sealer.seal(seq++, "acme/v1/telemetry", payload);
  sealer.acknowledged();
  const seal = timeIt(500, () => sealer.seal(seq++, "acme/v1/telemetry", payload));
  const setup = timeIt(500, () => setupBaseS(c, vendor.publicKey, new Uint8Array(16)));
  const env = sealer.seal(seq++, "acme/v1/telemetry", payload);
  return { sealsPerSec: perSecond(seal.ms, seal.n), setupMs: setup.ms / setup.n, overhead: env.length - payloadBytes };
}

/** Computrons for `n` seals (context established) and `m` setups inside XS, on @noble. */
async function xsMeter(seals: number, setups: number): Promise<number | undefined> {
  const src = `
    import { nobleCrypto, seededRandom } from ${JSON.stringify(path.join(root, "test/lib/noble-crypto.ts"))};
    import { deriveKeyPair, setupBaseS } from ${JSON.stringify(path.join(root, "src/crypto/hpke.ts"))};
    const c = nobleCrypto(seededRandom("bench"));
    const r = deriveKeyPair(c, new Uint8Array(32).fill(1));
    const e = deriveKeyPair(c, new Uint8Array(32).fill(2));
    const ctx = setupBaseS(c, r.publicKey, new Uint8Array(16), e);
    const pt = new Uint8Array(64).fill(7);
    const aad = new Uint8Array(40);
    for (let i = 0; i < ${seals}; i++) ctx.seal(aad, pt);
    for (let i = 0; i < ${setups}; i++) setupBaseS(c, r.publicKey, new Uint8Array(16), e);
  `;
  const run = await runInXs(await bundleForXs(src, root));
  return run.meter?.compute;
}

export default async function outboundBench(): Promise<Record<string, number | string>> {
  const node = nodeCrypto();
  const noble = nobleCrypto(nodeRandom());
  const n64 = measure(node, 64);
  const n512 = measure(node, 512);
  const b64 = measure(noble, 64);
  const out: Record<string, number | string> = {
    "seals/s node:crypto 64 B (context up)": n64.sealsPerSec,
    "seals/s node:crypto 512 B": n512.sealsPerSec,
    "seals/s @noble 64 B": b64.sealsPerSec,
    "context setup ms node:crypto (ECDH + key schedule)": Number(n64.setupMs.toFixed(3)),
    "context setup ms @noble": Number(b64.setupMs.toFixed(3)),
    "envelope overhead bytes (context known)": n64.overhead,
    "envelope overhead bytes (first of context, with enc)": 26 + 65 + 16,
  };
  try {
    const base = await xsMeter(0, 0);
    const seals = await xsMeter(100, 0);
    const setups = await xsMeter(0, 5);
    if (base !== undefined && seals !== undefined && setups !== undefined) {
      out["XS computrons per seal 64 B (@noble)"] = Math.round((seals - base) / 100);
      out["XS computrons per context setup (@noble)"] = Math.round((setups - base) / 5);
    }
  } catch (e) {
    out["XS meter"] = `unavailable: ${(e as Error).message}`;
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await outboundBench());
}
