// What the CLI prints for people (--json prints the objects themselves).
import type { GuardSummary } from '../guard-client.ts';
import type { GuardStatus } from '../../workflows/contract.ts';
import { oneLine } from './errors.ts';

export function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

export function renderStatus(s: GuardStatus): string {
  const head = fields([
    ['guard', s.workflowId],
    ['state', s.state],
    ['outcome', s.outcome ?? '—'],
    ['agent', s.agentId],
    ['message', s.messageId],
    ['stale at', s.staleAt ? `${s.staleAt} (${relative(s.staleAt)})` : '—'],
    ['revoke rounds', String(s.revokeRounds)],
  ]);
  const timeline = table([['TIME', 'STATE', 'EVENT', 'REASON'], ...s.timeline.map((t) => [t.at, t.state, t.event, oneLine(t.reason)])]);
  return `${head}\n${timeline}`;
}

export function renderList(guards: GuardSummary[]): string {
  return table([['ID', 'STATE', 'OUTCOME', 'STALE AT', 'STARTED'], ...guards.map((g) => [g.workflowId, g.state ?? '—', g.outcome ?? '—', g.staleAt ?? '—', g.startTime])]);
}

/** `key  value` lines, the keys padded to the longest. */
export function fields(rows: [string, string][]): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}\n`).join('');
}

/**
 * A text table: the first row is the header; columns padded to their widest cell. Plain: two spaces
 * apart, the last column not padded (the CLI). Markdown: pipes and a rule under the header (reports
 * meant to be pasted into notes).
 */
export function table(rows: string[][], options: { markdown?: boolean } = {}): string {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  if (options.markdown) {
    const line = (row: string[]) => '| ' + widths.map((w, i) => (row[i] ?? '').padEnd(w)).join(' | ') + ' |';
    const [head = [], ...body] = rows;
    return [line(head), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...body.map(line)].join('\n');
  }
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return rows.map(line).join('\n') + '\n';
}

/** The markdown form, for reports (the chaos run's). */
export const markdownTable = (rows: string[][]): string => table(rows, { markdown: true });

export function indent(text: string): string {
  return text.replace(/^(?=.)/gm, '  ');
}

export function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** "in 9m 59s" / "3h 2m ago" */
export function relative(iso: string, now = Date.now()): string {
  const ms = Date.parse(iso) - now;
  let s = Math.round(Math.abs(ms) / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86_400], ['h', 3_600], ['m', 60], ['s', 1]] as const) {
    if (s >= size || (unit === 's' && parts.length === 0)) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
    if (parts.length === 2) break;
  }
  return ms >= 0 ? `in ${parts.join(' ')}` : `${parts.join(' ')} ago`;
}
