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

/** The longest input line accepted; longer lines are refused, not truncated. */
export const CONSOLE_MAX_LINE = 256;

export class Shell {
  readonly #console: Console;
  readonly #commands = new Map<string, Command>();

  constructor(port: Console) {
    this.#console = port;
    this.register({ name: "help", summary: "list the commands", run: () => this.#help() });
  }

  /** @throws Error when a command of that name exists already (a programmer error). */
  register(command: Command): void {
    if (this.#commands.has(command.name)) throw new Error(`console command "${command.name}" registered twice`);
    this.#commands.set(command.name, command);
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
    const command = this.#commands.get(name);
    if (!command) return `error: unknown command "${name}"; commands: ${[...this.#commands.keys()].sort().join(", ")}`;
    try {
      return await command.run(words.slice(1));
    } catch (e) {
      return `error: ${name} failed: ${e instanceof Error ? e.message : String(e)}`;
    }
  }

  #help(): string {
    const names = [...this.#commands.keys()].sort();
    const width = Math.max(...names.map((n) => n.length));
    return names.map((n) => `${n.padEnd(width)}  ${this.#commands.get(n)!.summary}`).join("\n");
  }
}
