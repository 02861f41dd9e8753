/**
 * Incident response on the whole gateway (in-memory ports, injected clock; runs on Node and in XS):
 * alarm → open (contained in one step) → notes → notify in order → deadline alarms → notice → resolve
 * → review → evidence that verifies; a reboot in the middle keeps the incident and its deadlines.
 */
import assert from "node:assert/strict";
import type { Board, Console, Uplink, UplinkOptions } from "../../src/ports.js";
import { ramFlash, type NorFlash } from "../../src/flash/nor.js";
import { startGateway, type Gateway } from "../../src/gateway.js";
import { FOLLOW_DEFAULTS } from "../../src/incident/routes.js";
import { FLASH_BYTES_NEEDED } from "../../src/gateway/outbound.js";
import { makeDeviceSecret, parseGatewayConfig } from "../../src/config.js";
import { encode } from "../../src/mqtt/codec.js";
import { verifyExport } from "../../src/audit/verify.js";
import { toBase64, toHex, utf8 } from "../../src/util/bytes.js";
import { FakeClock } from "../lib/fake-clock.js";
import { MemoryKeys } from "../lib/memory-keys.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { FakeSocket } from "../fixtures/mqtt/fake-socket.js";

class VendorDouble implements Uplink {
  readonly sent: { topic: string }[] = [];
  connect(o: UplinkOptions) {
    Promise.resolve().then(() => o.onConnect());
    return { publish: (topic: string) => (this.sent.push({ topic }), Promise.resolve()), close: () => undefined };
  }
}

const contract = (publicKey: string) =>
  JSON.stringify({
    format: 1, id: "thermo-cloud", version: "1.0.0", vendor: "ThermoCloud", contact: "privacy@thermocloud.example",
    purpose: "Shows the hall temperature in the vendor's app.", effective: "2026-01-01",
    destinations: [{ id: "tc", protocol: "mqtts", host: "vendor.example", port: 8883, topic: "tc/{device-pseudonym}/state", encryption: "hpke", publicKey, keyId: "tc-test" }],
    flows: [{ id: "state", destination: "tc", devices: ["thermostat", "hall"], topics: ["home/+/telemetry"],
      fields: [{ path: "/temperature_c", class: "environment" }, { path: "/occupied", class: "presence" }], rate: { perMinute: 600, minIntervalMs: 0 } }],
    terms: { retentionDays: 30, breachNotificationHours: 48, consent: { environment: false, presence: false }, sla: { uptimePercent: 99, maxLatencyMs: 1000 },
      exit: { exportFormat: "json", deletionDays: 30 }, queue: { maxBytes: 8192, overflow: "drop-oldest", ttlSeconds: 3600 } },
  });

const HOUR = 3_600_000;

async function settle(clock: FakeClock, ms = 50): Promise<void> {
  for (let i = 0; i < 20; i++) {
    clock.tick(Math.ceil(ms / 20));
    await Promise.resolve();
    await new Promise<void>((r) => Promise.resolve().then(() => r()));
  }
}

describe("incident response on the gateway", () => {
  const random = seededRandom("incident-test");
  const crypto = nobleCrypto(random);
  const vendor = crypto.p256Generate();
  let clock: FakeClock;
  let g: Gateway;
  let out: string[];
  let verificationKey: Uint8Array | undefined;
  let token: string | undefined;
  let flash: NorFlash;
  let keys: MemoryKeys;
  let board: Board;

  async function boot(withContract = true): Promise<void> {
    await g?.stop();
    out = [];
    const konsole: Console = { start: () => undefined, write: (t) => void out.push(t) };
    board = {
      clock, timers: clock, random, crypto, flash, keys, console: konsole,
      network: { listen: () => { throw new Error("not used"); } },
      uplink: new VendorDouble(),
    };
    const secret = makeDeviceSecret(crypto, new Uint8Array(16), "pw");
    const parsed = parseGatewayConfig(
      JSON.stringify({ name: "test home", devices: [{ id: "thermostat", secret }, { id: "hall", secret }, { id: "doorbell", secret }], audit: { groupCommitMs: 0 }, incidentResponse: { profile: "gdpr", contact: "Alex, alex@home.example" } }),
      withContract ? [{ source: "tc.json", text: contract(toBase64(vendor.publicKey)) }] : [],
    );
    assert.ok(parsed.ok, JSON.stringify(parsed));
    g = await startGateway(board, parsed.config, { onVerificationKey: (k) => (verificationKey ??= k), onOwnerToken: (t) => (token ??= t) });
    await settle(clock);
  }

  beforeEach(async () => {
    clock = new FakeClock();
    flash = ramFlash(FLASH_BYTES_NEEDED);
    keys = new MemoryKeys();
    verificationKey = undefined;
    token = undefined;
    await boot();
  });
  afterEach(async () => {
    await g?.stop();
  });

  function device(id: string): FakeSocket {
    const s = new FakeSocket();
    s.handler = g.broker.accept(s);
    s.handler.onData(encode({ cmd: "connect", cleanSession: true, keepalive: 60, clientId: id, username: id, password: utf8("pw") }));
    return s;
  }
  const publish = (s: FakeSocket, id: string, body: unknown): void =>
    s.handler!.onData(encode({ cmd: "publish", topic: `home/${id}/telemetry`, payload: utf8(JSON.stringify(body)), qos: 0, retain: false, dup: false }));
  const api = async (method: string, target: string, body?: unknown) => {
    const r = await g.admin.handle({ method, target, authorization: `Bearer ${token}`, remote: "192.0.2.9", ...(body !== undefined ? { body: JSON.stringify(body), headers: { "content-type": "application/json" } } : {}) });
    return { status: r.status, text: r.body.join(""), json: () => JSON.parse(r.body.join("")) };
  };

  it("contains in one step, in order, each step recorded with who acted; each step undoable", async () => {
    const t = device("thermostat");
    await settle(clock);
    await g.shell.execute("consent thermo-cloud environment opt-in");
    publish(t, "thermostat", { temperature_c: 20 });
    await settle(clock, 2100);
    const before = g.audit.log.nextSeq;
    const answer = await g.shell.execute("incident open Thermostat over-collects --integration thermo-cloud --device thermostat --severity high");
    assert.match(answer, /opened inc-1: contained/);
    const recs = g.audit.log.query({ since: before }).filter((r) => r.kind !== "flow-summary");
    const steps = recs.map((r) => r.reason);
    const order = ["incident-opened", "quarantined", "freeze", "device-disabled", "disabled", "legal-hold", undefined, "incident-contained", "incident-evidence"];
    assert.deepEqual(steps.slice(0, order.length), order, JSON.stringify(recs));
    assert.equal(recs[6]!.kind, "seal");
    assert.equal(recs[4]!.kind, "disconnect", "the live session is closed after the credentials are disabled");
    assert.equal(recs[0]!.detail!.who, "console");
    assert.equal(recs[3]!.detail!.via, "console");
    // The live session was closed, the device is refused with CONNACK 5, also after a reboot.
    assert.ok(t.closed);
    const again = device("thermostat");
    await settle(clock);
    assert.equal((again.received[0] as { returnCode?: number }).returnCode, 5);
    // The integration's next flow is denied (another device, same contract).
    const h = device("hall");
    await settle(clock);
    publish(h, "hall", { temperature_c: 19 });
    await settle(clock);
    assert.ok(g.audit.log.query({ kind: "flow", device: "hall" }).some((r) => r.decision === "deny" && r.reason === "quarantined"));
    assert.ok(g.audit.held?.startsWith("incident inc-1"));
    const ev = g.audit.log.query({ kind: "incident" }).find((r) => r.reason === "incident-evidence")!;
    assert.equal(ev.detail!.sealSeq, recs[6]!.seq);
    assert.match(String(ev.detail!["i.thermo-cloud"]), /^quarantined v1\.0\.0 sha256:\S+ flows 1 allowed 0 denied; consent environment=opt-in/);
    await boot();
    const third = device("thermostat");
    await settle(clock);
    assert.equal((third.received[0] as { returnCode?: number }).returnCode, 5, "disabled survives a reboot");
    // Undo each step separately.
    assert.match(await g.shell.execute("device enable thermostat"), /enabled/);
    assert.match(await g.shell.execute("release thermo-cloud"), /released/);
    const fourth = device("thermostat");
    await settle(clock);
    assert.equal((fourth.received[0] as { returnCode?: number }).returnCode, 0);
    assert.ok(g.audit.log.query({ kind: "admin", device: "thermostat" }).some((r) => r.reason === "device-enabled" && r.detail?.who === "console"));
  });

  it("from alarm to review over HTTPS, with deadlines, a reboot in the middle, notice counts and a verifying evidence bundle", async () => {
    await g.shell.execute("consent thermo-cloud environment opt-in");
    await g.shell.execute("consent thermo-cloud presence opt-in");
    const t = device("thermostat");
    const h = device("hall");
    await settle(clock);
    for (let i = 0; i < 5; i++) {
      publish(t, "thermostat", { temperature_c: 20 + i, occupied: true, gps: [1, 2] });
      publish(h, "hall", { temperature_c: 18, occupied: false });
      await settle(clock, 2100);
    }
    // The gateway's own detector: the thermostat keeps sending a field no contract declares.
    const alarm = g.audit.log.query({ kind: "alarm" }).find((r) => r.reason === "undeclared-fields" && r.device === "thermostat");
    assert.ok(alarm, "an undeclared-fields alarm after 3 messages");
    assert.equal(alarm.detail!.count, 3);
    assert.ok(out.join("").includes("ALARM: thermostat keeps sending fields no contract of it declares"));
    assert.ok(!g.audit.log.query({ kind: "alarm" }).some((r) => r.device === "hall"), "the hall sends only declared fields");
    const alarmSeq = alarm.seq;
    clock.tick(30_000);
    const opened = await api("POST", "/api/v1/incidents", { title: "Thermostat sends GPS", scope: { integrations: ["thermo-cloud"], devices: ["thermostat"] }, severity: "high", detectedBy: alarmSeq });
    assert.equal(opened.status, 201, opened.text);
    const inc = opened.json();
    assert.equal(inc.state, "contained");
    assert.deepEqual(inc.deadlines.parties.map((p: { party: string }) => p.party), ["household", "vendor:thermo-cloud", "data-subjects", "supervisory-authority"], "internal, external, regulatory");
    assert.equal(inc.deadlines.parties[1].hours, 48, "the contract's breachNotificationHours");
    const rec = g.audit.log.query({ kind: "incident" }).find((r) => r.reason === "incident-opened")!;
    assert.deepEqual([rec.detail!.who, rec.detail!.role, rec.detail!.via, rec.detail!.remote], ["owner-token", "owner", "token", "192.0.2.9"]);
    // Bad input changes nothing.
    const n0 = g.audit.log.nextSeq;
    assert.equal((await api("POST", "/api/v1/incidents", { title: 5 })).json().field, "title");
    assert.equal((await api("POST", "/api/v1/incidents", { title: "x", scope: { integrations: ["nope"] } })).json().field, "integration");
    assert.equal((await api("GET", "/api/v1/incidents/inc-9")).status, 404);
    assert.equal((await api("POST", "/api/v1/incidents/inc-1/notifications", { party: "press" })).json().field, "party");
    assert.equal(g.audit.log.nextSeq, n0 + g.audit.log.query({ since: n0 }).filter((r) => r.kind === "admin" || r.kind === "flow-summary").length, "only refusals were recorded");

    assert.equal((await api("POST", "/api/v1/incidents/inc-1/notes", { text: "vendor app shows the home's coordinates" })).status, 201);
    // A note appears in the timeline at once.
    const tl = (await api("GET", "/api/v1/incidents/inc-1/timeline")).text.trim().split("\n").map((l) => JSON.parse(l));
    assert.ok(tl.some((l) => l.reason === "incident-note" && l.detail.who === "owner-token"));
    assert.ok(tl.some((l) => l.kind === "flow-summary" && l.device === "thermostat"));
    assert.ok(tl.some((l) => l.reason === "legal-hold") && tl.some((l) => l.kind === "seal" && l.seq === inc.evidence.sealSeq), "the hold and the seal are containment steps of the timeline");

    // Deadlines: 50% of the household's 24 h.
    assert.equal(await g.shell.execute("incident notify inc-1 household family-chat").then((s) => /recorded/.test(s)), true);
    clock.tick(37 * HOUR);
    await g.incidents.tick();
    await settle(clock);
    const alarms = () => g.audit.log.query({ kind: "alarm" }).filter((r) => r.detail?.incident === "inc-1").map((r) => `${r.detail!.party}|${r.detail!.level}`);
    assert.deepEqual(alarms().sort(), ["data-subjects|50%", "supervisory-authority|50%", "vendor:thermo-cloud|50%"]);
    assert.ok(out.join("").includes("ALARM: incident inc-1: notifying vendor:thermo-cloud is 50%"));

    // Reboot in the middle: the incident and its deadlines come back from the log.
    await boot();
    assert.match(await g.shell.execute("status"), /incident +inc-1 contained: vendor:thermo-cloud 10 h 59 min left, data-subjects 34 h 59 min left/);
    const back = (await api("GET", "/api/v1/incidents/inc-1")).json();
    assert.equal(back.state, "contained");
    assert.equal(back.notifications[0].party, "household");
    clock.tick(7 * HOUR); // 44 h: 90% of the vendor's 48 h
    await g.incidents.tick();
    await settle(clock);
    await g.incidents.tick();
    await settle(clock);
    assert.ok(alarms().includes("vendor:thermo-cloud|90%"));
    assert.equal(alarms().filter((a) => a === "vendor:thermo-cloud|50%").length, 1, "each level once, also across the reboot");
    clock.tick(5 * HOUR);
    await g.incidents.tick();
    await settle(clock);
    assert.ok(alarms().includes("vendor:thermo-cloud|overdue"));
    for (const p of ["vendor:thermo-cloud", "data-subjects", "supervisory-authority"]) assert.equal((await api("POST", "/api/v1/incidents/inc-1/notifications", { party: p, reference: `ref-${p}` })).status, 201);
    assert.ok((await g.shell.execute("incident show inc-1")).includes("notified (record"));
    assert.match(await g.shell.execute("status"), /incident +inc-1 contained: every party notified/);

    // The notice: five components, counts as computed from the export independently.
    const notice = await api("GET", "/api/v1/incidents/inc-1/notice?format=json");
    assert.equal(notice.status, 200);
    const n = notice.json();
    for (const k of ["description", "data", "consequences", "steps", "recommendations", "contact"]) assert.ok(k in n, k);
    assert.equal(n.contact, "Alex, alex@home.example");
    assert.deepEqual([...n.data.flows[0].classes].sort(), ["environment", "presence"]);
    assert.ok(n.consequences.some((c: { class: string; consequence: string }) => c.class === "presence" && /burglary/.test(c.consequence)));
    const evidence = (await api("GET", "/api/v1/incidents/inc-1/evidence")).text.trim().split("\n");
    const v = verifyExport(evidence, verificationKey!, crypto);
    assert.ok(v.ok, v.message);
    let records = 0;
    const devs = new Set<string>();
    for (const l of evidence) {
      const o = JSON.parse(l);
      for (const row of o.summary ?? []) if (row.integration === "thermo-cloud") { records += row.count; devs.add(row.device); }
    }
    assert.equal(records, 10);
    assert.equal(n.data.records, records);
    assert.equal(n.data.devices, devs.size);
    assert.equal(n.data.pseudonyms, 2);
    const hash = g.audit.log.query({ kind: "incident" }).filter((r) => r.reason === "incident-notice").pop()!;
    assert.equal(hash.detail!.sha256, toHex(crypto.sha256(utf8(notice.text.trimEnd()))), "the record holds the SHA-256 of the notice served");
    // The same log gives the same notice: a repeat call records nothing and cites the earlier record.
    const noticeRecords = () => g.audit.log.query({ kind: "incident" }).filter((r) => r.reason === "incident-notice").length;
    const recordedBefore = noticeRecords();
    const rawNotice = async (authorization: string) => g.admin.handle({ method: "GET", target: "/api/v1/incidents/inc-1/notice?format=json", authorization, remote: "192.0.2.9" });
    const again = await rawNotice(`Bearer ${token}`);
    assert.equal(again.body.join(""), notice.text, "same content");
    assert.equal(again.headers?.["x-portcullis-recorded"], "unchanged");
    assert.equal(again.headers?.["x-portcullis-record"], String(hash.seq));
    assert.match(await g.shell.execute("incident notice inc-1"), new RegExp(`unchanged since record ${hash.seq}`));
    assert.equal(noticeRecords(), recordedBefore, "no new record for an unchanged notice");
    // An auditor reads it without a record, even once the notice changed (a note is new content).
    assert.equal((await api("POST", "/api/v1/accounts", { name: "ann", role: "auditor", password: "correct horse battery" })).status, 201);
    clock.tick(30_000);
    const login = await g.admin.handle({ method: "POST", target: "/api/v1/login", remote: "192.0.2.9", body: JSON.stringify({ account: "ann", password: "correct horse battery", bearer: true }), headers: { "content-type": "application/json" } });
    assert.equal(login.status, 200, login.body.join(""));
    const auditor = `Bearer ${(JSON.parse(login.body.join("")) as { token: string }).token}`;
    assert.equal((await api("POST", "/api/v1/incidents/inc-1/notes", { text: "vendor confirmed the upload" })).status, 201);
    const seen = await rawNotice(auditor);
    assert.equal(seen.status, 200);
    assert.equal(seen.headers?.["x-portcullis-recorded"], "no");
    assert.equal(seen.headers?.["x-portcullis-record"], undefined);
    assert.ok(JSON.parse(seen.body.join("")).description.notes.some((x: { text: string }) => x.text === "vendor confirmed the upload"));
    assert.equal(noticeRecords(), recordedBefore, "an auditor's read writes no notice record");
    const owner = await rawNotice(`Bearer ${token}`);
    assert.equal(owner.headers?.["x-portcullis-recorded"], "new");
    assert.equal(noticeRecords(), recordedBefore + 1, "the owner's call records the changed notice once");
    assert.equal((await rawNotice(`Bearer ${token}`)).headers?.["x-portcullis-recorded"], "unchanged");
    assert.ok(evidence.some((l) => l.includes("incident-opened")), "the bundle holds the incident's records");
    // Tampering with one line fails verification.
    const i = evidence.findIndex((l) => l.includes("incident-note"));
    const bad = [...evidence];
    bad[i] = bad[i]!.replace("coordinates", "weather");
    assert.equal(verifyExport(bad, verificationKey!, crypto).ok, false);

    // Resolve → review (7 days) → reviewed.
    assert.equal((await api("POST", "/api/v1/incidents/inc-1/review", { prevent: "x" })).status, 409);
    assert.equal((await api("POST", "/api/v1/incidents/inc-1/resolve")).status, 200);
    const pre = (await api("GET", "/api/v1/incidents/inc-1/review?format=json")).json();
    assert.equal(pre.detection.by, "alarm");
    assert.equal(pre.detection.alarmSeq, alarmSeq);
    assert.ok(pre.containment.timeToContainMs !== null && pre.containment.timeToContainMs >= 0);
    assert.equal(pre.prevent, null);
    clock.tick(8 * 24 * HOUR);
    await g.incidents.tick();
    await settle(clock);
    assert.ok(alarms().includes("review|overdue"));
    const done = await api("POST", "/api/v1/incidents/inc-1/review", { prevent: "review contracts' field lists before approving", actions: ["ask ThermoCloud to delete", "add a GPS filter"] });
    assert.equal(done.status, 200, done.text);
    assert.equal(done.json().review.state, "reviewed");
    assert.deepEqual(done.json().review.actions, ["ask ThermoCloud to delete", "add a GPS filter"]);
    const md = await api("GET", "/api/v1/incidents/inc-1/review?format=md");
    assert.match(md.text, /## What would have prevented it\nreview contracts/);
  });

  it("disables and enables a device's credentials over HTTPS: CONNACK 5 while disabled, recorded with who; unknown id 404", async () => {
    const t = device("doorbell");
    await settle(clock);
    assert.equal((t.received[0] as { returnCode?: number }).returnCode, 0);
    const off = await api("POST", "/api/v1/devices/doorbell/disable");
    assert.equal(off.status, 200, off.text);
    assert.equal(off.json().disabled, true);
    await settle(clock);
    assert.ok(t.closed, "the live session is closed");
    const refused = device("doorbell");
    await settle(clock);
    assert.equal((refused.received[0] as { returnCode?: number }).returnCode, 5);
    const rec = g.audit.log.query({ kind: "admin", device: "doorbell" }).find((r) => r.reason === "device-disabled")!;
    assert.equal(rec.detail!["who"], "owner-token");
    assert.equal(rec.detail!["via"], "token");
    assert.equal((await api("POST", "/api/v1/devices/doorbell/enable")).status, 200);
    const back = device("doorbell");
    await settle(clock);
    assert.equal((back.received[0] as { returnCode?: number }).returnCode, 0);
    const unknown = await api("POST", "/api/v1/devices/nobody/disable");
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json().field, "id");
  });

  it("raises an alarm on an authentication-failure burst (MQTT), once per window", async () => {
    for (let i = 0; i < 12; i++) {
      const s = new FakeSocket("198.51.100.7:4000");
      s.handler = g.broker.accept(s);
      s.handler.onData(encode({ cmd: "connect", cleanSession: true, keepalive: 60, clientId: "hall", username: "hall", password: utf8("guess" + i) }));
    }
    await settle(clock);
    const a = g.audit.log.query({ kind: "alarm" }).filter((r) => r.reason === "auth-failures");
    assert.equal(a.length, 1);
    assert.deepEqual([a[0]!.detail!.via, a[0]!.detail!.remote, a[0]!.detail!.count], ["MQTT", "198.51.100.7", 10]);
  });

  it("exit: export first, then quarantine, purge, crypto-shred, remove; the certificate's record verifies", async () => {
    await g.shell.execute("consent thermo-cloud environment opt-in");
    const t = device("thermostat");
    await settle(clock);
    publish(t, "thermostat", { temperature_c: 20 });
    await settle(clock, 2100);
    assert.ok([...keys.map.keys()].some((k) => k.startsWith("ps.")), "a pseudonym key exists before");
    const r = await api("POST", "/api/v1/integrations/thermo-cloud/exit");
    assert.equal(r.status, 200, r.text);
    const { certificate: c, export: bundle, markdown } = r.json();
    assert.ok(verifyExport(bundle, verificationKey!, crypto).ok, "the owner's export verifies");
    assert.ok(bundle.some((l: string) => l.includes('"kind":"consent"')) && bundle.some((l: string) => l.includes('"kind":"contract"')), "consent and contract history are in it");
    assert.match(c.destroyed.pseudonymKey, /^[0-9a-f]{8}$/);
    assert.ok(![...keys.map.keys()].some((k) => k.startsWith("ps.")), "the pseudonym key is gone from the KeyStore");
    assert.equal(Object.entries(g.outbound.summary()).filter(([k]) => k.startsWith("thermo-cloud/")).reduce((n, [, v]) => n + v.queued, 0), 0);
    const steps = g.audit.log.query({ integration: "thermo-cloud", since: c.export.to }).map((x) => x.reason);
    const at = (x: string) => steps.indexOf(x);
    assert.ok(at("quarantined") < at("key-destroyed") && at("key-destroyed") < at("integration-deleted"), JSON.stringify(steps));
    // The certificate's record, as anyone with an export and the verification key can check it.
    const later = await g.audit.exportJsonl(c.deletion.seq, undefined);
    assert.ok(verifyExport(later, verificationKey!, crypto).ok);
    const line = later.map((l) => JSON.parse(l)).find((o) => o.seq === c.deletion.seq);
    assert.equal(line.chain, c.deletion.chain);
    assert.equal(line.reason, "integration-deleted");
    assert.equal(line.detail.keyFingerprint, c.destroyed.pseudonymKey);
    assert.match(markdown, new RegExp(`record ${c.deletion.seq}`));
    publish(t, "thermostat", { temperature_c: 21 });
    await settle(clock);
    assert.equal(g.audit.log.query({ kind: "flow", device: "thermostat" }).pop()!.reason, "no-contract");
    assert.equal((await api("POST", "/api/v1/integrations/nope/exit")).status, 404);
    const exitedRow = () => (g.status().integrations as { id: string; state: string; deletionSeq?: number }[]).find((i) => i.id === "thermo-cloud");
    assert.deepEqual(exitedRow(), { id: "thermo-cloud", state: "exited", version: null, deletionSeq: c.deletion.seq });

    // A reboot with the contract file still in the config: the exit holds.
    await boot();
    assert.ok(out.join("").includes(`thermo-cloud: exited (deletion record ${c.deletion.seq}); its contract is not loaded. Remove tc.json`), out.join(""));
    assert.ok(!g.policy.engine.integrations().some((i) => i.id === "thermo-cloud"), "the contract is not loaded again");
    assert.match(await g.shell.execute("status"), /integrations +.*thermo-cloud \(exited\)/);
    assert.deepEqual(exitedRow(), { id: "thermo-cloud", state: "exited", version: null, deletionSeq: c.deletion.seq });
    const t2 = device("thermostat");
    await settle(clock);
    publish(t2, "thermostat", { temperature_c: 22 });
    await settle(clock, 2100);
    assert.equal(g.audit.log.query({ kind: "flow", device: "thermostat" }).pop()!.reason, "no-contract");
    assert.ok(![...keys.map.keys()].some((k) => k.startsWith("ps.")), "no new pseudonym key");
    // The owner removes the file: the exit is forgotten, and the same id may come back later.
    await boot(false);
    assert.equal(exitedRow(), undefined);
    assert.ok(!keys.map.has("ex.integrations"));
    await boot(true);
    assert.ok(g.policy.engine.integrations().some((i) => i.id === "thermo-cloud"), "a contract added again after the file was removed loads");
  });

  it("without a wall clock, deadlines run on monotonic time since opening, and say so", async () => {
    clock = new FakeClock(Date.UTC(2026, 0, 1), false);
    await boot();
    const r = await g.shell.execute("incident open Doorbell odd --device doorbell");
    assert.match(r, /monotonic time since boot/);
    clock.tick(13 * HOUR);
    await g.incidents.tick();
    await settle(clock);
    assert.ok(g.audit.log.query({ kind: "alarm" }).some((a) => a.detail?.party === "household" && a.detail.level === "50%" && a.detail.clockSet === false));
  });

  it("timeline ?follow=1: the entries so far, then each new in-scope record; keep-alive on silence; ends at the max; close cancels its timer", async () => {
    const answer = await g.shell.execute("incident open Thermostat over-collects --integration thermo-cloud --device thermostat --severity high");
    assert.match(answer, /opened inc-1/);
    await settle(clock);
    const follow = () => g.admin.handle({ method: "GET", target: "/api/v1/incidents/inc-1/timeline?follow=1", authorization: `Bearer ${token}`, remote: "192.0.2.9" });
    /** Pulls one chunk, moving the clock in 500 ms steps until it comes (or `ms` passed: then "(none)"). */
    const pull = async (stream: { next(): Promise<string | undefined> }, ms: number): Promise<string | undefined> => {
      let got: { v: string | undefined } | undefined;
      void stream.next().then((v) => (got = { v }));
      for (let t = 0; !got && t <= ms; t += 500) {
        for (let k = 0; k < 30 && !got; k++) await Promise.resolve();
        if (!got) clock.tick(500);
      }
      return got ? got.v : "(none)";
    };
    assert.equal((await g.admin.handle({ method: "GET", target: "/api/v1/incidents/inc-1/timeline?follow=yes", authorization: `Bearer ${token}`, remote: "x" })).status, 400);
    const r = await follow();
    assert.equal(r.status, 200);
    assert.ok(r.stream);
    const first = r.body.join("").trim().split("\n").map((l) => JSON.parse(l) as { reason?: string });
    assert.ok(first.some((x) => x.reason === "incident-opened"), "the entries so far come first");
    // A new in-scope record arrives on the open stream.
    const waiting = pull(r.stream, 5000);
    for (let k = 0; k < 30; k++) await Promise.resolve();
    assert.equal((await api("POST", "/api/v1/incidents/inc-1/notes", { text: "vendor called back" })).status, 201);
    const got = await waiting;
    assert.match(got ?? "", /vendor called back/);
    assert.ok(!/incident-opened/.test(got ?? ""), "an entry already sent is not sent again");
    // Silence: a bare newline after the keep-alive period, so idle timeouts see traffic.
    assert.equal(await pull(r.stream, FOLLOW_DEFAULTS.keepAliveMs + 2000), "\n");
    // The host closes it (client gone) while a pull waits: the pull ends and the stream's timer is gone.
    const base = clock.pendingCount;
    let ended: string | undefined | null = null;
    void r.stream.next().then((v) => (ended = v));
    for (let k = 0; k < 30; k++) await Promise.resolve();
    assert.equal(clock.pendingCount, base + 1, "one poll timer while a pull waits");
    r.stream.close();
    for (let k = 0; k < 5; k++) await Promise.resolve();
    assert.equal(ended, undefined);
    assert.equal(clock.pendingCount, base, "no timer left behind");
    assert.equal(await r.stream.next(), undefined);
    // A stream nobody closes still ends at the max duration.
    const r2 = await follow();
    let last: string | undefined = "";
    for (let i = 0; i < 100 && last !== undefined; i++) last = await pull(r2.stream!, FOLLOW_DEFAULTS.maxMs);
    assert.equal(last, undefined, "ended at the max duration");
    assert.equal(clock.pendingCount, base);
  });
});
