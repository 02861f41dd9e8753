/**
 * The Console port on ECMA-419 `embedded:io/serial`: UART0 on the ESP32 (owned by the console in release
 * builds, where xsbug and ESP-IDF logging are off), a pseudo-terminal device on `lin`.
 * Lines end at CR or LF; an overlong line is discarded whole rather than truncated into a different command.
 */
import Serial from "embedded:io/serial";
import Timer from "timer";
import type { Console } from "../../src/ports.js";

/** Bytes per input line at most; longer lines are dropped with a notice. */
export const MAX_LINE_BYTES = 256;
/** Queued output at most; beyond it the oldest text is dropped (a console must never stall the gateway). */
export const MAX_OUTPUT_BYTES = 8192;
const WRITE_CHUNK = 128;

export type SerialOptions =
  | { readonly port: number; readonly transmit: number; readonly receive: number; readonly baud: number }
  | { readonly device: string; readonly baud: number };

export class SerialConsole implements Console {
  readonly #serial: Serial;
  #onLine: ((line: string) => void) | undefined;
  #line = new Uint8Array(MAX_LINE_BYTES);
  #length = 0;
  #overlong = false;
  #out: Uint8Array[] = [];
  #outBytes = 0;
  #retry: Timer | undefined;

  /** @throws Error when the UART or device cannot be opened. */
  constructor(options: SerialOptions) {
    this.#serial = new Serial({
      ...(options as { port: number; transmit: number; receive: number; baud: number }),
      format: "buffer",
      onReadable: () => this._onReadable(),
      onWritable: () => this._drain(),
    });
  }

  start(onLine: (line: string) => void): void {
    this.#onLine = onLine;
  }

  write(text: string): void {
    const bytes = new Uint8Array(ArrayBuffer.fromString(text));
    if (bytes.length === 0) return;
    this.#out.push(bytes);
    this.#outBytes += bytes.length;
    while (this.#outBytes > MAX_OUTPUT_BYTES && this.#out.length > 1) this.#outBytes -= this.#out.shift()!.length;
    this._drain();
  }

  private _onReadable(): void {
    const data = this.#serial.read() as ArrayBuffer | undefined;
    if (data === undefined) return;
    for (const byte of new Uint8Array(data)) {
      if (byte === 0x0a || byte === 0x0d) {
        this._endLine();
      } else if (this.#length < MAX_LINE_BYTES) {
        this.#line[this.#length++] = byte;
      } else {
        this.#overlong = true;
      }
    }
  }

  private _endLine(): void {
    const length = this.#length;
    const overlong = this.#overlong;
    this.#length = 0;
    this.#overlong = false;
    if (overlong) return this.write(`line longer than ${MAX_LINE_BYTES} bytes ignored\n`);
    if (length === 0) return;
    const line = String.fromArrayBuffer(this.#line.slice(0, length).buffer);
    try {
      this.#onLine?.(line);
    } catch (e) {
      this.write(`console command failed: ${String(e)}\n`);
    }
  }

  private _drain(): void {
    while (this.#out.length > 0) {
      const head = this.#out[0]!;
      const n = Math.min(head.length, WRITE_CHUNK);
      try {
        this.#serial.write(head.slice(0, n).buffer); // the lin driver takes an ArrayBuffer, not a view
      } catch {
        // The UART's buffer is full ("would overflow"): try again shortly.
        this.#retry ??= Timer.set(() => {
          this.#retry = undefined;
          this._drain();
        }, 10);
        return;
      }
      this.#outBytes -= n;
      if (n === head.length) this.#out.shift();
      else this.#out[0] = head.subarray(n);
    }
  }
}
