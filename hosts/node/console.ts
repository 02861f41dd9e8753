/** The serial console on the Node board: stdin lines in, stdout text out. */
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import type { Console } from "../../src/ports.js";

export function nodeConsole(input: Readable = process.stdin, output: Writable = process.stdout): Console & { close(): void } {
  let rl: ReturnType<typeof createInterface> | undefined;
  return {
    start(onLine) {
      rl = createInterface({ input, terminal: false });
      rl.on("line", (line) => onLine(line));
    },
    write(text) {
      try {
        output.write(text);
      } catch {
        // A closed stdout must never take the board down.
      }
    },
    close() {
      rl?.close();
      rl = undefined;
    },
  };
}
