/**
 * The incident timeline over a real audit log (property test): every record in the timeline is in
 * scope and in the window, and every in-scope record in the window is in the timeline — for any mix
 * of records, scope and awareness time; and the incident is rebuilt from the log alone.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { ramFlash } from "../../src/flash/nor.js";
import type { AuditEvent, AuditRecord } from "../../src/audit/types.js";
import { IncidentManager, type IncidentEnv } from "../../src/incident/manager.js";
import { DEFAULT_INCIDENT_RESPONSE } from "../../src/incident/deadlines.js";
import { newDevice, openLog } from "../powerloss/support.js";

const DAY = 86_400_000;
const DEVICES = ["d1", "d2", "d3"];
const INTEGRATIONS = ["i1", "i2", "i3"];

const event = fc.oneof(
  fc.record({ kind: fc.constant("flow" as const), decision: fc.constantFrom("allow" as const, "deny" as const), device: fc.constantFrom(...DEVICES), integration: fc.constantFrom(...INTEGRATIONS), reason: fc.constant("ok") }),
  fc.record({ kind: fc.constant("connect" as const), decision: fc.constant("deny" as const), device: fc.constantFrom(...DEVICES), reason: fc.constant("x") }),
  fc.record({ kind: fc.constant("admin" as const), decision: fc.constant("info" as const), integration: fc.constantFrom(...INTEGRATIONS), reason: fc.constant("key-rotated") }),
  fc.record({ kind: fc.constant("incident" as const), decision: fc.constant("info" as const), reason: fc.constant("incident-note"), detail: fc.record({ incident: fc.constantFrom("inc-1", "inc-2"), text: fc.constant("n") }) }),
  fc.record({
    kind: fc.constant("flow-summary" as const), decision: fc.constant("info" as const), reason: fc.constant("summary"),
    summary: fc.uniqueArray(fc.record({ minute: fc.constant(0), device: fc.constantFrom(...DEVICES), integration: fc.constantFrom(null, ...INTEGRATIONS), decision: fc.constant("allow" as const), rule: fc.constant(null), count: fc.nat(5), bytes: fc.nat(50), fieldsDropped: fc.constant(0) }), { minLength: 1, maxLength: 3, selector: (r) => `${r.device}|${r.integration}` }),
  }),
);

/** The scope rule, written out again independently of src/incident/model.ts. */
function expected(r: AuditRecord, integrations: string[], devices: string[], start: number): boolean {
  if (r.time < start) return false;
  const names = [r.integration, r.device, ...(r.summary ?? []).flatMap((row) => [row.integration, row.device])];
  return r.detail?.incident === "inc-1" || names.some((n) => n != null && (integrations.includes(n) || devices.includes(n)));
}

/** Every record of the log, page by page (a query answers at most one page). */
function allRecords(log: { query(q: { since: number }): AuditRecord[] }): AuditRecord[] {
  const out: AuditRecord[] = [];
  for (let page = log.query({ since: 1 }); page.length > 0; page = log.query({ since: page[page.length - 1]!.seq + 1 })) out.push(...page);
  return out;
}

describe("incident timeline (property, real audit log)", () => {
  it("holds exactly the in-scope records of the window", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(event, fc.integer({ min: 0, max: 3 * DAY })), { maxLength: 30 }),
        fc.subarray(INTEGRATIONS), fc.subarray(DEVICES), fc.integer({ min: 0, max: 60 }),
        async (steps, integrations, devices, awareDaysAgo) => {
          const dev = newDevice();
          // A seal a day, not every 15 min: up to 90 simulated days would otherwise write 8,640 seals,
          // slow under XS and past one query page (the reference below pages anyway).
          const log = await openLog(ramFlash(64 * 4096), dev, { sealEveryMs: DAY });
          for (const [e, dt] of steps) {
            dev.clock.tick(dt);
            const ev = e as AuditEvent;
            await log.append(ev.summary ? { ...ev, summary: ev.summary.map((row) => ({ ...row, minute: Math.floor(dev.clock.now() / 60000) * 60000 })) } : ev);
          }
          const awareAt = dev.clock.now() - awareDaysAgo * DAY;
          await log.append({ kind: "incident", decision: "info", reason: "incident-opened", detail: { incident: "inc-1", title: "t", severity: "low", integrations: integrations.join(","), devices: devices.join(","), awareAt, clockSet: true, mono: dev.clock.monotonic(), detectedBy: "owner", who: "console" } });
          // Rebuilt from the log alone.
          const env = { log, clock: dev.clock, config: DEFAULT_INCIDENT_RESPONSE } as unknown as IncidentEnv;
          const m = new IncidentManager(env);
          const inc = m.get("inc-1");
          assert.deepEqual([inc.integrations, inc.devices, inc.awareAt], [integrations, devices, awareAt]);
          const start = awareAt - 30 * DAY;
          const got = m.timeline("inc-1").map((r) => r.seq);
          const want = allRecords(log).filter((r) => expected(r, integrations, devices, start)).map((r) => r.seq);
          assert.deepEqual(got, want);
          await log.close();
        },
      ),
      { numRuns: 15 },
    );
  });
});
