/**
 * `npm run bench -- e2e`: the gateway against a plain Mosquitto bridge doing the same job, measured
 * side by side in one run, every part its own process:
 *
 *   vendor   Debian's mosquitto, TLS listener (server cert from a test CA made at run time), shared by both
 *   gateway  the Node board (`node --import tsx hosts/node/main.ts`): broker, policy, audit log on the
 *            flash image, flash queue, HPKE, verified TLS uplink
 *   bridge   a second mosquitto: local broker for the devices + `connection` bridge to the vendor over
 *            verified TLS, `topic bench/# out 1`, mqttv311
 *   load     mqtt.js devices + the observer on the vendor (bench/lib/load.ts); the observer opens the
 *            gateway's envelopes with the vendor key, reads the bridge's plaintext
 *
 * Per repetition (3; the system that goes first alternates), on a fresh gateway / bridge process:
 * closed loop at N = 1, 10, 50 devices (window WINDOW per device, a slot frees when its message is
 * PUBACKed and at the vendor), open loop at 200 and 1,000 msgs/s from 10 devices, QoS 1 throughout;
 * each phase warms up first (excluded). CPU per message = the target process's utime+stime over the
 * closed N = 10 window ÷ messages delivered in it; RSS = VmHWM at the end of the repetition. Lost =
 * PUBACKed to a device but not at the vendor after a bounded drain; a gateway above its capacity drops
 * oldest-first from its 64 KiB flash queue slot and audits it, so the table also shows the gateway's own
 * drop count (bench/overload.bench.ts matches every such message to its drop record by sequence number).
 * The gateway's device limit (16 today) shows as `refused (limit 16)`; the run always finishes.
 * Prints a table (median, and min–max over repetitions) and the line
 * `e2e: ratio <gateway/bridge msgs/s at N=10> p99 <gateway ms>/<bridge ms at 1,000 msgs/s> lost <gateway total>`.
 *
 * Environment: PORTCULLIS_BENCH_REPS (3), PORTCULLIS_BENCH_MEASURE_MS (4000), PORTCULLIS_BENCH_WARMUP_MS
 * (1000), PORTCULLIS_BENCH_PAYLOAD (200 bytes of JSON), PORTCULLIS_CPU_PROF=<dir> (the gateway runs
 * with --cpu-prof; the top 15 self-time functions are printed at the end).
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { makeTestCa } from "../test/lib/test-ca.js";
import { adminGet, cpuProfileTop, fmt, median, runLoadProcess, spread } from "./lib/harness.js";
import type { LoadResult } from "./lib/load.js";
import { CONTRACT_VERSION, FLOW_SLOTS, INTEGRATION, makeDevices, memMb, startBridge, startGateway, startVendor, writeGatewayConfig, type Target } from "./lib/systems.js";

const env = (k: string, d: number): number => (process.env[k] !== undefined && Number.isFinite(Number(process.env[k])) ? Number(process.env[k]) : d);
const REPS = env("PORTCULLIS_BENCH_REPS", 3);
const MEASURE_MS = env("PORTCULLIS_BENCH_MEASURE_MS", 4000);
const WARMUP_MS = env("PORTCULLIS_BENCH_WARMUP_MS", 1000);
const PAYLOAD = env("PORTCULLIS_BENCH_PAYLOAD", 200);
const DRAIN_MS = 20_000;
/** Closed loop: messages outstanding per device. */
export const WINDOW = 8;

interface Phase {
  readonly name: string;
  readonly mode: "closed" | "open";
  readonly n: number;
  readonly rate: number;
}
const PHASES: readonly Phase[] = [
  { name: "closed N=1", mode: "closed", n: 1, rate: 0 },
  { name: "closed N=10", mode: "closed", n: 10, rate: 0 },
  { name: "closed N=50", mode: "closed", n: 50, rate: 0 },
  { name: "open 200/s", mode: "open", n: 10, rate: 200 },
  { name: "open 1000/s", mode: "open", n: 10, rate: 1000 },
];
type System = "gateway" | "bridge";
type Outcome = LoadResult | { error: string };
const isLoad = (o: Outcome | undefined): o is LoadResult => o !== undefined && !("error" in o);

export default async function (): Promise<Record<string, number | string>> {
  const tmp = mkdtempSync(path.join(tmpdir(), "portcullis-bench-e2e-"));
  const profDir = process.env.PORTCULLIS_CPU_PROF ? path.resolve(process.env.PORTCULLIS_CPU_PROF) : undefined;
  if (profDir) mkdirSync(profDir, { recursive: true });
  const results: Record<System, Record<string, Outcome[]>> = { gateway: {}, bridge: {} };
  const rss: Record<System, number[]> = { gateway: [], bridge: [] };
  const dropped: number[] = [];
  const devices = makeDevices(50);
  const ca = await makeTestCa();
  const vendor = await startVendor(path.join(tmp, "vendor"), ca);
  const configDir = path.join(tmp, "gateway-config");
  const vendorKey = path.join(tmp, "vendor.key");
  writeGatewayConfig(configDir, devices, vendor, vendorKey);
  try {
    for (let rep = 0; rep < REPS; rep++) {
      const order: System[] = rep % 2 === 0 ? ["gateway", "bridge"] : ["bridge", "gateway"];
      for (const system of order) {
        const dir = path.join(tmp, `${system}-${rep}`);
        mkdirSync(dir, { recursive: true });
        let target: Target | undefined;
        try {
          target = system === "gateway" ? await startGateway(dir, configDir, vendor.caFile, profDir) : await startBridge(dir, vendor);
          const t = target;
          const run = await runLoadProcess(dir, system, {
            port: t.port, flowSlots: FLOW_SLOTS, payloadBytes: PAYLOAD, observerPort: vendor.plainPort, targetPid: t.pid,
            ...(system === "gateway" ? { hpke: { keyFile: vendorKey, integration: INTEGRATION, contractVersion: CONTRACT_VERSION } } : {}),
            phases: PHASES.map((ph) => ({ name: ph.name, mode: ph.mode, devices: devices.slice(0, ph.n), window: WINDOW, rate: ph.rate, warmupMs: WARMUP_MS, measureMs: MEASURE_MS, drainMs: DRAIN_MS })),
          }, (out) => {
            (results[system][out.name] ??= []).push(out);
            const shown = out.refused ? `refused ${out.refused} (${out.refusal ?? ""})` : `${fmt(out.deliveredInWindow / (out.windowMs / 1000))} msgs/s p99 ${fmt(out.p99, 1)} ms lost ${out.lost}${out.rejected ? ` rejected ${out.rejected}` : ""}`;
            process.stdout.write(`  rep ${rep + 1} ${system.padEnd(7)} ${out.name.padEnd(12)} ${shown}\n`);
          });
          for (const ph of PHASES.slice(run.results.length)) (results[system][ph.name] ??= []).push({ error: run.error ?? "no result" });
          if (run.error) process.stdout.write(`  rep ${rep + 1} ${system}: ${run.error}\n`);
          if (t.exited()) throw new Error(`${system} exited: ${t.log().slice(-1500)}`);
          rss[system].push(memMb(target.pid).peak);
          if (t.kind === "gateway") dropped.push(await gatewayDropped(t).catch(() => NaN));
        } catch (e) {
          process.stdout.write(`  rep ${rep + 1} ${system}: ${e instanceof Error ? e.message : String(e)}\n`);
        } finally {
          await target?.stop();
        }
      }
    }
  } finally {
    await vendor.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  return report(results, rss, dropped, profDir);
}

/** Messages the gateway itself counts as dropped (status `outbound.*.dropped`, each also an audit record). */
async function gatewayDropped(t: Target): Promise<number> {
  const status = JSON.parse(await adminGet(t.httpsPort!, t.ownerToken!, "/api/v1/status")) as { outbound: Record<string, { dropped: Record<string, number> }> };
  return Object.values(status.outbound).reduce((a, o) => a + Object.values(o.dropped).reduce((x, y) => x + y, 0), 0);
}

function report(results: Record<System, Record<string, Outcome[]>>, rss: Record<System, number[]>, dropped: number[], profDir: string | undefined): Record<string, number | string> {
  const figures: Record<string, number | string> = {};
  const rows: string[][] = [];
  const runs = (s: System, ph: string): LoadResult[] => (results[s][ph] ?? []).filter(isLoad);
  const cell = (s: System, ph: string, f: (r: LoadResult) => number, digits = 0): string => {
    const all = results[s][ph] ?? [];
    const rs = runs(s, ph);
    const refused = rs.find((r) => r.refused > 0);
    // Refused at CONNECT (CONNACK "server unavailable" or a closed socket) is the connection limit;
    // no CONNACK in time is a gateway too busy to answer.
    if (refused) return /in time/.test(refused.refusal ?? "") ? `connect timeout (${refused.connected}/${refused.connected + refused.refused})` : `refused (limit ${refused.connected})`;
    if (!rs.length) return all.length ? "error" : "—";
    return spread(rs.map(f), digits);
  };
  const med = (s: System, ph: string, f: (r: LoadResult) => number): number => median(runs(s, ph).filter((r) => !r.refused).map(f));
  const rate = (r: LoadResult): number => r.deliveredInWindow / (r.windowMs / 1000);
  for (const ph of PHASES.filter((p) => p.mode === "closed")) {
    const g = med("gateway", ph.name, rate);
    const b = med("bridge", ph.name, rate);
    rows.push([`${ph.name} msgs/s`, cell("gateway", ph.name, rate), cell("bridge", ph.name, rate), fmt(g / b, 2) + "×"]);
    figures[`${ph.name} msgs/s gateway`] = Number.isFinite(g) ? Math.round(g) : cell("gateway", ph.name, rate);
    figures[`${ph.name} msgs/s bridge`] = Math.round(b);
  }
  for (const ph of PHASES.filter((p) => p.mode === "open")) {
    for (const [q, f] of [["p50", (r: LoadResult) => r.p50], ["p99", (r: LoadResult) => r.p99]] as const) {
      const g = med("gateway", ph.name, f);
      const b = med("bridge", ph.name, f);
      rows.push([`${ph.name} ${q} ms`, cell("gateway", ph.name, f, 2), cell("bridge", ph.name, f, 2), fmt(g / b, 2) + "×"]);
      figures[`${ph.name} ${q} ms gateway`] = Math.round(g * 100) / 100;
      figures[`${ph.name} ${q} ms bridge`] = Math.round(b * 100) / 100;
    }
  }
  const cpu = (r: LoadResult): number => r.cpuMs / r.deliveredInWindow;
  const cg = med("gateway", "closed N=10", cpu);
  const cb = med("bridge", "closed N=10", cpu);
  rows.push(["CPU ms/msg (N=10)", cell("gateway", "closed N=10", cpu, 3), cell("bridge", "closed N=10", cpu, 3), fmt(cg / cb, 1) + "×"]);
  rows.push(["peak RSS MB", spread(rss.gateway, 0), spread(rss.bridge, 0), fmt(median(rss.gateway) / median(rss.bridge), 1) + "×"]);
  const sum = (s: System, f: (r: LoadResult) => number): number => PHASES.reduce((a, ph) => a + runs(s, ph.name).reduce((x, r) => x + f(r), 0), 0);
  const errors = (s: System): number => PHASES.reduce((a, ph) => a + (results[s][ph.name] ?? []).filter((o) => !isLoad(o)).length, 0);
  rows.push(["lost (all phases)", String(sum("gateway", (r) => r.lost)), String(sum("bridge", (r) => r.lost)), ""]);
  rows.push(["  of which dropped (gateway's count)", String(dropped.reduce((a, b) => a + b, 0)), "—", ""]);
  rows.push(["unacked at end", String(sum("gateway", (r) => r.unacked)), String(sum("bridge", (r) => r.unacked)), ""]);
  rows.push(["phases failed", String(errors("gateway")), String(errors("bridge")), ""]);
  figures["CPU ms/msg gateway"] = Math.round(cg * 1000) / 1000;
  figures["CPU ms/msg bridge"] = Math.round(cb * 1000) / 1000;
  figures["peak RSS MB gateway"] = Math.round(median(rss.gateway));
  figures["peak RSS MB bridge"] = Math.round(median(rss.bridge));
  const lost = sum("gateway", (r) => r.lost);
  figures["lost gateway"] = lost;
  figures["lost bridge"] = sum("bridge", (r) => r.lost);

  const head = ["", "gateway (Node board)", "Mosquitto bridge", "ratio"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  process.stdout.write(`\n${REPS} repetitions, median (min–max); QoS 1; ${PAYLOAD}-byte JSON; window ${WINDOW}/device; measuring ${MEASURE_MS} ms after ${WARMUP_MS} ms warm-up\n`);
  process.stdout.write([line(head), ...rows.map(line)].join("\n") + "\n");
  const ratio = med("gateway", "closed N=10", rate) / med("bridge", "closed N=10", rate);
  const summary = `e2e: ratio ${fmt(ratio, 2)} p99 ${fmt(med("gateway", "open 1000/s", (r) => r.p99), 1)}/${fmt(med("bridge", "open 1000/s", (r) => r.p99), 1)} lost ${lost}`;
  process.stdout.write(summary + "\n");
  if (profDir) process.stdout.write(`\ngateway CPU profile (${profDir}), top 15 self time:\n${cpuProfileTop(profDir).join("\n")}\n`);
  figures.summary = summary;
  figures.note = "separate processes on one machine; absolute numbers vary with the machine and its load, compare the ratios";
  return figures;
}
