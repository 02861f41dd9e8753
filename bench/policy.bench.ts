/**
 * Policy engine throughput: decisions per second for a 200-byte JSON message against 20 integrations
 * × 10 rules, on Node and as XS meter counts (computrons) per decision via xsnap.
 * "all-match": every integration has a rule for the message (20 decisions per message);
 * "one-match": only one does, the others cover other devices (shows the index at work).
 */
import { PolicyEngine } from "../src/policy/engine.js";
import { utf8 as utf8Encode } from "../src/util/bytes.js";
import { nobleCrypto, seededRandom } from "../test/lib/noble-crypto.js";
import { FakeClock } from "../test/lib/fake-clock.js";
import { MemoryKeys } from "../test/lib/memory-keys.js";

const PUBLIC_KEY = "BL4t2satWZZs+b4iwoqvTHrU67Thuz/AHsPwcAfz9JgakdvHQIVqfBk8mEHROdSlQPupoPmzlP0cOrTtpaLLl5Q=";

/** The 200-byte device message (padded to exactly 200 bytes). */
export function message(): Uint8Array {
  const base = { power_w: 123.4, energy_wh: 98765, voltage: 229.8, current_a: 0.54, serial: "SN-0042-7781", fw: "1.4.2", rssi: -61, gps: { lat: 52.37, lon: 4.89 }, room: "kitchen", pad: "" };
  const text = JSON.stringify(base);
  base.pad = "x".repeat(200 - text.length);
  const out = utf8Encode(JSON.stringify(base));
  if (out.length !== 200) throw new Error(`message is ${out.length} bytes`);
  return out;
}

/** An engine with 20 integrations × 10 rules; `allMatch` decides whether all claim device dev-3. */
export function scenario(allMatch: boolean): { engine: PolicyEngine; clock: FakeClock } {
  const clock = new FakeClock();
  const random = seededRandom("bench");
  const engine = new PolicyEngine({ crypto: nobleCrypto(random), keys: new MemoryKeys(), random, clock, onEvent: () => undefined });
  for (let i = 0; i < 20; i++) {
    const flows = Array.from({ length: 10 }, (_, k) => {
      const dev = allMatch ? `dev-${k}` : `dev-${i * 10 + k}`;
      return {
        id: `r${k}`,
        destination: "main",
        devices: [dev],
        topics: [`home/${dev}/telemetry`],
        fields: [
          { path: "/power_w", class: "energy" },
          { path: "/energy_wh", class: "energy" },
          { path: "/voltage", class: "energy" },
          { path: "/current_a", class: "energy" },
          { path: "/serial", class: "identifier" },
          { path: "/fw", class: "diagnostic" },
        ],
        pseudonymize: ["/serial"],
        rate: { perMinute: 6000, minIntervalMs: 0 },
      };
    });
    const c = {
      format: 1, id: `int-${i}`, version: "1", vendor: `Vendor ${i}`, contact: "privacy@vendor.example",
      purpose: "Benchmark integration.", effective: "2026-01-01",
      destinations: [{ id: "main", protocol: "mqtts", host: "localhost", port: 18883, topic: "v/{integration}/{device-pseudonym}", encryption: "hpke", publicKey: PUBLIC_KEY, keyId: "k" }],
      flows,
      terms: { retentionDays: 30, consent: { energy: false, identifier: false, diagnostic: false }, sla: { uptimePercent: 99, maxLatencyMs: 1000 }, exit: { exportFormat: "json", deletionDays: 30 }, queue: { maxBytes: 4096, overflow: "drop-oldest", ttlSeconds: 600 } },
    };
    const r = engine.load(JSON.stringify(c), `int-${i}.json`);
    if (r.status !== "accepted") throw new Error(`bench contract rejected: ${JSON.stringify(r)}`);
  }
  return { engine, clock };
}

/** Evaluates `n` messages (10 ms apart: under the 6000/min rate limit); returns decisions made. */
export function drive(engine: PolicyEngine, clock: FakeClock, n: number): number {
  const payload = message();
  let decisions = 0;
  for (let i = 0; i < n; i++) {
    clock.tick(10);
    for (const d of engine.evaluate({ device: "dev-3", topic: "home/dev-3/telemetry", payload })) {
      if (d.verdict !== "minimize") throw new Error(`unexpected ${d.verdict} ${d.reason}`);
      decisions++;
    }
  }
  return decisions;
}

function nodeRate(allMatch: boolean): { perSecond: number; perMessage: number } {
  const { engine, clock } = scenario(allMatch);
  drive(engine, clock, 200);
  const t0 = performance.now();
  let decisions = 0;
  let n = 0;
  while (performance.now() - t0 < 1000) {
    decisions += drive(engine, clock, 100);
    n += 100;
  }
  const s = (performance.now() - t0) / 1000;
  return { perSecond: Math.round(decisions / s), perMessage: decisions / n };
}

async function xsPerDecision(allMatch: boolean): Promise<number | string> {
  const xsPath = "../test/xs/xsnap.js";
  const { bundleForXs, runInXs } = (await import(xsPath)) as typeof import("../test/xs/xsnap.js");
  const here = new URL(".", import.meta.url).pathname;
  const meter = async (n: number) => {
    const src = `import { scenario, drive } from ${JSON.stringify(here + "policy.bench.ts")};
const s = scenario(${allMatch}); print(String(drive(s.engine, s.clock, ${n})));`;
    const run = await runInXs(await bundleForXs(src, here));
    if (!run.meter) throw new Error(`xsnap gave no meter: ${run.lines.join(" | ")}`);
    return { compute: run.meter.compute, decisions: Number(run.lines.at(-1)) };
  };
  const a = await meter(20);
  const b = await meter(220);
  return Math.round((b.compute - a.compute) / (b.decisions - a.decisions));
}

export default async function (): Promise<Record<string, number | string>> {
  const all = nodeRate(true);
  const one = nodeRate(false);
  const out: Record<string, number | string> = {
    "policy node decisions/s (20 int × 10 rules, all match, 200 B)": all.perSecond,
    "policy node decisions/s (20 int × 10 rules, one match, 200 B)": one.perSecond,
  };
  try {
    out["policy xs computrons/decision (all match)"] = await xsPerDecision(true);
    out["policy xs computrons/decision (one match)"] = await xsPerDecision(false);
  } catch (e) {
    out["policy xs"] = `not measured: ${e instanceof Error ? e.message : String(e)}`;
  }
  return out;
}
