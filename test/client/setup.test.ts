// `rbm-guard setup` on the suite's real Temporal server: a fresh namespace gets its retention and
// our search attributes, a second run changes nothing, a changed retention is applied, a
// conflicting attribute type and Temporal Cloud are refused with a line that says why.
import { randomUUID } from 'node:crypto';
import { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { msToTs } from '@temporalio/common/lib/time.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { isTemporalCloud, setupNamespace, setupOptionsFromConfig, SetupError } from '../../client/setup.ts';
import { loadConfig } from '../../config/index.ts';
import { runCli } from '../../client/cli.ts';
import { SEARCH_ATTRIBUTE_KEYS } from '../../workflows/contract.ts';
import { freePort } from '../../service/engine/dev-server.ts';

const address = inject('temporalAddress');
const names = SEARCH_ATTRIBUTE_KEYS.map((k) => k.name);
let connection: Connection;

beforeAll(async () => {
  connection = await Connection.connect({ address });
});
afterAll(async () => {
  await connection?.close();
});

const retentionDays = async (namespace: string) => {
  const d = await connection.workflowService.describeNamespace({ namespace });
  return Number(d.config?.workflowExecutionRetentionTtl?.seconds ?? 0) / 86_400;
};

describe('rbm-guard setup', () => {
  it('creates the namespace with its retention and the search attributes; a second run changes nothing', async () => {
    const namespace = `setup-${randomUUID()}`;
    const lines: string[] = [];
    const first = await setupNamespace({ address, namespace, retentionDays: 12, log: (l) => lines.push(l) });
    expect(first).toMatchObject({ namespace: 'created', added: names, present: [] });
    expect(await retentionDays(namespace)).toBe(12);
    const listed = await connection.operatorService.listSearchAttributes({ namespace });
    for (const k of SEARCH_ATTRIBUTE_KEYS) {
      expect(proto.temporal.api.enums.v1.IndexedValueType[Number(listed.customAttributes?.[k.name])]).toBe(`INDEXED_VALUE_TYPE_${k.type}`);
    }
    expect(lines.join('\n')).toContain(`namespace ${namespace} created (retention 12 d)`);

    const second = await setupNamespace({ address, namespace, retentionDays: 12 });
    expect(second).toMatchObject({ namespace: 'unchanged', added: [], present: names });

    const third = await setupNamespace({ address, namespace, retentionDays: 40 });
    expect(third.namespace).toBe('retention updated');
    expect(third.warnings).toEqual([]);
    expect(second.warnings).toEqual([expect.stringContaining('shorter than')]);
    expect(await retentionDays(namespace)).toBe(40);
  });

  it('refuses a search attribute that exists with another type, naming it', async () => {
    const other = `setup-${randomUUID()}`;
    await connection.workflowService.registerNamespace({ namespace: other, workflowExecutionRetentionPeriod: msToTs('1 day') });
    const TEXT = proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_TEXT;
    for (let i = 0; ; i++) {
      try {
        await connection.operatorService.addSearchAttributes({ namespace: other, searchAttributes: { RbmState: TEXT } });
        break;
      } catch (err) {
        if (i > 40) throw err; // a new namespace takes a moment to reach the cache
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const err = await setupNamespace({ address, namespace: other, retentionDays: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SetupError);
    expect((err as Error).message).toBe(`search attribute RbmState exists on ${other} as TEXT, rbm-guard needs KEYWORD: remove it or use another namespace`);
  });

  it('Temporal Cloud: says where its namespaces and search attributes are managed, without calling it', async () => {
    expect(isTemporalCloud({ address: 'my-ns.abcde.tmprl.cloud:7233' })).toBe(true);
    expect(isTemporalCloud({ address: 'us-east-1.aws.api.temporal.io:7233' })).toBe(true);
    expect(isTemporalCloud({ address: '127.0.0.1:7233', apiKey: 'k' })).toBe(true);
    expect(isTemporalCloud({ address: 'temporal:7233' })).toBe(false);
    const err = await setupNamespace({ address: 'my-ns.abcde.tmprl.cloud:7233', namespace: 'my-ns.abcde', retentionDays: 30 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SetupError);
    expect((err as Error).message).toMatch(/^Temporal Cloud manages namespaces and search attributes through its console, tcld or the Cloud Ops API/);
    expect((err as Error).message).toContain('RbmState (KEYWORD), RbmOutcome (KEYWORD), RbmAgentId (KEYWORD), RbmStaleAt (DATETIME)');
  });

  it('bad input and an unreachable server: one line naming the cause', async () => {
    await expect(setupNamespace({ address, namespace: 'x', retentionDays: 0 })).rejects.toThrow('retention must be a whole number of days >= 1, not 0');
    const closed = `127.0.0.1:${await freePort()}`;
    const err = await setupNamespace({ address: closed, namespace: 'x', retentionDays: 1, timeoutMs: 1500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SetupError);
    expect((err as Error).message).toMatch(new RegExp(`^connecting on ${closed} failed: `));
    expect(setupOptionsFromConfig(loadConfig({ TEMPORAL_DEV_PORT: '7999' }))).toMatchObject({ address: '127.0.0.1:7999', namespace: 'default', retentionDays: 30 });
    const options = setupOptionsFromConfig(loadConfig({ TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_NAMESPACE: 'ns', TEMPORAL_NAMESPACE_RETENTION_DAYS: '9' }));
    expect(options).toMatchObject({ address: 'temporal:7233', namespace: 'ns', retentionDays: 9 });
    expect(() => loadConfig({ TEMPORAL_NAMESPACE_RETENTION_DAYS: '0' })).toThrow(/TEMPORAL_NAMESPACE_RETENTION_DAYS/);
  });

  it('the CLI: `rbm-guard setup` sets up, then reports nothing to do; Temporal Cloud is one line, exit 1', async () => {
    const namespace = `setup-cli-${randomUUID()}`;
    const run = async (argv: string[], env: Record<string, string>) => {
      let stdout = '';
      let stderr = '';
      const code = await runCli(argv, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env });
      return { code, stdout, stderr };
    };
    const env = { TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace, TEMPORAL_NAMESPACE_RETENTION_DAYS: '5' };
    const first = await run(['setup', '--json'], env);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ address, namespace, retentionDays: 5, state: 'created', added: names, present: [] });
    // 5 days cannot hold a guard until its last late DELIVERED (15 + 7 days): said, on stderr and in the JSON.
    expect(JSON.parse(first.stdout).warnings).toEqual([expect.stringMatching(/^retention 5 d is shorter than a message's longest life plus RBM's redelivery \(22 d\)/)]);
    expect(first.stderr).toMatch(/^warning: retention 5 d is shorter than .* ends ORPHANED instead of a DOUBLE_DELIVERY record\n$/);
    const second = await run(['setup'], env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toBe(`${namespace} on ${address} is set up: retention 5 d, search attributes ${names.join(', ')}\n`);
    const cloud = await run(['setup'], { TEMPORAL_ADDRESS: 'my-ns.abcde.tmprl.cloud:7233', TEMPORAL_API_KEY: 'key', TEMPORAL_NAMESPACE: 'my-ns.abcde' });
    expect(cloud.code).toBe(1);
    expect(cloud.stdout).toBe('');
    expect(cloud.stderr).toMatch(/^error: Temporal Cloud manages namespaces and search attributes through its console, tcld or the Cloud Ops API, not the operator API: create namespace my-ns\.abcde there/);
    expect(cloud.stderr.trim().split('\n')).toHaveLength(1);
    const bad = await run(['setup', '--retention-days', '0'], env);
    expect(bad.code).toBe(2);
  });
});
