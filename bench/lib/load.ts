/**
 * The load of the end-to-end benches, a process of its own: N mqtt.js devices publishing QoS 1 to the
 * system under test, and the observer subscribed (QoS 1) to the vendor broker, in one process so that
 * latency = observer receipt − device send is read on one clock (performance.now()).
 *
 *   node --import tsx bench/lib/load.ts <job.json>      → one JSON line (LoadResult) per phase on stdout
 *
 * The phases of a job run in order with one observer: an HPKE context outlives a phase (its enc is only
 * in its first envelopes). Each phase connects its own devices and disconnects them at its end.
 *
 * Closed loop: each device keeps `window` messages outstanding; a slot frees when its message is both
 * PUBACKed and seen at the vendor (or after SLOT_TIMEOUT_MS), so the rate is what the system delivers
 * end to end, not what it accepts. Open loop: `rate` messages/s in aggregate, round robin over the
 * devices, scheduled by the wall clock and never by acks. Warm-up is excluded: throughput counts
 * deliveries inside the measuring window, latency the messages sent inside it, CPU is the target
 * process's utime+stime across it. After the window: drain until every PUBACKed message is seen, or
 * nothing arrives for QUIET_MS, or drainMs pass. Lost = PUBACKed but never seen.
 */
import { readFileSync } from "node:fs";
import mqtt from "mqtt";
import { VendorReceiver, readVendorKey } from "../../tools/open-envelope.js";
import { cpuMs } from "./systems.js";

export interface PhaseJob {
  readonly name: string;
  readonly mode: "closed" | "open";
  readonly devices: readonly { id: string; password: string }[];
  readonly window: number;
  readonly rate: number;
  /** Open loop: offer this many times the previous phase's delivered rate instead of `rate`. */
  readonly rateFactor?: number;
  readonly warmupMs: number;
  readonly measureMs: number;
  readonly drainMs: number;
}

/** One system's phases, run one after the other with one observer (an HPKE context outlives a phase). */
export interface LoadJob {
  readonly port: number;
  readonly flowSlots: number;
  readonly payloadBytes: number;
  readonly observerPort: number;
  /** Set for the gateway: payloads arrive HPKE-sealed (SPEC.md "Outbound envelope"). */
  readonly hpke?: { keyFile: string; integration: string; contractVersion: string };
  readonly targetPid: number;
  readonly phases: readonly PhaseJob[];
}

export interface LoadResult {
  readonly name: string;
  /** Open loop: the aggregate rate offered (msgs/s). */
  readonly offeredRate: number;
  /** Gateway only: envelope sequence numbers the observer never saw (the gateway's drops, SPEC.md "Contexts and sequence numbers"). */
  readonly seqGaps: number;
  /** Gateway only: those sequence numbers as [from, to] ranges, and the highest one seen. */
  readonly gapRanges: readonly (readonly [number, number])[];
  readonly lastSeq: number;
  readonly connected: number;
  readonly refused: number;
  readonly refusal?: string;
  readonly sent: number;
  readonly acked: number;
  readonly delivered: number;
  readonly deliveredInWindow: number;
  readonly windowMs: number;
  readonly cpuMs: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly latencySamples: number;
  /** PUBACKed to a device, never seen at the vendor by the end of the drain. */
  readonly lost: number;
  /** Sent but never PUBACKed by the end of the drain. */
  readonly unacked: number;
  readonly duplicates: number;
  readonly rejected: number;
  /** Open loop: how far the sender fell behind its schedule at worst (ms). */
  readonly scheduleLagMs: number;
}

const SLOT_TIMEOUT_MS = 5000;
const QUIET_MS = 8000;
const CONNECT_TIMEOUT_MS = 8000;
const TAG = 1e7;
/** Between phases, so the devices' disconnects are processed before the next phase connects. */
const PAUSE_MS = 500;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN;
}

function connectDevice(job: LoadJob, d: { id: string; password: string }): Promise<mqtt.MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect({ host: "127.0.0.1", port: job.port, clientId: d.id, username: d.id, password: d.password, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: CONNECT_TIMEOUT_MS, keepalive: 60 });
    const t = setTimeout(() => (c.end(true), reject(new Error("no CONNACK in time"))), CONNECT_TIMEOUT_MS);
    c.once("connect", () => (clearTimeout(t), resolve(c)));
    c.once("error", (e) => (clearTimeout(t), c.end(true), reject(e)));
    c.once("close", () => (clearTimeout(t), reject(new Error("connection closed before CONNACK"))));
  });
}

interface Observer {
  readonly seenAt: Map<number, number>;
  /** Called once per message id seen for the first time. */
  onSeen: (mid: number) => void;
  duplicates: number;
  rejected: number;
  lastArrival: number;
  gaps(): number;
  readonly gapRanges: [number, number][];
  lastSeq(): number;
  close(): Promise<void>;
}

/** Subscribes to everything on the vendor; opens envelopes when the job says HPKE. */
async function observe(job: LoadJob): Promise<Observer> {
  const receiver = job.hpke ? new VendorReceiver({ privateKey: readVendorKey(job.hpke.keyFile), integration: job.hpke.integration, contractVersion: job.hpke.contractVersion }) : undefined;
  const client = await mqtt.connectAsync({ host: "127.0.0.1", port: job.observerPort, clientId: `observer-${process.pid}-${Date.now()}`, protocolVersion: 4, reconnectPeriod: 0, clean: true });
  const o: Observer = {
    seenAt: new Map(), onSeen: () => undefined, duplicates: 0, rejected: 0, lastArrival: performance.now(),
    gaps: () => receiver?.missingTotal ?? 0,
    gapRanges: [],
    lastSeq: () => receiver?.lastSeq ?? -1,
    close: () => client.endAsync(true).catch(() => undefined),
  };
  const seen = (text: string, at: number): void => {
    let mid: unknown;
    try {
      mid = (JSON.parse(text) as { mid?: unknown }).mid;
    } catch {
      return;
    }
    if (typeof mid !== "number") return;
    if (o.seenAt.has(mid)) return void o.duplicates++;
    o.seenAt.set(mid, at);
    o.onSeen(mid);
  };
  client.on("message", (topic, payload) => {
    const at = performance.now();
    o.lastArrival = at;
    if (!receiver) return seen(payload.toString("utf8"), at);
    receiver.open(new Uint8Array(payload), topic).then(
      (r) => (r.kind === "message" && r.missing > 0 && o.gapRanges.push([r.seq - r.missing, r.seq - 1]), r.kind === "message" ? seen(Buffer.from(r.payload).toString("utf8"), at) : r.kind === "rejected" ? o.rejected++ : o.duplicates++),
      () => o.rejected++,
    );
  });
  await client.subscribeAsync("#", { qos: 1 });
  return o;
}

async function runPhase(job: LoadJob, ph: PhaseJob, obs: Observer): Promise<LoadResult> {
  const tag = 1 + Math.floor(Math.random() * 899_999);
  const sentAt = new Map<number, number>();
  const seenAt = obs.seenAt;
  const acked = new Set<number>();
  const owner = new Map<number, number>();
  const dup0 = obs.duplicates;
  const gaps0 = obs.gaps();
  const ranges0 = obs.gapRanges.length;
  const rej0 = obs.rejected;
  const inflight: number[] = ph.devices.map(() => 0);
  let running = false;
  let kick: (dev: number) => void = () => undefined;

  const settle = (mid: number): void => {
    const dev = owner.get(mid);
    if (dev === undefined || !acked.has(mid) || !seenAt.has(mid)) return;
    owner.delete(mid);
    inflight[dev]!--;
    kick(dev);
  };
  obs.onSeen = (mid) => Math.floor(mid / TAG) === tag && settle(mid);

  // One after another: the gateway closes sockets beyond a few awaiting CONNECT at once (a flood
  // guard), and connecting is not what is measured.
  const settled: PromiseSettledResult<mqtt.MqttClient>[] = [];
  for (const d of ph.devices) settled.push(...(await Promise.allSettled([connectDevice(job, d)])));
  const clients = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const refused = settled.length - clients.length;
  const close = async (): Promise<void> => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
  };
  if (refused > 0) {
    const why = settled.find((s) => s.status === "rejected") as PromiseRejectedResult;
    await close();
    return { name: ph.name, offeredRate: ph.rate, seqGaps: 0, gapRanges: [], lastSeq: obs.lastSeq(), connected: clients.length, refused, refusal: String(why.reason?.message ?? why.reason), sent: 0, acked: 0, delivered: 0, deliveredInWindow: 0, windowMs: 0, cpuMs: NaN, p50: NaN, p99: NaN, max: NaN, latencySamples: 0, lost: 0, unacked: 0, duplicates: 0, rejected: 0, scheduleLagMs: 0 };
  }

  let n = 0;
  const pad = "x".repeat(job.payloadBytes);
  const send = (dev: number): void => {
    const mid = tag * TAG + n++;
    const d = ph.devices[dev]!;
    const ts = Math.round(performance.now() * 1000) / 1000;
    const head = `{"mid":${mid},"ts":${ts},"power_w":${100 + (mid % 900)},"energy_wh":${123456 + (mid % 100000)},"voltage":230.1,"serial":"PLG-${d.id}","location":{"room":"kitchen","floor":0},"pad":"`;
    const body = head + pad.slice(0, Math.max(0, job.payloadBytes - head.length - 2)) + `"}`;
    sentAt.set(mid, ts);
    owner.set(mid, dev);
    inflight[dev]!++;
    clients[dev]!.publish(`bench/${d.id}/s${mid % job.flowSlots}`, body, { qos: 1 }, (err) => {
      if (err) return;
      acked.add(mid);
      settle(mid);
    });
  };

  const t0 = performance.now();
  const ws = t0 + ph.warmupMs;
  const we = ws + ph.measureMs;
  let cpu0 = NaN;
  let cpu1 = NaN;
  const cpuTimer = setTimeout(() => (cpu0 = cpuMs(job.targetPid)), ph.warmupMs);
  let scheduleLagMs = 0;
  running = true;
  if (ph.mode === "closed") {
    kick = (dev) => {
      while (running && inflight[dev]! < ph.window) send(dev);
    };
    const reaper = setInterval(() => {
      const now = performance.now();
      for (const [mid, dev] of owner) {
        if (now - sentAt.get(mid)! > SLOT_TIMEOUT_MS) {
          owner.delete(mid);
          inflight[dev]!--;
          kick(dev);
        }
      }
    }, 500);
    for (let d = 0; d < clients.length; d++) kick(d);
    await sleep(we - performance.now());
    running = false;
    clearInterval(reaper);
  } else {
    let due = 0;
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const now = performance.now();
        const target = Math.floor(((Math.min(now, we) - t0) * ph.rate) / 1000);
        if (target - due > 1) scheduleLagMs = Math.max(scheduleLagMs, ((target - due) * 1000) / ph.rate);
        for (; due < target; due++) send(due % clients.length);
        if (now >= we) {
          clearInterval(tick);
          resolve();
        }
      }, 1);
    });
    running = false;
  }
  cpu1 = cpuMs(job.targetPid);
  clearTimeout(cpuTimer);

  // Drain: bounded by drainMs; ends early once every sent message is acked and seen, or when quiet.
  const drainEnd = performance.now() + ph.drainMs;
  for (;;) {
    const now = performance.now();
    if (now > drainEnd) break;
    if (acked.size === n && [...acked].every((m) => seenAt.has(m))) break;
    if (now - obs.lastArrival > QUIET_MS && now - we > QUIET_MS) break;
    await sleep(20);
  }

  const delivered = (): number => {
    let c = 0;
    for (const mid of seenAt.keys()) if (Math.floor(mid / TAG) === tag) c++;
    return c;
  };
  let deliveredInWindow = 0;
  for (const [mid, t] of seenAt) if (t >= ws && t <= we && Math.floor(mid / TAG) === tag) deliveredInWindow++;
  const lat: number[] = [];
  for (const [mid, ts] of sentAt) {
    if (ts < ws || ts > we) continue;
    const at = seenAt.get(mid);
    if (at !== undefined) lat.push(at - ts);
  }
  lat.sort((a, b) => a - b);
  let lost = 0;
  for (const m of acked) if (!seenAt.has(m)) lost++;
  await close();
  return {
    name: ph.name, offeredRate: ph.mode === "open" ? ph.rate : NaN, delivered: delivered(), seqGaps: obs.gaps() - gaps0, gapRanges: obs.gapRanges.slice(ranges0), lastSeq: obs.lastSeq(), connected: clients.length, refused, sent: n, acked: acked.size, deliveredInWindow, windowMs: ph.measureMs,
    cpuMs: cpu1 - cpu0, p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), max: lat.length ? lat[lat.length - 1]! : NaN, latencySamples: lat.length,
    lost, unacked: n - acked.size, duplicates: obs.duplicates - dup0, rejected: obs.rejected - rej0, scheduleLagMs,
  };
}

/** Runs the phases in order, reporting each result as it is known. */
export async function runLoad(job: LoadJob, report: (r: LoadResult) => void): Promise<void> {
  const obs = await observe(job);
  try {
    let previous: LoadResult | undefined;
    for (const p of job.phases) {
      const ph = p.rateFactor && previous ? { ...p, rate: Math.max(1, Math.round((p.rateFactor * previous.deliveredInWindow) / (previous.windowMs / 1000))) } : p;
      previous = await runPhase(job, ph, obs);
      report(previous);
      await sleep(PAUSE_MS);
    }
  } finally {
    await obs.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const job = JSON.parse(readFileSync(process.argv[2]!, "utf8")) as LoadJob;
  runLoad(job, (r) => process.stdout.write(JSON.stringify(r) + "\n")).then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`load: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
