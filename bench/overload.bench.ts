/**
 * `npm run bench -- overload`: the gateway at twice its capacity. Every part is its own process, as in
 * e2e.bench.ts (vendor mosquitto over TLS, the Node board, the load with the observer). First the
 * capacity: closed loop, N = 10 devices. Then 2× that rate, open loop (wall clock, not acks) from the
 * same 10 devices for PORTCULLIS_OVERLOAD_SECONDS (60), then a drain (bounded). Checks that every
 * message PUBACKed to a device is either at the vendor or accounted for as dropped in the gateway's
 * audit log (queue drop records with their counts, and flow denies), read over the admin HTTPS API
 * with the owner token; also the gateway's own `status` counters. Reports lost, crashed (the gateway
 * process exited) and peak RSS (VmHWM). Every wait is bounded.
 *
 * PORTCULLIS_CPU_PROF=<dir> runs the gateway with --cpu-prof and prints its top 15 self-time functions.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { makeTestCa } from "../test/lib/test-ca.js";
import { accountDrops, adminGet, auditRecords, cpuProfileTop, droppedCount, fmt, runLoadProcess } from "./lib/harness.js";
import type { LoadResult } from "./lib/load.js";
import { CONTRACT_VERSION, FLOW_SLOTS, INTEGRATION, makeDevices, memMb, startGateway, startVendor, writeGatewayConfig, type Target } from "./lib/systems.js";

const env = (k: string, d: number): number => (process.env[k] !== undefined && Number.isFinite(Number(process.env[k])) ? Number(process.env[k]) : d);
const OVERLOAD_MS = env("PORTCULLIS_OVERLOAD_SECONDS", 60) * 1000;
const PAYLOAD = env("PORTCULLIS_BENCH_PAYLOAD", 200);
const DEVICES = 10;
const WINDOW = 8;
const FACTOR = 2;
const DRAIN_MS = 60_000;

interface Outbound {
  readonly queued: number;
  readonly sent: number;
  readonly dropped: Record<string, number>;
  readonly failures: Record<string, number>;
  readonly connects: number;
}

export default async function (): Promise<Record<string, number | string>> {
  const tmp = mkdtempSync(path.join(tmpdir(), "portcullis-bench-overload-"));
  const profDir = process.env.PORTCULLIS_CPU_PROF ? path.resolve(process.env.PORTCULLIS_CPU_PROF) : undefined;
  if (profDir) mkdirSync(profDir, { recursive: true });
  const devices = makeDevices(DEVICES);
  const ca = await makeTestCa();
  const vendor = await startVendor(path.join(tmp, "vendor"), ca);
  const configDir = path.join(tmp, "gateway-config");
  const vendorKey = path.join(tmp, "vendor.key");
  writeGatewayConfig(configDir, devices, vendor, vendorKey);
  let gateway: Target | undefined;
  try {
    gateway = await startGateway(path.join(tmp, "gateway"), configDir, vendor.caFile, profDir);
    const g = gateway;
    const phases = [
      { name: "capacity", mode: "closed" as const, devices, window: WINDOW, rate: 0, warmupMs: 1000, measureMs: 5000, drainMs: 10_000 },
      { name: "overload", mode: "open" as const, devices, window: 0, rate: 0, rateFactor: FACTOR, warmupMs: 0, measureMs: OVERLOAD_MS, drainMs: DRAIN_MS },
    ];
    // Once a second, the uplink as the gateway sees it (PORTCULLIS_OVERLOAD_TRACE=1): what holds the window.
    const trace = process.env.PORTCULLIS_OVERLOAD_TRACE ? setInterval(() => {
      void adminGet(g.httpsPort!, g.ownerToken!, "/api/v1/status", 900).then((body) => {
        const st = JSON.parse(body) as { outbound: Record<string, Outbound & { inFlight: number; acknowledged: number; sent: number }>; limits: { pipelineBytes: unknown; devicesPaused: boolean } };
        const o = Object.values(st.outbound)[0];
        process.stdout.write(`  trace sent ${o?.sent} inFlight ${o?.inFlight} acknowledged ${o?.acknowledged} queued ${o?.queued} pipeline ${JSON.stringify(st.limits.pipelineBytes)} paused ${st.limits.devicesPaused}\n`);
      }, (e: unknown) => process.stdout.write(`  trace: ${(e as Error).message}\n`));
    }, 1000) : undefined;
    const run = await runLoadProcess(tmp, "overload", {
      port: g.port, flowSlots: FLOW_SLOTS, payloadBytes: PAYLOAD, observerPort: vendor.plainPort, targetPid: g.pid,
      hpke: { keyFile: vendorKey, integration: INTEGRATION, contractVersion: CONTRACT_VERSION }, phases,
    }, (r) => process.stdout.write(`  ${r.name.padEnd(9)} ${r.refused ? `refused ${r.refused}` : `offered ${fmt(r.offeredRate)} msgs/s, delivered ${fmt(r.deliveredInWindow / (r.windowMs / 1000))} msgs/s, acked ${r.acked}, seen ${r.delivered}, acked but unseen ${r.lost}`}\n`));
    if (trace) clearInterval(trace);
    const crashed = g.exited();
    const peak = memMb(g.pid).peak;
    const [cap, over] = run.results as [LoadResult | undefined, LoadResult | undefined];
    const figures: Record<string, number | string> = {};
    if (run.error) figures.error = run.error.slice(0, 500);
    figures["capacity msgs/s (closed loop, N=10)"] = cap ? Math.round(cap.deliveredInWindow / (cap.windowMs / 1000)) : "—";
    figures["offered msgs/s (open loop)"] = over ? over.offeredRate : "—";
    figures["overload seconds"] = OVERLOAD_MS / 1000;
    let lost: number | string = "—";
    if (!crashed && over) {
      const queue = await auditRecords(g.httpsPort!, g.ownerToken!, "queue");
      const flow = await auditRecords(g.httpsPort!, g.ownerToken!, "flow");
      const purges = await auditRecords(g.httpsPort!, g.ownerToken!, "purge");
      const drops = droppedCount(queue, flow);
      const status = JSON.parse(await adminGet(g.httpsPort!, g.ownerToken!, "/api/v1/status")) as { outbound: Record<string, Outbound>; audit: { records: number; failClosed: boolean } };
      const ob = Object.values(status.outbound)[0];
      const statusDropped = ob ? Object.values(ob.dropped).reduce((a, b) => a + b, 0) : NaN;
      const unseen = (cap?.lost ?? 0) + over.lost;
      const account = accountDrops(queue, flow, [...(cap?.gapRanges ?? []), ...over.gapRanges], over.lastSeq);
      // A PUBACKed message the vendor never saw is accounted for only by a drop record naming its seq
      // (or a refusal / deny record); still-queued ones are not lost. Gaps no drop record names are losses.
      const accounted = account.gapsCovered + account.droppedAfterLast + account.refusedOrDenied + (ob?.queued ?? 0);
      lost = Math.max(unseen - accounted, account.gapsUncovered, 0);
      figures["unseen seqs named by a drop record"] = account.gapsCovered + account.droppedAfterLast;
      figures["unseen seqs no drop record names"] = account.gapsUncovered;
      figures["acked (PUBACK to a device)"] = (cap?.acked ?? 0) + over.acked;
      figures["seen at the vendor"] = (cap?.delivered ?? 0) + over.delivered;
      figures["acked but not at the vendor"] = unseen;
      figures["dropped per audit log (sum of counts read)"] = drops.queue + drops.flowDenied;
      figures["dropped per audit log (running totals)"] = drops.queueByTotal + drops.flowDenied;
      figures["unseen seqs below the oldest drop record, by its total"] = account.coveredByTotal;
      figures["audit purge records (sectors given up)"] = purges.length;
      figures["drop reasons (status)"] = JSON.stringify(ob?.dropped ?? {});
      figures["uplink connects / failures"] = `${ob?.connects ?? "—"} / ${JSON.stringify(ob?.failures ?? {})}`;
      figures["dropped, yet delivered (in flight when dropped)"] = Math.max(0, drops.queue - account.gapsCovered - account.droppedAfterLast);
      figures["drop reasons (audit)"] = JSON.stringify(drops.reasons);
      figures["dropped per status counters"] = statusDropped;
      figures["envelope seq gaps at the vendor"] = (cap?.seqGaps ?? 0) + over.seqGaps;
      figures["audit records read"] = queue.length + flow.length;
      figures["still queued after drain"] = ob?.queued ?? NaN;
      figures["unacked at end (never PUBACKed)"] = (cap?.unacked ?? 0) + over.unacked;
      figures["open-loop schedule lag max ms"] = Math.round(over.scheduleLagMs);
      figures["audit fail-closed"] = String(status.audit.failClosed);
    }
    figures.lost = lost;
    figures.crashed = crashed ? 1 : 0;
    figures["gateway peak RSS MB"] = Math.round(peak);
    const line = `overload: ${FACTOR}× ${figures["capacity msgs/s (closed loop, N=10)"]} msgs/s for ${OVERLOAD_MS / 1000} s: lost ${lost} crashed ${crashed ? 1 : 0} peak RSS ${fmt(peak)} MB`;
    process.stdout.write(line + "\n");
    figures.summary = line;
    await g.stop();
    gateway = undefined;
    if (profDir) process.stdout.write(`\ngateway CPU profile (${profDir}), top 15 self time:\n${cpuProfileTop(profDir).join("\n")}\n`);
    return figures;
  } finally {
    await gateway?.stop();
    await vendor.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}
