/** Per-device ACLs: %c/%u substitution, filter coverage, default deny, roles, and gateway.json validation. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { compileAcls, DeviceAcl, filterCovers, parseAcl, parseDeviceRoles, parseRules, substitute } from "../../src/mqtt/acl.js";
import { referenceMatches } from "../fixtures/mqtt/reference-topic.js";
import { parseGatewayConfig } from "../../src/config.js";

describe("mqtt acl: patterns", () => {
  it("substitutes %c and %u, and grants nothing when a value would change the pattern's shape", () => {
    assert.equal(substitute("tele/%c/#", "plug1", "u"), "tele/plug1/#");
    assert.equal(substitute("u/%u/%c", "c", "bob"), "u/bob/c");
    assert.equal(substitute("u/%u", "c", undefined), undefined);
    assert.equal(substitute("u/%u", "c", "a/b"), undefined);
    assert.equal(substitute("u/%u", "c", "#"), undefined);
    assert.equal(substitute("plain/topic", "c", undefined), "plain/topic");
  });

  it("a pattern covers a filter only when it matches every topic the filter can", () => {
    const cases: [string, string, boolean][] = [
      ["#", "a/b", true],
      ["#", "#", true],
      ["#", "$SYS/x", false], // §4.7.2: # never matches $ topics
      ["$SYS/#", "$SYS/x", true],
      ["a/#", "a", true],
      ["a/#", "a/+/c", true],
      ["a/+", "a/b", true],
      ["a/+", "a/+", true],
      ["a/+", "a/#", false],
      ["a/+", "a", false],
      ["a/b", "a/+", false],
      ["a/b", "a/b", true],
      ["+/b", "a/b", true],
      ["+/b", "$x/b", false],
      ["a/b", "a/b/c", false],
      ["tele/dev1/#", "tele/#", false],
      ["tele/+/STATE", "tele/+/STATE", true],
    ];
    for (const [p, f, want] of cases) assert.equal(filterCovers(p, f), want, `${p} covers ${f}`);
  });

  it("coverage is sound: a covered filter's topics all match the pattern (property)", () => {
    const level = fc.constantFrom("a", "b", "$s");
    const filter = fc.tuple(fc.array(fc.oneof(level, fc.constant("+")), { minLength: 1, maxLength: 3 }), fc.boolean()).map(([l, h]) => (h ? [...l, "#"] : l).join("/"));
    const topic = fc.array(fc.constantFrom("a", "b", "c", "$s"), { minLength: 1, maxLength: 4 }).map((l) => l.join("/"));
    fc.assert(
      fc.property(filter, filter, fc.array(topic, { minLength: 1, maxLength: 8 }), (p, f, topics) => {
        if (!filterCovers(p, f)) return;
        for (const t of topics) if (referenceMatches(f, t)) assert.ok(referenceMatches(p, t), `${p} covers ${f} but not ${t}`);
      }),
      { numRuns: 500 },
    );
  });
});

describe("mqtt acl: devices and roles", () => {
  const roles = { controller: { publish: ["homeassistant/#"], subscribe: ["#"] } };

  it("default deny once ACLs are in use; roles, own rules, cmd/%c/# and the legacy subscribe list", () => {
    const { localRouting, byId } = compileAcls(
      [
        { id: "ha", username: "ha", subscribe: [], roles: ["controller"] },
        { id: "plug1", username: "plug1", subscribe: ["time/now"], acl: { publish: ["tele/%c/#", "stat/%c/#"], subscribe: ["cmnd/%c/#"] } },
        { id: "lamp", username: "lamp", subscribe: [] },
      ],
      { roles },
    );
    assert.equal(localRouting, true);
    const ha = byId.get("ha")!;
    const plug = byId.get("plug1")!;
    const lamp = byId.get("lamp")!;
    assert.ok(ha.canSubscribe("#") && ha.canSubscribe("tele/+/STATE") && ha.canPublish("homeassistant/light/x/config"));
    assert.ok(!ha.canPublish("cmnd/plug1/POWER"));
    assert.ok(plug.canPublish("tele/plug1/STATE") && !plug.canPublish("tele/plug2/STATE") && !plug.canPublish("homeassistant/x"));
    assert.ok(plug.canSubscribe("cmnd/plug1/POWER") && plug.canSubscribe("cmd/plug1/#") && plug.canSubscribe("time/now"));
    assert.ok(!plug.canSubscribe("#") && !plug.canSubscribe("cmnd/+/POWER") && !plug.canSubscribe("time/+"));
    assert.ok(!lamp.canPublish("anything") && lamp.canSubscribe("cmd/lamp/x") && !lamp.canSubscribe("cmd/plug1/x"));
  });

  it("without any ACL: publishing unrestricted (contracts decide), nothing routed locally", () => {
    const { localRouting, byId } = compileAcls([{ id: "d", username: "d", subscribe: ["x/y"] }], undefined);
    assert.equal(localRouting, false);
    assert.ok(byId.get("d")!.canPublish("any/topic"));
    assert.ok(byId.get("d")!.canSubscribe("x/y") && !byId.get("d")!.canSubscribe("x/+"));
    assert.equal(byId.get("d")!.restricted, false);
  });

  it("drops patterns that substitution makes unusable (a username with a slash)", () => {
    const acl = DeviceAcl.compile("c", "a/b", ["u/%u/#"], ["u/%u/#"]);
    assert.ok(!acl.canPublish("u/a/b/x") && !acl.canSubscribe("u/a/#"));
  });
});

describe("mqtt acl: gateway.json validation", () => {
  it("reports each bad field with its JSON path", () => {
    const errors: { path: string; message: string }[] = [];
    const acl = parseAcl({ roles: { controller: { subscribe: ["#"], publish: ["a/#/b", 7, "x/%q"] }, "bad name!": {}, r2: { read: [] } }, extra: 1 }, errors);
    assert.deepEqual(errors.map((e) => e.path).sort(), ["/acl/extra", "/acl/roles/bad name!", "/acl/roles/controller/publish/0", "/acl/roles/controller/publish/1", "/acl/roles/controller/publish/2", "/acl/roles/r2/read"].sort());
    assert.deepEqual(acl?.roles["controller"], { publish: [], subscribe: ["#"] });
    const e2: { path: string; message: string }[] = [];
    assert.deepEqual(parseDeviceRoles(["controller", "nope"], "/devices/0/roles", acl, e2), ["controller"]);
    assert.deepEqual(e2.map((e) => e.path), ["/devices/0/roles/1"]);
    const e3: { path: string; message: string }[] = [];
    assert.equal(parseRules("x", "/devices/1/acl", e3), undefined);
    assert.deepEqual(e3.map((e) => e.path), ["/devices/1/acl"]);
    const e4: { path: string; message: string }[] = [];
    assert.equal(parseAcl([], e4), undefined);
    assert.deepEqual(e4.map((e) => e.path), ["/acl"]);
  });

  it("an undeclared role named like an Object.prototype member (constructor, toString) is unknown", () => {
    const errors: { path: string; message: string }[] = [];
    const acl = parseAcl({ roles: { controller: { subscribe: ["#"] } } }, errors);
    assert.deepEqual(errors, []);
    const e2: { path: string; message: string }[] = [];
    assert.deepEqual(parseDeviceRoles(["constructor", "toString"], "/devices/0/roles", acl, e2), []);
    assert.deepEqual(e2.map((e) => e.path), ["/devices/0/roles/0", "/devices/0/roles/1"]);
  });
});

describe("mqtt acl: in gateway.json", () => {
  const secret = "hmac-sha256:AAAAAAAAAAAAAAAAAAAAAA==:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  it("parses acl roles and device roles/acl into the config, and reports bad ones with their paths", () => {
    const good = parseGatewayConfig(JSON.stringify({
      acl: { roles: { controller: { subscribe: ["#"] } } },
      devices: [{ id: "ha", secret, roles: ["controller"] }, { id: "plug", secret, acl: { publish: ["tele/%c/#"] } }],
      audit: { groupCommitMs: 0, retentionDays: {} },
    }), []);
    assert.ok(good.ok);
    assert.deepEqual(JSON.parse(JSON.stringify(good.config.acl)), { roles: { controller: { publish: [], subscribe: ["#"] } } });
    assert.deepEqual(good.config.devices.map((d) => [d.roles, d.acl]), [[["controller"], undefined], [undefined, { publish: ["tele/%c/#"], subscribe: [] }]]);
    const bad = parseGatewayConfig(JSON.stringify({
      acl: { roles: { controller: { subscribe: ["a/#/b"] } } },
      devices: [{ id: "ha", secret, roles: ["admin"] }, { id: "plug", secret, acl: { write: [] } }],
      audit: { groupCommitMs: 0, retentionDays: {} },
    }), []);
    assert.ok(!bad.ok);
    assert.deepEqual(bad.errors.map((e) => e.path).sort(), ["/acl/roles/controller/subscribe/0", "/devices/0/roles/0", "/devices/1/acl/write"]);
  });
});
