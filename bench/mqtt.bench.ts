/** MQTT codec throughput: decode and encode of a 200-byte PUBLISH on Node, plus XS meter counts per packet. */
import path from "node:path";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import vm from "node:vm";
import { Decoder, encode, type Packet } from "../src/mqtt/codec.js";
import { bundleForXs, runInXs } from "../test/xs/xsnap.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** A QoS 1 PUBLISH whose encoding is exactly 200 bytes. */
function samplePacket(): Packet {
  const topic = "home/livingroom/sensor-01/telemetry"; // 35 bytes
  // 1 (type) + 2 (length, > 127) + 2 + 35 (topic) + 2 (id) + payload = 200
  const payload = new Uint8Array(200 - 1 - 2 - 2 - topic.length - 2);
  for (let i = 0; i < payload.length; i++) payload[i] = 0x20 + (i % 90);
  return { cmd: "publish", topic, payload, qos: 1, retain: false, dup: false, packetId: 4242 };
}

function rate(n: number, run: () => void): number {
  run(); // warm up
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) run();
  const s = Number(process.hrtime.bigint() - start) / 1e9;
  return Math.round(n / s);
}

/** Heap bytes retained-or-garbage per call, measured between forced GCs (young generation large enough). */
function bytesPer(n: number, run: () => void): number | string {
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc") as (() => void) | undefined;
  if (typeof gc !== "function") return "n/a";
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < n; i++) run();
  const after = process.memoryUsage().heapUsed;
  return Math.round((after - before) / n);
}

/** An XS script that decodes or encodes the sample `n` times (run with n = 0 for the baseline). */
const XS_ENTRY = (n: number, work: "decode" | "encode") => `
import { Decoder, encode } from "./src/mqtt/codec.ts";
const packet = { cmd: "publish", topic: "home/livingroom/sensor-01/telemetry", payload: new Uint8Array(158), qos: 1, retain: false, dup: false, packetId: 4242 };
const bytes = encode(packet);
let count = 0;
const d = new Decoder({ onPacket: () => { count++; } });
for (let i = 0; i < ${n}; i++) ${work === "decode" ? "d.push(bytes)" : "encode(packet)"};
print("done " + count);
`;

/** XS meter counts per operation: computrons (bytecode steps) and heap slots in use (before any GC). */
async function xsPer(work: "decode" | "encode"): Promise<{ compute: number; slots: number }> {
  const n = 1000;
  const [base, full] = await Promise.all([0, n].map(async (k) => (await runInXs(await bundleForXs(XS_ENTRY(k, work), root))).meter));
  if (!base || !full) throw new Error("xsnap reported no meter");
  return { compute: Math.round((full.compute - base.compute) / n), slots: Math.round((full.heapCount - base.heapCount) / n) };
}

export default async function (): Promise<Record<string, number | string>> {
  const packet = samplePacket();
  const bytes = encode(packet);
  if (bytes.length !== 200) throw new Error(`sample is ${bytes.length} bytes`);
  let sink = 0;
  const decoder = new Decoder({ onPacket: (p) => void (sink += p.cmd.length) });
  const N = 200_000;
  const out: Record<string, number | string> = {
    "node decode 200 B PUBLISH (packets/s)": rate(N, () => decoder.push(bytes)),
    "node encode 200 B PUBLISH (packets/s)": rate(N, () => void encode(packet)),
    "node decode, 1-byte chunks (packets/s)": rate(N / 50, () => {
      for (let i = 0; i < bytes.length; i++) decoder.push(bytes.subarray(i, i + 1));
    }),
    "node heap per decode (bytes, approx)": bytesPer(1000, () => decoder.push(bytes)),
    "node heap per encode (bytes, approx)": bytesPer(1000, () => void encode(packet)),
  };
  if (sink === 0) throw new Error("decoder produced nothing");
  try {
    for (const work of ["decode", "encode"] as const) {
      const m = await xsPer(work);
      out[`xs computrons per ${work}`] = m.compute;
      out[`xs heap slots per ${work} (approx)`] = m.slots;
    }
  } catch (e) {
    out["xs"] = `skipped: ${String(e)}`;
  }
  return out;
}
