// The operators' command line: a thin layer over GuardClient. Input is checked before anything
// reaches Temporal; every failure is one line on stderr and a non-zero exit code, never a stack
// trace; --json prints machine-readable results on stdout. `runCli` runs in-process (tests);
// `main` is the process entry (bin/rbm-guard.js, `npm run cli`). The parts live in client/cli/:
// program (commands and help), commands (what they do), session (the connection), checks,
// render, errors and explain (failures → one line).
import { CommanderError } from 'commander';
import { isEntryPoint } from '../config/entrypoint.ts';
import { EXIT, oneLine, printable } from './cli/errors.ts';
import { buildProgram, type CliContext, type CliIo } from './cli/program.ts';

export { EXIT } from './cli/errors.ts';
export type { CliIo } from './cli/program.ts';

/** Runs one command line (arguments after the program name) and resolves with its exit code. */
export async function runCli(argv: readonly string[], rawIo: CliIo): Promise<number> {
  // Everything printed passes printable(): no id or reason can drive the operator's terminal.
  const io: CliIo = { ...rawIo, stdout: (text) => rawIo.stdout(printable(text)), stderr: (text) => rawIo.stderr(printable(text)) };
  const ctx: CliContext = { io, exitCode: EXIT.ok };
  const program = buildProgram(ctx);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return ctx.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already written its one-line message (or the help text).
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const { explain } = await import('./cli/explain.ts');
    const { message, exitCode } = explain(err, ctx.session);
    io.stderr(`error: ${oneLine(message)}\n`);
    return exitCode;
  } finally {
    await ctx.session?.close();
  }
}

/** The process entry: real stdout/stderr, exit code on the process. */
export async function main(): Promise<void> {
  // `rbm-guard list | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  });
  process.exitCode = await runCli(process.argv.slice(2), {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    columns: process.stdout.isTTY ? process.stdout.columns : undefined,
  });
}

if (isEntryPoint(import.meta.url)) await main();
