/**
 * The serial console's command shell: one line in, one answer out. Commands are registered by the
 * subsystems that own them; an unknown command gets a one-line error and the list of commands.
 */
import type { Console } from "../ports.js";

export interface Command {
  readonly name: string;
  /** One line for `help`. */
  readonly summary: string;
  /** Returns the text to print (without a trailing newline). May be async; must not throw for bad args: answer with usage. */
  run(args: readonly string[]): string | Promise<string>;
}

/**
 * A command of a module-level table (registered with its context by {@link Shell.registerTable}): one
 * table and one context per subsystem instead of one object and closure per command at boot.
 */
export interface TableCommand<C> {
  readonly name: string;
  readonly summary: string;
  run(args: readonly string[], ctx: C): string | Promise<string>;
}

/** The longest input line accepted; longer lines are refused, not truncated. */
export const CONSOLE_MAX_LINE = 256;

export class Shell {
  readonly #console: Console;
  readonly #commands = new Map<string, Command>();
  /** Tables and their contexts, searched after #commands (a few dozen names: a scan is cheap). */
  readonly #tables: { readonly table: readonly TableCommand<never>[]; readonly ctx: unknown }[] = [];

  constructor(port: Console) {
    this.#console = port;
    this.register({ name: "help", summary: "list the commands", run: () => this._help() });
  }

  /** @throws Error when a command of that name exists already (a programmer error). */
  register(command: Command): void {
    if (this._find(command.name)) throw new Error(`console command "${command.name}" registered twice`);
    this.#commands.set(command.name, command);
  }

  /** Registers a table of commands that share `ctx`. @throws Error when a name exists already. */
  registerTable<C>(table: readonly TableCommand<C>[], ctx: C): void {
    for (const c of table) if (this._find(c.name)) throw new Error(`console command "${c.name}" registered twice`);
    this.#tables.push({ table: table as readonly TableCommand<never>[], ctx });
  }

  /** The command of that name, as a summary and a runner. */
  private _find(name: string): { readonly summary: string; run(args: readonly string[]): string | Promise<string> } | undefined {
    const own = this.#commands.get(name);
    if (own) return own;
    for (const t of this.#tables) {
      for (const c of t.table) if (c.name === name) return { summary: c.summary, run: (args) => (c as TableCommand<unknown>).run(args, t.ctx) };
    }
    return undefined;
  }

  private _names(): string[] {
    const names = [...this.#commands.keys()];
    for (const t of this.#tables) for (const c of t.table) names.push(c.name);
    return names.sort();
  }

  /** Starts reading lines from the console. */
  start(): void {
    this.#console.start((line) => {
      void this.execute(line).then((out) => {
        if (out) this.#console.write(out + "\n");
      });
    });
  }

  /** Prints an unsolicited line (alarms, boot messages). */
  say(text: string): void {
    this.#console.write(text + "\n");
  }

  /** Runs one line and returns its answer ("" for an empty line). Never throws. */
  async execute(line: string): Promise<string> {
    if (line.length > CONSOLE_MAX_LINE) return `error: line longer than ${CONSOLE_MAX_LINE} characters`;
    const words = line.trim().split(/\s+/).filter((w) => w.length > 0);
    const name = words[0];
    if (name === undefined) return "";
    const command = this._find(name);
    if (!command) return `error: unknown command "${name}"; commands: ${this._names().join(", ")}`;
    try {
      return await command.run(words.slice(1));
    } catch (e) {
      return `error: ${name} failed: ${e instanceof Error ? e.message : String(e)}`;
    }
  }

  private _help(): string {
    const names = this._names();
    const width = Math.max(...names.map((n) => n.length));
    return names.map((n) => `${n.padEnd(width)}  ${this._find(n)!.summary}`).join("\n");
  }
}
