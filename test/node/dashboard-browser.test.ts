/**
 * The dashboard in a real browser: playwright-core driving Debian's chromium against a Node board
 * booted as the other tests do. Signs in with the break-glass owner token (the password + TOTP form
 * is there but its route lands on another branch), loads every page at phone width, writes a
 * screenshot of each to test-artifacts/dashboard/, and fails on any console error or page error.
 * What exists today is checked end to end (overview from /api/v1/status, an export downloaded by the
 * page that `audit-verify` accepts); the owner-action pages must say the route is absent, not break.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { bootNodeBoard, type RunningBoard } from "../../hosts/node/board.js";
import { main as auditVerify } from "../../tools/audit-verify.js";
import { buildWeb } from "../../tools/build-web.js";
import { connectDevice, demoPassword } from "../lib/home.js";
import { skipUnlessAvailable } from "../lib/skip.js";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = path.resolve("test-artifacts/dashboard");
/** Routes another branch adds (sessions, owner actions) or a later issue (incidents): 404 here today. */
const ABSENT_ROUTES = /^\/api\/v1\/(me|login|integrations|contracts|contracts\/pending|consent|datamap|devices|accounts|incidents)$/;
/** Pages reached from the navigation, and the text each must show once loaded. */
const PAGES: [string, string, RegExp][] = [
  ["overview", "Overview", /Integrations/],
  ["datamap", "Data map", /data map|Declared/],
  ["flows", "Flows", /Live: updated/],
  ["contracts", "Contracts", /Pending review/],
  ["consent", "Consent", /key for that data is destroyed/],
  ["audit", "Audit", /Last seal/],
  ["accounts", "Accounts", /signed in as owner-token/],
  ["devices", "Devices", /configured devices/],
];

describe("dashboard in chromium", function () {
  this.timeout(120000);
  let data: string;
  let board: RunningBoard;
  let context: BrowserContext;
  let page: Page;
  let base: string;
  const problems: string[] = [];

  before(async function () {
    skipUnlessAvailable(this, "chromium", existsSync(CHROMIUM) ? undefined : `${CHROMIUM} not found`, "apt-get install -y chromium");
    data = mkdtempSync(path.join(tmpdir(), "portcullis-dashboard-"));
    const webDir = path.join(data, "web");
    await buildWeb(webDir);
    board = await bootNodeBoard({
      configDir: path.resolve("examples/home"), dataDir: path.join(data, "board"), mqttPort: 0, httpsPort: 0, demo: false, host: "127.0.0.1",
      consoleInput: new PassThrough(), consoleOutput: new PassThrough(), webDir,
    });
    base = `https://127.0.0.1:${board.httpsPort}`;
    mkdirSync(ARTIFACTS, { recursive: true });
    context = await chromium.launchPersistentContext(path.join(data, "profile"), {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      ignoreHTTPSErrors: true, // the board's self-signed certificate
      acceptDownloads: true,
      viewport: { width: 390, height: 844 }, // a phone
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on("console", (m) => {
      if (m.type() !== "error" && m.type() !== "warning") return;
      // Chromium logs every 4xx answer to fetch() as "Failed to load resource". Those the page expects
      // and handles are allowed, by route and status: the owner-action routes this gateway does not
      // have yet (404, the page's feature detection) and a refused credential (401). Any other
      // (an asset, a 5xx, another route) is a failure like any other console error.
      const url = new URL(m.location().url || "about:blank");
      const status = /status of (\d{3})/.exec(m.text())?.[1];
      const expected = m.text().startsWith("Failed to load resource") && url.origin === base &&
        ((status === "404" && ABSENT_ROUTES.test(url.pathname)) || (status === "401" && /^\/api\/v1\/(status|me|login)$/.test(url.pathname)));
      if (!expected) problems.push(`console ${m.type()}: ${m.text()} (${url.href})`);
    });
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    // Nothing but the gateway itself: any other origin is a failure (and the CSP would block it).
    page.on("request", (r) => {
      if (!r.url().startsWith(base) && !r.url().startsWith("data:") && !r.url().startsWith("blob:")) problems.push(`request to another origin: ${r.url()}`);
    });
  });
  after(async () => {
    await context?.close();
    await board?.stop();
    if (data) rmSync(data, { recursive: true, force: true });
  });
  afterEach(() => {
    const seen = problems.splice(0);
    assert.deepEqual(seen, [], "the page logged errors");
  });

  it("serves the page with its CSP, and a wrong token is refused on the sign-in form", async () => {
    const res = await page.goto(base + "/");
    assert.equal(res?.status(), 200);
    const h = res!.headers();
    assert.match(h["content-security-policy"]!, /default-src 'self'; script-src 'self';.*frame-ancestors 'none'/);
    assert.equal(h["x-content-type-options"], "nosniff");
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await page.screenshot({ path: path.join(ARTIFACTS, "0-sign-in.png"), fullPage: true });
    await page.fill("#login-token input[name=token]", "pct_wrong-token");
    await page.click("#login-token button");
    await page.getByText(/Not signed in: missing or wrong bearer token/).waitFor();
    assert.equal(await page.locator("#nav").isHidden(), true);
    // The password + TOTP form: POST /api/v1/login is not on this branch, so it cannot sign in.
    await page.fill("#login-password input[name=account]", "owner");
    await page.fill("#login-password input[name=password]", "not-a-password");
    await page.fill("#login-password input[name=totp]", "123456");
    await page.click("#login-password button");
    await page.getByText(/Not signed in|not available on this gateway/).waitFor();
    assert.equal(await page.locator("#nav").isHidden(), true);
  });

  it("signs in with the break-glass token and shows the demo home's integrations from the status route", async () => {
    const token = readFileSync(path.join(data, "board", "owner.token"), "utf8").trim();
    await page.fill("#login-token input[name=token]", token);
    await page.press("#login-token input[name=token]", "Enter"); // keyboard submit
    await page.locator("[data-integration=thermo-cloud]").waitFor();
    await page.locator("[data-integration=energy-insights]").waitFor();
    assert.match(await page.locator("#who").innerText(), /owner-token \(owner\)/);
    const card = await page.locator("[data-integration=thermo-cloud]").innerText();
    assert.match(card, /Delivered since boot\s+0 messages/);
    assert.match(await page.locator("#main").innerText(), /demo home: 0 of 4 devices connected/);
    // The token is nowhere the page persists.
    assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length), 0);
    assert.ok(!(await context.cookies()).some((c) => c.value.includes(token)));
  });

  it("loads every page at phone width, keyboard-reachable, and writes a screenshot of each", async () => {
    // The navigation is reachable with Tab alone: Tab until "Flows" has focus, Enter opens it.
    await page.evaluate(() => (location.hash = "#/overview"));
    await page.locator("[data-integration=thermo-cloud]").waitFor();
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    let reached = false;
    for (let i = 0; i < 20 && !reached; i++) {
      await page.keyboard.press("Tab");
      reached = await page.evaluate(() => document.activeElement?.textContent === "Flows");
    }
    assert.ok(reached, "Tab reaches the Flows link");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => location.hash === "#/flows");

    for (const [i, [id, title, shows]] of PAGES.entries()) {
      await page.evaluate((h) => (location.hash = h), `#/${id}`);
      await page.getByRole("heading", { level: 1, name: title }).waitFor();
      await page.locator("#main").getByText(shows).first().waitFor();
      assert.equal(await page.locator("nav a[aria-current=page]").innerText(), title);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${id} is wider than the phone by ${overflow} px`);
      assert.doesNotMatch(await page.locator("#main").innerText(), /\b(null|undefined|NaN|\[object Object\])\b/, `${id} shows a placeholder value`);
      await page.screenshot({ path: path.join(ARTIFACTS, `${i + 1}-${id}.png`), fullPage: true });
    }
    // Incidents has no route yet (a 404): it is not offered at all.
    assert.equal(await page.locator("nav a[href='#/incidents']").count(), 0);
  });

  it("says so where an owner-action route is absent, instead of failing", async () => {
    for (const id of ["datamap", "contracts", "consent", "accounts", "devices"]) {
      await page.evaluate((h) => (location.hash = h), `#/${id}`);
      await page.locator("#main [data-absent]").first().waitFor();
      assert.match(await page.locator("#main [data-absent]").first().innerText(), /does not offer .* over HTTPS yet/);
      assert.equal(await page.locator("#main .err").count(), 0, `${id} shows an error`);
    }
  });

  it("shows new flows live, and filters them by device", async () => {
    await page.evaluate(() => (location.hash = "#/flows"));
    await page.getByText(/Live: updated/).waitFor();
    // Real devices publish to topics no contract declares: each message is a denied flow record.
    for (const id of ["plug-kitchen", "thermostat-hall"]) {
      const c = await connectDevice(board.mqttPort, id, demoPassword(id));
      await c.publishAsync(`home/${id}/undeclared`, JSON.stringify({ x: 1 }), { qos: 1 });
      await c.endAsync();
    }
    await page.locator("#main tbody tr", { hasText: "plug-kitchen" }).waitFor({ timeout: 15000 });
    await page.locator("#main tbody tr", { hasText: "thermostat-hall" }).waitFor({ timeout: 15000 });
    await page.fill("input[name=device]", "plug-kitchen");
    await page.press("input[name=device]", "Enter");
    await page.locator("#main tbody tr", { hasText: "thermostat-hall" }).waitFor({ state: "detached" });
    assert.match(await page.locator("#main tbody").innerText(), /plug-kitchen/);
    assert.doesNotMatch(await page.locator("#main tbody").innerText(), /thermostat-hall/);
    await page.screenshot({ path: path.join(ARTIFACTS, "9-flows-filtered.png"), fullPage: true });
  });

  it("updates the overview's counters live from real traffic (the vendor is unreachable: the message waits)", async () => {
    await page.evaluate(() => (location.hash = "#/overview"));
    const card = page.locator("[data-integration=thermo-cloud]");
    await card.waitFor();
    assert.match(await card.innerText(), /Waiting\s+0 messages/);
    const c = await connectDevice(board.mqttPort, "thermostat-hall", demoPassword("thermostat-hall"));
    await c.publishAsync("home/thermostat-hall/telemetry", JSON.stringify({ temperature_c: 21.5, setpoint_c: 20, hvac: { mode: "heat" } }), { qos: 1 });
    await c.endAsync();
    await card.getByText(/^[1-9]\d* messages$/).first().waitFor({ timeout: 15000 }); // the 5 s poll, no reload
    assert.match(await card.innerText(), /Waiting\s+[1-9]\d* messages/);
  });

  it("downloads an export that audit-verify accepts with the first-boot key, and shows the last seal", async () => {
    await page.evaluate(() => (location.hash = "#/audit"));
    await page.getByText(/seq \d+, epoch \d+/).waitFor();
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export")]);
    assert.match(download.suggestedFilename(), /^portcullis-audit-.*\.jsonl$/);
    const file = path.join(data, "export.jsonl");
    await download.saveAs(file);
    const r = auditVerify([file, "--key", path.join(data, "board", "audit-verification.key")]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^audit-verify: intact: seq 1\.\./);
    // The export is itself an audit record (who pulled it): it is in the next export.
    assert.match(readFileSync(file, "utf8"), /"reason":"export"/);
    await page.getByText(/Exported \d+ lines/).waitFor();
    await page.screenshot({ path: path.join(ARTIFACTS, "10-audit-exported.png"), fullPage: true });
  });

  it("words each integration from its contract once GET /api/v1/contracts exists (the route answered with the real contract files)", async () => {
    // The route comes with the owner-action branch; until then the browser answers it with the
    // example home's own contract files, in the shape the page assumes (web/api.js), so the
    // plain-words overview is checked against real contracts.
    const files = ["thermo-cloud", "energy-insights"].map((n) => JSON.parse(readFileSync(`examples/home/contracts/${n}.json`, "utf8")) as unknown);
    await page.route(`${base}/api/v1/contracts`, (r) => r.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(files) }));
    try {
      await page.evaluate(() => (location.hash = "#/contracts"));
      await page.locator("[data-contract=thermo-cloud]").waitFor();
      await page.evaluate(() => (location.hash = "#/overview"));
      const card = page.locator("[data-integration=thermo-cloud]");
      await card.getByText(/ThermoCloud receives/).waitFor();
      assert.match(await card.innerText(), /ThermoCloud receives thermostat-hall's temperature and setpoint \(environment data\) and hvac mode \(usage data\), at most 30 messages a minute, keeps it 90 days, for: Remote thermostat app/);
      assert.match(await card.innerText(), /environment: no consent; usage: consent given/);
      await page.screenshot({ path: path.join(ARTIFACTS, "11-overview-with-contracts.png"), fullPage: true });
    } finally {
      await page.unroute(`${base}/api/v1/contracts`);
    }
  });

  it("sends the owner actions in the shapes web/api.js documents (consent, review, quarantine), the routes answered in the browser", async () => {
    // Until the owner-action branch is merged, the browser answers these routes; what is checked is
    // what the page sends and how it shows the answer. The lead replaces this with the real routes.
    const posts: { path: string; body: unknown; auth: string | undefined }[] = [];
    const json = (body: unknown) => ({ status: 200, contentType: "application/json", body: JSON.stringify(body) });
    await page.route(/\/api\/v1\/(consent|contracts|contracts\/pending|integrations|contracts\/.+\/(approve|reject)|integrations\/.+\/(quarantine|release))$/, (r) => {
      const req = r.request();
      const p = new URL(req.url()).pathname;
      if (req.method() === "POST") {
        posts.push({ path: p, body: req.postDataJSON() as unknown, auth: req.headers()["authorization"] });
        return r.fulfill(json({ ok: true }));
      }
      if (p.endsWith("/consent")) return r.fulfill(json([{ integration: "thermo-cloud", class: "environment", grant: false }, { integration: "thermo-cloud", class: "usage", grant: true, time: "2026-11-02T10:00:00Z", by: "owner" }]));
      if (p.endsWith("/pending")) return r.fulfill(json([{ id: "thermo-cloud", from: "2.1.0", version: "2.2.0", diff: ["adds /humidity (environment data) to thermostat-state"] }]));
      if (p.endsWith("/integrations")) return r.fulfill(json([{ id: "thermo-cloud", state: "active" }, { id: "energy-insights", state: "quarantined" }]));
      return r.fulfill(json([JSON.parse(readFileSync("examples/home/contracts/thermo-cloud.json", "utf8")), JSON.parse(readFileSync("examples/home/contracts/energy-insights.json", "utf8"))]));
    });
    try {
      await page.evaluate(() => (location.hash = "#/consent"));
      const env = page.getByRole("checkbox", { name: "thermo-cloud: environment data" });
      await env.waitFor();
      assert.equal(await env.isChecked(), false);
      await env.focus();
      await page.keyboard.press("Space"); // keyboard toggle
      await page.getByText("Given.").waitFor();
      page.once("dialog", (d) => void d.accept()); // withdrawing asks first, saying what it destroys
      await page.getByRole("checkbox", { name: "thermo-cloud: usage data" }).click();
      await page.getByText("Withdrawn: key destroyed, queue purged.").waitFor();
      await page.screenshot({ path: path.join(ARTIFACTS, "12-consent-with-route.png"), fullPage: true });

      await page.evaluate(() => (location.hash = "#/contracts"));
      await page.locator("[data-pending=thermo-cloud]").getByText(/adds \/humidity/).waitFor();
      await page.screenshot({ path: path.join(ARTIFACTS, "13-contracts-with-route.png"), fullPage: true });
      await page.locator("[data-pending=thermo-cloud]").getByRole("button", { name: "Approve" }).click();
      await page.getByText("Approved.").waitFor();
      await page.locator("[data-contract=energy-insights]").getByRole("button", { name: "Release" }).click();
      await page.getByText("Released.").waitFor();
      await page.locator("[data-contract=thermo-cloud]").getByRole("button", { name: "Quarantine" }).waitFor();
      const token = readFileSync(path.join(data, "board", "owner.token"), "utf8").trim();
      assert.deepEqual(posts.map(({ path: p, body }) => [p, body]), [
        ["/api/v1/consent", { integration: "thermo-cloud", class: "environment", grant: true }],
        ["/api/v1/consent", { integration: "thermo-cloud", class: "usage", grant: false }],
        ["/api/v1/contracts/thermo-cloud/approve", null],
        ["/api/v1/integrations/energy-insights/release", null],
      ]);
      assert.ok(posts.every((x) => x.auth === `Bearer ${token}`));
    } finally {
      await page.unrouteAll({ behavior: "wait" });
    }
  });

  it("signs out: the navigation is gone and the API is no longer called with the token", async () => {
    await page.click("nav button");
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    assert.equal(await page.locator("#nav").isHidden(), true);
  });
});
