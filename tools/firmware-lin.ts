/**
 * `npm run firmware:lin`: builds the firmware for the Moddable SDK's `lin` target and runs it headless.
 *
 * 1. `mcconfig -m -p lin manifest.json` (fixed heap from manifest.json: the build fails on a type error
 *    and the run aborts if the heap is exhausted).
 * 2. Compiles hosts/moddable/lin/headless.c (our mcsim stand-in) and runs the built mc.so under it, with
 *    the console on a pseudo-terminal (a python3 pty relay) linked at /tmp/portcullis/console.
 * 3. Checks the scenario: the boot self-test passes, the console answers `status` and `memory`, and the
 *    HTTPS status endpoint answers over the native TLS server with the certificate the console announced.
 *
 * Without $MODDABLE it says what is missing and exits 1. Flags: --keep-data (do not wipe /tmp/portcullis).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import tls from "node:tls";
import { provisionEntries, writeLinKeys } from "./provision.js";

const root = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const DATA_DIR = "/tmp/portcullis"; // manifest.json config.portcullis.dataDir on lin
const HTTPS_PORT = 8443; // manifest.json config.portcullis.httpsPort
const GUIDE = "https://github.com/Moddable-OpenSource/moddable/blob/public/documentation/Moddable%20SDK%20-%20Getting%20Started.md#linux";

function fail(message: string): never {
  console.error(`firmware:lin: ${message}`);
  process.exit(1);
}

/** Everything the build needs, or a message naming what is missing and how to get it. */
function preflight(): { moddable: string; env: NodeJS.ProcessEnv } {
  const moddable = process.env["MODDABLE"];
  if (!moddable) {
    fail([
      "$MODDABLE is not set, so the Moddable SDK cannot be found.",
      "Build the SDK's Linux tools by its own guide (Linux section):",
      `  ${GUIDE}`,
      "  (in short: clone github.com/Moddable-OpenSource/moddable, apt-get install libglib2.0-dev (and",
      "  libgtk-3-dev for mcsim), export MODDABLE=<clone>, then `make` in $MODDABLE/build/makefiles/lin)",
      "Then: export MODDABLE=<clone>; npm run firmware:lin",
      "The firmware also needs: apt-get install -y libmbedtls-dev python3 (pty relay for the console).",
    ].join("\n"));
  }
  const bin = join(moddable, "build/bin/lin/release");
  if (!existsSync(join(bin, "mcconfig"))) fail(`${bin}/mcconfig not found: build the SDK tools first (${GUIDE})`);
  if (!existsSync("/usr/include/mbedtls/ssl.h")) fail("mbedTLS headers missing: apt-get install -y libmbedtls-dev");
  if (spawnSync("pkg-config", ["--exists", "glib-2.0"]).status !== 0) fail("GLib development files missing: apt-get install -y libglib2.0-dev");
  if (spawnSync("python3", ["--version"]).status !== 0) fail("python3 missing (it provides the console's pseudo-terminal)");
  const env = { ...process.env, PATH: `${join(root, "node_modules/.bin")}:${process.env["PATH"]}:${bin}` };
  return { moddable, env };
}

function build(moddable: string, env: NodeJS.ProcessEnv): { library: string; warnings: string[]; seconds: number } {
  const start = Date.now();
  const result = spawnSync("mcconfig", ["-m", "-p", "lin", "manifest.json"], { cwd: root, env, encoding: "utf8" });
  const output = `${result.stdout}${result.stderr}`;
  if (result.status !== 0) {
    console.error(output.split("\n").filter((l) => !/^# (cc|xsc|xsid|tsc) /.test(l)).join("\n"));
    fail("mcconfig failed");
  }
  const library = join(moddable, "build/bin/lin/mc/release", basename(root), "mc.so");
  if (!existsSync(library)) fail(`build finished but ${library} is missing`);
  const warnings = output.split("\n").filter((l) => /warning/i.test(l));
  return { library, warnings, seconds: (Date.now() - start) / 1000 };
}

function buildHost(moddable: string): string {
  const out = join(tmpdir(), "portcullis-headless");
  const glib = execFileSync("pkg-config", ["--cflags", "--libs", "glib-2.0"], { encoding: "utf8" }).trim().split(/\s+/);
  execFileSync("cc", ["-O2", "-DmxLinux=1", `-I${join(moddable, "build/simulators/modules")}`, join(root, "hosts/moddable/lin/headless.c"), ...glib, "-ldl", "-o", out], { stdio: "inherit" });
  return out;
}

/** A pty whose slave is linked at `link`; lines from the firmware's console arrive via `onLine`. */
const RELAY = `
import os, pty, sys, select, tty
m, s = pty.openpty()
tty.setraw(s)
link = sys.argv[1]
try: os.unlink(link)
except FileNotFoundError: pass
os.symlink(os.ttyname(s), link)
sys.stdout.write("RELAY READY\\n"); sys.stdout.flush()
while True:
    r, _, _ = select.select([m, 0], [], [])
    if m in r:
        d = os.read(m, 4096)
        if not d: break
        os.write(1, d)
    if 0 in r:
        d = os.read(0, 4096)
        if not d: break
        os.write(m, d)
`;

class ConsoleRelay {
  readonly lines: string[] = [];
  readonly #child: ChildProcess;
  #waiters: Array<() => void> = [];

  constructor(link: string) {
    this.#child = spawn("python3", ["-c", RELAY, link], { stdio: ["pipe", "pipe", "inherit"] });
    let buffered = "";
    this.#child.stdout!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString("utf8").replace(/\r/g, "");
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        console.log(`  console| ${line}`);
        this.lines.push(line);
        for (const w of this.#waiters.splice(0)) w();
      }
    });
  }

  send(line: string): void {
    this.#child.stdin!.write(`${line}\n`);
  }

  async waitFor(pattern: RegExp, ms: number): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = this.lines.find((l) => pattern.test(l));
      if (hit !== undefined) return hit;
      if (Date.now() > deadline) fail(`timed out waiting for console output ${pattern}`);
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }

  stop(): void {
    this.#child.kill();
  }
}

function httpsStatus(port: number): Promise<{ body: string; fingerprint: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    let ms = 0;
    let body = "";
    // The certificate is self-signed: it is pinned by fingerprint below, not trusted by a CA.
    const socket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      ms = performance.now() - start;
      socket.write("GET /status HTTP/1.0\r\n\r\n");
    });
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (body += chunk));
    socket.on("error", reject);
    socket.on("end", () => resolve({ body, fingerprint: (socket.getPeerX509Certificate() as X509Certificate | undefined)?.fingerprint256 ?? "", ms }));
  });
}

async function scenario(host: string, library: string): Promise<Record<string, string | number>> {
  const relay = new ConsoleRelay(join(DATA_DIR, "console"));
  await relay.waitFor(/^RELAY READY$/, 5000);
  const firmware = spawn(host, [library], { stdio: ["ignore", "inherit", "inherit"] });
  let exited: number | null = null;
  firmware.on("exit", (code) => (exited = code));
  try {
    const selftest = await relay.waitFor(/^selftest: /, 20000);
    if (!/^selftest: \d+ passed, 0 failed/.test(selftest)) fail(`self-test failed: ${selftest}`);
    const identity = await relay.waitFor(/^https identity ready/, 10000);
    const provisioned = await relay.waitFor(/^provisioning: /, 5000);
    if (provisioned !== "provisioning: 1 integrations, owner token set") fail(`provisioning not read back: ${provisioned}`);
    await relay.waitFor(/^ready$/, 10000);
    relay.send("status");
    const status = await relay.waitFor(/^status: /, 5000);
    const announced = /SHA-256 ([0-9A-F:]+)/.exec(identity)?.[1] ?? "";
    const https = await httpsStatus(HTTPS_PORT);
    if (https.fingerprint !== announced) fail(`HTTPS certificate ${https.fingerprint} is not the announced ${announced}`);
    if (!/^HTTP\/1\.0 200 OK\r\n/.test(https.body) || !https.body.includes("status: ")) fail(`unexpected HTTPS answer: ${https.body}`);
    relay.send("memory");
    const memory = await relay.waitFor(/^memory: /, 5000);
    if (exited !== null) fail(`firmware exited with ${exited}`);
    return { selftest, status, https_handshake_ms: Number(https.ms.toFixed(1)), memory };
  } finally {
    firmware.kill();
    relay.stop();
  }
}

async function main(): Promise<void> {
  const { moddable, env } = preflight();
  if (!process.argv.includes("--keep-data")) rmSync(DATA_DIR, { recursive: true, force: true });
  mkdirSync(DATA_DIR, { recursive: true });
  // Provision the lin board as tools/provision.ts would (--lin-dir), with one sample integration.
  const sample = JSON.stringify({ id: "example.thermostat", note: "firmware:lin sample" });
  writeLinKeys(provisionEntries({ ssid: "lin", password: "", ownerToken: "firmware-lin-test-owner-token", integrations: [sample] }), join(DATA_DIR, "keys"));
  const { library, warnings, seconds } = build(moddable, env);
  console.log(`firmware:lin: built ${library} in ${seconds.toFixed(0)} s`);
  for (const w of warnings) console.log(`  ${/portcullis\//.test(w) ? "OURS" : "SDK "} ${w.trim()}`);
  const host = buildHost(moddable);
  const figures = await scenario(host, library);
  for (const [name, value] of Object.entries(figures)) console.log(`firmware:lin: ${name}: ${value}`);
  console.log("firmware:lin: scenario passed");
}

main().catch((e: unknown) => fail(String(e)));
