// The rules with one owner each (issue 11): the contract's id and date grammars, the Temporal error
// walks, the shared start options, the one text table — and the house rules that keep them so
// (nothing outside test/ imports from it; no npm script points into it).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { markdownTable, table } from '../../client/cli/render.ts';
import { guardStartOptions } from '../../client/start-options.ts';
import { causeOf, errorText, GRPC, grpcCause, grpcCode, grpcCodeName, TRANSIENT_GRPC_CODES } from '../../client/temporal-errors.ts';
import { freePort } from '../../service/engine/dev-server.ts';
import { loadConfig } from '../../config/index.ts';
import {
  agentIdProblem,
  ALL_STATES,
  guardWorkflowId,
  messageIdProblem,
  OUTCOMES,
  parseGuardWorkflowId,
  parseIsoDateTime,
  PENDING_STATES,
  SA,
} from '../../workflows/contract.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('guard ids', () => {
  it('parses exactly what guardWorkflowId makes', () => {
    expect(parseGuardWorkflowId(guardWorkflowId('agent-1', 'msg/with/slashes'))).toEqual({ agentId: 'agent-1', messageId: 'msg/with/slashes' });
    expect(parseGuardWorkflowId('rbm-guard/a.b_c@d-e/m')).toEqual({ agentId: 'a.b_c@d-e', messageId: 'm' });
  });

  it.each([
    ['no prefix', 'agent-1/msg-1'],
    ['no message', 'rbm-guard/agent-1/'],
    ['space in the agent', 'rbm-guard/agent 1/msg-1'],
    ['space in the message', 'rbm-guard/agent-1/msg 1'],
    ['an agent id guardWorkflowId would normalise', 'rbm-guard/agent-1@rbm.goog/msg-1'],
    ['an agent over 128 characters', `rbm-guard/${'a'.repeat(129)}/m`],
    ['a message over 256 characters', `rbm-guard/a/${'m'.repeat(257)}`],
  ])('refuses %s', (_, id) => {
    expect(parseGuardWorkflowId(id)).toBeUndefined();
  });

  it('names what is wrong with an agent or message id', () => {
    expect(agentIdProblem('')).toBe('must not be empty');
    expect(agentIdProblem('agent 1')).toBe('letters, digits and . _ @ - only');
    expect(agentIdProblem('a'.repeat(129))).toBe('at most 128 characters');
    expect(agentIdProblem('my-agent@rbm.goog')).toBeUndefined();
    const rule = 'no spaces, control or format characters, and well-formed Unicode';
    for (const bad of ['m 1', 'm\u00a01', 'm-\u001b[2J', 'm-\u009b31m', 'm-\u202egnp.exe', 'm-\u2066', 'm-\u200b', 'm-\ufeff', 'm-\ud800', 'm-\udc00', 'm\u2028']) {
      expect(messageIdProblem(bad), JSON.stringify(bad)).toBe(rule);
    }
    expect(messageIdProblem('4f0e-…')).toBeUndefined();
    expect(messageIdProblem('m-\u20ac/\u00e9:\u{1F600}')).toBeUndefined();
  });
});

describe('listening', () => {
  it('the HTTP API and every metrics endpoint default to loopback; only the webhook faces RBM', () => {
    const config = loadConfig({});
    expect(config.RBM_GUARD_API_HOST).toBe('127.0.0.1');
    expect(config.METRICS_HOST).toBe('127.0.0.1');
    expect(config.RBM_GUARD_CODEC_HOST).toBe('127.0.0.1');
    expect(config.WEBHOOK_HOST).toBe('0.0.0.0');
    expect(config.WEBHOOK_METRICS_PORT).toBeUndefined();
  });
});

describe('ISO date-times', () => {
  it('takes full date-times with a zone, nothing ambiguous', () => {
    expect(parseIsoDateTime('2026-12-01T10:00:00Z')?.toISOString()).toBe('2026-12-01T10:00:00.000Z');
    expect(parseIsoDateTime('2026-12-01T12:00+02:00')?.toISOString()).toBe('2026-12-01T10:00:00.000Z');
    for (const text of ['2026-12-01', '2026-12-01T10:00:00', 'tomorrow', '2026-13-01T10:00:00Z', ' 2026-12-01T10:00:00Z']) {
      expect(parseIsoDateTime(text), text).toBeUndefined();
    }
  });
});

describe('the list of all states', () => {
  it('is every pending state, then every outcome, once', () => {
    expect(ALL_STATES).toEqual([...PENDING_STATES, ...OUTCOMES]);
    expect(new Set(ALL_STATES).size).toBe(ALL_STATES.length);
  });
});

describe('Temporal errors', () => {
  it('finds the gRPC error of a real failed call through the cause chain', async () => {
    const port = await freePort(); // nothing listens there
    const connection = Connection.lazy({ address: `127.0.0.1:${port}`, connectTimeout: 2_000 });
    try {
      const err = await connection.withDeadline(Date.now() + 2_000, () => connection.workflowService.getSystemInfo({})).catch((e: unknown) => e);
      const cause = grpcCause(err);
      expect([GRPC.UNAVAILABLE, GRPC.DEADLINE_EXCEEDED]).toContain(cause?.code);
      expect(TRANSIENT_GRPC_CODES.has(cause?.code ?? -1)).toBe(true);
      const wrapped = new Error('outer', { cause: new Error('middle', { cause: err }) });
      expect(grpcCode(wrapped)).toBe(cause?.code);
      expect(errorText(err)).toBe(cause?.message);
    } finally {
      await connection.close();
    }
  });

  it('walks causes to a type, and stops at a cycle', () => {
    class Inner extends Error {}
    const inner = new Inner('inner');
    expect(causeOf(new Error('a', { cause: new Error('b', { cause: inner }) }), Inner)).toBe(inner);
    const cyclic: Error & { cause?: unknown } = new Error('self');
    cyclic.cause = cyclic;
    expect(causeOf(cyclic, Inner)).toBeUndefined();
    expect(grpcCause(cyclic)).toBeUndefined();
  });

  it('names codes for logs and labels', () => {
    expect(grpcCodeName(GRPC.DEADLINE_EXCEEDED)).toBe('deadline_exceeded');
    expect(grpcCodeName(99)).toBe('99');
    expect(TRANSIENT_GRPC_CODES.has(GRPC.PERMISSION_DENIED)).toBe(false);
  });
});

describe('start options', () => {
  it('never reopens a closed guard and sets the searchable fields', () => {
    const options = guardStartOptions({ agentId: 'agent-1', staleAt: '2026-12-01T10:00:00Z' });
    expect(options.workflowIdReusePolicy).toBe(WorkflowIdReusePolicy.REJECT_DUPLICATE);
    expect(options.typedSearchAttributes).toContainEqual({ key: SA.agentId, value: 'agent-1' });
    expect(options.typedSearchAttributes).toContainEqual({ key: SA.staleAt, value: new Date('2026-12-01T10:00:00Z') });
  });
});

describe('table()', () => {
  it('pads columns, plain or markdown', () => {
    expect(table([['ID', 'REASON'], ['a-long-id', 'x y']])).toBe('ID         REASON\na-long-id  x y\n');
    expect(markdownTable([['a', 'bb'], ['ccc', 'd']])).toBe('| a   | bb |\n|-----|----|\n| ccc | d  |');
  });
});

describe('the house', () => {
  const tracked = execFileSync('git', ['ls-files', '*.ts', '*.js', '*.mjs'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean);

  it('nothing outside test/ imports from test/', () => {
    const offenders = tracked
      .filter((file) => !file.startsWith('test/') && file !== 'vitest.config.ts')
      .filter((file) => /from\s+['"](\.\.?\/)+(\.\.\/)*test\/|import\(\s*['"](\.\.?\/)+test\//.test(readFileSync(`${root}/${file}`, 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('no npm script points into test/', () => {
    const { scripts } = JSON.parse(readFileSync(`${root}/package.json`, 'utf8')) as { scripts: Record<string, string> };
    expect(Object.entries(scripts).filter(([, command]) => /(^|\s)(\.\/)?test\//.test(command))).toEqual([]);
  });
});
