/**
 * `npm run device:secret -- <device-id> [--password <p>]`: makes a device's credentials. Prints the
 * `gateway.json` entry (the salted HMAC-SHA256 of the password, which is all the gateway keeps) and
 * the password to put on the device. Without --password a random 128-bit one is made.
 */
import { randomBytes } from "node:crypto";
import { makeDeviceSecret } from "../src/config.js";
import { nodeCrypto } from "../hosts/node/crypto.js";

const args = process.argv.slice(2);
const id = args[0];
const usage = "usage: npm run device:secret -- <device-id> [--password <password>]";
if (!id || id.startsWith("-") || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(id)) {
  process.stderr.write(`error: give a device id of 1-64 characters [A-Za-z0-9._-]\n${usage}\n`);
  process.exit(2);
}
let password = randomBytes(16).toString("base64url");
if (args[1] !== undefined) {
  if (args[1] !== "--password" || !args[2]) {
    process.stderr.write(`error: unexpected "${args[1]}"\n${usage}\n`);
    process.exit(2);
  }
  password = args[2];
}
const secret = makeDeviceSecret(nodeCrypto(), randomBytes(16), password);
process.stdout.write(JSON.stringify({ id, secret }, null, 2) + "\n");
process.stderr.write(`password for ${id} (configure it on the device; it is not stored anywhere): ${password}\n`);
