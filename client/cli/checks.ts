// Input checks that need no server: a bad argument is refused before anything connects. The rules
// themselves (id grammars, date-times) belong to the contract (workflows/names.ts, its import-free part: no SDK on the --help path); this only names the flag.
import { InvalidArgumentError } from 'commander';
import { agentIdProblem, parseGuardWorkflowId, parseIsoDateTime } from '../../workflows/names.ts';
import { usage } from './errors.ts';

/** A guard id is exactly guardWorkflowId(agentId, messageId) for a valid agent id and message id. */
export function checkGuardId(id: string): string {
  if (!parseGuardWorkflowId(id)) throw usage(`bad guard id '${id}': expected rbm-guard/<agentId>/<messageId>, as track prints it`);
  return id;
}

export function checkAgent(flag: string, agentId: string): string {
  const trimmed = agentId.trim();
  const problem = agentIdProblem(trimmed);
  if (problem) throw usage(`${flag}: ${problem}: '${agentId}'`);
  return trimmed;
}

/** A deadline to move to: a full ISO-8601 date-time with a zone, in the future. */
export function checkFutureDate(flag: string, text: string): Date {
  const at = parseIsoDateTime(text);
  if (!at) throw usage(`${flag}: not an ISO-8601 date-time with a zone: ${text}`);
  if (at.getTime() <= Date.now()) throw usage(`${flag}: ${at.toISOString()} is in the past`);
  return at;
}

/** An option parser accepting one of a list, case-insensitively. */
export function oneOf<T extends string>(values: readonly T[], what: string) {
  return (value: string): T => {
    const upper = value.toUpperCase();
    if ((values as readonly string[]).includes(upper)) return upper as T;
    throw new InvalidArgumentError(`Unknown ${what}; expected one of ${values.join(', ')}.`);
  };
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('Expected a whole number ≥ 1.');
  return n;
}
