/**
 * ESP32 network setup (module setup/portcullis), run by the SDK before main (it runs every `setup/*`
 * module; the SDK's own setup/network finds no build-time SSID and returns at once): joins the Wi-Fi
 * network whose SSID and password were provisioned into NVS (tools/provision.ts) rather than compiled
 * into the build as the SDK's setup/network expects. Without credentials it reports and continues
 * offline so the console still works for diagnosis. SNTP is main's job (hosts/moddable/clock.ts).
 */
import Preference from "preference";
import WiFi from "wifi";
import { KEY_DOMAIN } from "portcullis/moddable/keystore-rules";

function text(name: string): string | undefined {
  const value = Preference.get(KEY_DOMAIN, name);
  return value instanceof ArrayBuffer ? String.fromArrayBuffer(value) : undefined;
}

export default function (done: () => void): void {
  const ssid = text("wifi.ssid");
  if (ssid === undefined || ssid === "") {
    trace("portcullis: no Wi-Fi provisioned (wifi.ssid); offline\n");
    return done();
  }
  const password = text("wifi.pass");
  let finished = false;
  new WiFi({ ssid, ...(password ? { password } : {}) }, (message) => {
    if (message === WiFi.gotIP && !finished) {
      finished = true;
      done();
    } else if (message === WiFi.disconnected) {
      trace("portcullis: Wi-Fi disconnected\n");
    }
  });
}
