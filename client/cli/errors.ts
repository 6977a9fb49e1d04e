// The CLI's failure vocabulary, cheap to load: exit codes, the error it explains itself, one-line text.
// What a Temporal or config error means to an operator is in explain.ts, loaded only on failure.

/** Exit codes, also listed in `rbm-guard --help`. */
export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3, notFound: 4 } as const;

/** A failure the CLI explains itself: one line, one exit code. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

export const usage = (message: string): CliError => new CliError(message, EXIT.usage);

export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/**
 * Text safe for an operator's terminal: every control, format or lone-surrogate code unit but the
 * newline and tab as a \uXXXX escape (valid inside --json output too). Ids from outside (a late
 * record's event id, a guard tracked before the id rules) can hold escapes or direction overrides.
 */
export function printable(text: string): string {
  return text.replace(/(?![\n\t])[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/gu, (ch) =>
    [...Array(ch.length).keys()].map((i) => `\\u${ch.charCodeAt(i).toString(16).padStart(4, '0')}`).join(''),
  );
}
