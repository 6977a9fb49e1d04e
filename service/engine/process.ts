// What the engine's child processes share: one error type whose message is the one line a user
// sees (cause and fix), and a stop that never leaves a process behind.
import type { ChildProcess } from 'node:child_process';

/** A start problem with its cause and fix in one line (no stack trace needed). */
export class EngineError extends Error {
  override name = 'EngineError';
}

export function onceExited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Sends `signal`, then SIGKILL after `graceMs`; resolves once the process has exited. */
export async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM', graceMs = 15_000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = onceExited(child);
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
