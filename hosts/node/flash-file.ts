/**
 * A FlashStore backed by a file (the Node board's flash image). Writes go straight to the file (the
 * kernel's page cache), so a program or erase survives a killed process — the simulator's power cut —
 * as soon as it returns. For the host's own power, `durable()` makes them stable with an fdatasync off
 * the event loop (libuv's thread pool), one per turn of the event loop however many callers asked in
 * that turn (issue #14: a blocking fsync per group commit was 41 % of the gateway's busy time);
 * `sync()` is the blocking form, for the rare points that must be stable before the next step (a seal
 * before its key evolves, a purge record before its trim, close). The NOR rules live in
 * `src/flash/nor.ts`; fault injection wraps the flash above (test/lib/faulty-flash.ts).
 */
import { closeSync, existsSync, fdatasync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from "node:fs";
import type { FlashStore } from "../../src/flash/nor.js";

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

export class FileStore implements FlashStore {
  readonly #fd: number;
  readonly #size: number;
  /** fdatasync calls made (durable() and sync()), for tests and benchmarks. */
  syncs = 0;
  /** Writes so far; a flush covers the writes counted when it started. */
  #written = 0;
  /** Writes known to be on stable storage. */
  #stable = 0;
  /** The flush under way and the writes it covers. */
  #running: { covers: number; done: Promise<void> } | undefined;
  /** Callers waiting for the next flush (it starts once this turn and the running one are over). */
  #next: Waiter[] = [];
  #scheduled = false;
  #closed = false;

  /**
   * Opens (or creates, erased to 0xFF) a flash image of `size` bytes.
   * @throws Error when an existing image has another size (a different chip: refuse, never truncate).
   */
  constructor(path: string, size: number) {
    const fresh = !existsSync(path);
    this.#fd = openSync(path, fresh ? "w+" : "r+", 0o600);
    this.#size = size;
    if (fresh) {
      ftruncateSync(this.#fd, 0);
      const erased = Buffer.alloc(64 * 1024, 0xff);
      for (let off = 0; off < size; off += erased.length) writeSync(this.#fd, erased, 0, Math.min(erased.length, size - off), off);
      fsyncSync(this.#fd);
    } else {
      const actual = fstatSync(this.#fd).size;
      if (actual !== size) {
        closeSync(this.#fd);
        throw new Error(`flash image ${path} is ${actual} bytes, expected ${size}: use another --data folder or the matching flash size`);
      }
    }
  }

  read(offset: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.#fd, out, done, length - done, offset + done);
      if (n === 0) throw new Error(`flash image read past its end at ${offset + done}`);
      done += n;
    }
    return out;
  }

  write(offset: number, data: Uint8Array): void {
    let done = 0;
    while (done < data.length) done += writeSync(this.#fd, data, done, data.length - done, offset + done);
    this.#written++;
  }

  /** Blocks until every write so far is on stable storage (fsync: the file's size never changes). */
  sync(): void {
    if (this.#stable >= this.#written || this.#closed) return;
    const covers = this.#written;
    fsyncSync(this.#fd);
    this.syncs++;
    this.#stable = Math.max(this.#stable, covers);
  }

  /**
   * Resolves once every write made before the call is on stable storage. Calls in one turn of the
   * event loop share one fdatasync (started from `setImmediate`, after this turn's I/O callbacks);
   * while one runs, later callers wait for the next, which covers every write made before it starts.
   * Rejects with the fdatasync error (and after `close()` when writes were left unflushed).
   */
  durable(): Promise<void> {
    const want = this.#written;
    if (this.#stable >= want) return Promise.resolve();
    if (this.#running && this.#running.covers >= want) return this.#running.done;
    if (this.#closed) return Promise.reject(new Error("flash image closed before its writes were made durable"));
    return new Promise<void>((resolve, reject) => {
      this.#next.push({ resolve, reject });
      if (!this.#scheduled && !this.#running) {
        this.#scheduled = true;
        setImmediate(() => this.#start());
      }
    });
  }

  #start(): void {
    this.#scheduled = false;
    const waiters = this.#next;
    this.#next = [];
    if (waiters.length === 0) return;
    if (this.#closed) {
      // close() synced everything written before it; nothing can be written after it.
      for (const w of waiters) w.resolve();
      return;
    }
    const covers = this.#written;
    const done = new Promise<void>((resolve, reject) => {
      this.syncs++;
      fdatasync(this.#fd, (err) => {
        this.#running = undefined;
        if (err) reject(err);
        else {
          this.#stable = Math.max(this.#stable, covers);
          resolve();
        }
        // Callers that came while this one ran: one more flush for all of them.
        if (this.#next.length > 0 && !this.#scheduled) {
          this.#scheduled = true;
          setImmediate(() => this.#start());
        }
      });
    });
    this.#running = { covers, done };
    done.then(() => { for (const w of waiters) w.resolve(); }, (e: unknown) => { for (const w of waiters) w.reject(e); });
  }

  /** Syncs what was written and closes; a flush still under way finishes on its own. */
  close(): void {
    if (this.#closed) return;
    this.sync();
    this.#closed = true;
    if (this.#running) {
      // The fd must outlive the fdatasync in the thread pool.
      void this.#running.done.then(() => closeSync(this.#fd), () => closeSync(this.#fd));
    } else closeSync(this.#fd);
  }
}
