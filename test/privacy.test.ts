// No personal data at rest in clear. Two parts:
// 1. What Temporal stores, payload by payload, on the suite's server: every payload of a guard's
//    history (input, activity arguments and results, signals, result, the start summary and the
//    timers' summaries), a memo and the UI's current-details query are encrypted; search attributes
//    are plain and hold only state, outcome, agent and deadline.
// 2. The demo stack end to end (dev server on a SQLite file, worker and webhook as child processes,
//    the RBM simulator pushing events through the webhook): a batch runs with encryption on, the
//    server stops, and a raw byte search of the SQLite file and its WAL finds none of the batch's
//    phone numbers or texts. The same batch with encryption off finds every one of them, so the
//    search can fail.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { GuardClient } from '../client/guard-client.ts';
import { ENCRYPTED_ENCODING, KEY_ID_METADATA } from '../client/codec.ts';
import { SA, SEARCH_ATTRIBUTE_KEYS, WORKFLOW_TYPE, type GuardStatus, type Outcome } from '../workflows/contract.ts';
import { startLocalStack } from '../dev/stack/local-stack.ts';
import type { RbmFault } from '../dev/sim/rbm-simulator.ts';
import { startGuardStack, testMessage, type GuardStack } from './support/stack.ts';

const OUR_SEARCH_ATTRIBUTES = ['RbmAgentId', 'RbmOutcome', 'RbmStaleAt', 'RbmState'];

it('the contract defines exactly four search attributes: state, outcome, agent, deadline', () => {
  expect(SEARCH_ATTRIBUTE_KEYS.map((k) => k.name).sort()).toEqual(OUR_SEARCH_ATTRIBUTES);
  expect(Object.keys(SA).sort()).toEqual(['agentId', 'outcome', 'staleAt', 'state']);
});

interface FoundPayload {
  path: string;
  encoding: string;
  keyId?: string;
  data: Buffer;
}

/** Every Payload inside a proto-JSON object (history, describe, query answer), with where it sits. */
function payloadsIn(value: unknown, path = ''): FoundPayload[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => payloadsIn(v, `${path}[${i}]`));
  if (!value || typeof value !== 'object') return [];
  const obj = value as Record<string, unknown>;
  const metadata = obj.metadata as Record<string, string> | undefined;
  if (metadata && typeof metadata === 'object' && typeof metadata.encoding === 'string') {
    const text = (b64: string | undefined) => (b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString('utf8'));
    return [{ path, encoding: text(metadata.encoding)!, keyId: text(metadata[KEY_ID_METADATA]), data: Buffer.from(String(obj.data ?? ''), 'base64') }];
  }
  return Object.entries(obj).flatMap(([k, v]) => payloadsIn(v, path ? `${path}.${k}` : k));
}

/** A protobuf message as proto JSON (bytes as base64), as the recorded histories are stored. */
const protoJson = (message: unknown): unknown => JSON.parse(JSON.stringify(message));

const isSearchAttribute = (path: string) => /searchAttributes\.indexedFields/.test(path);

describe('what Temporal stores for a guard (suite server, raw reads without the codec)', () => {
  let stack: GuardStack;
  let plain: Client;
  beforeAll(async () => {
    stack = await startGuardStack();
    plain = new Client({ connection: await Connection.connect({ address: inject('temporalAddress') }) });
  });
  afterAll(async () => {
    await plain?.connection.close();
    await stack?.close();
  });

  it('every payload of a finished guard is encrypted (input, activities, signals, result, summaries); search attributes are ours only and plain', async () => {
    const m = testMessage('stored');
    const text = `Your code is ${randomBytes(3).readUIntBE(0, 3) % 1_000_000} ref ${randomUUID()}`;
    stack.sim.registerSent({ agentId: m.agentId, messageId: m.messageId, phone: m.phone, plan: { deliverAfterMs: null } });
    const { workflowId } = await stack.guards.track({ ...m, staleIn: '1s', trafficType: 'AUTHENTICATION', fallbackText: text, policy: { ...m.policy, lingerMs: 0 } });
    const status = await stack.result(workflowId);
    expect(status.outcome).toBe('FALLBACK_SENT');

    const history = protoJson(await plain.workflow.getHandle(workflowId).fetchHistory());
    const found = payloadsIn(history);
    const others = found.filter((p) => !isSearchAttribute(p.path));
    const attributes = found.filter((p) => isSearchAttribute(p.path));
    // The payloads this history must hold, by where they sit.
    const where = (re: RegExp) => others.filter((p) => re.test(p.path));
    expect(where(/workflowExecutionStartedEventAttributes\.input/).length).toBe(1);
    expect(where(/workflowExecutionStartedEventAttributes.*userMetadata\.summary|events\[0\]\.userMetadata\.summary/).length).toBe(1); // staticSummary
    expect(where(/timerStartedEventAttributes|userMetadata\.summary/).length).toBeGreaterThanOrEqual(2); // the start's and the timers' summaries
    expect(where(/activityTaskScheduledEventAttributes\.input/).length).toBeGreaterThanOrEqual(1); // sendFallback
    expect(where(/activityTaskCompletedEventAttributes\.result/).length).toBeGreaterThanOrEqual(1);
    expect(where(/markerRecordedEventAttributes\.details\.result/).length).toBe(1); // the local revoke's answer (rules 4)
    expect(where(/workflowExecutionCompletedEventAttributes\.result/).length).toBe(1);
    // A local activity's marker also holds the SDK core's own bookkeeping (`data`: seq, attempt,
    // activity type, times), which no codec sees: plain, and nothing of the message in it.
    const bookkeeping = where(/markerRecordedEventAttributes\.details\.data/);
    for (const p of bookkeeping) {
      expect(p.encoding).toBe('json/plain');
      expect(Object.keys(JSON.parse(p.data.toString()) as object).sort()).toEqual(['activity_id', 'activity_type', 'attempt', 'backoff', 'complete_time', 'original_schedule_time', 'seq']);
    }
    for (const p of others.filter((x) => !bookkeeping.includes(x))) {
      expect({ path: p.path, encoding: p.encoding, keyId: p.keyId }).toEqual({ path: p.path, encoding: ENCRYPTED_ENCODING, keyId: 'test-1' });
      expect(p.data.includes(m.phone)).toBe(false);
      expect(p.data.includes(text)).toBe(false);
    }
    // Search attributes: never encrypted by Temporal, so only ours, and nothing personal in them.
    const names = new Set(attributes.map((p) => p.path.replace(/.*indexedFields\./, '')));
    expect([...names].filter((n) => !OUR_SEARCH_ATTRIBUTES.includes(n))).toEqual([]);
    expect(names.size).toBe(4);
    for (const p of attributes) {
      expect(p.encoding).toBe('json/plain');
      expect(p.data.toString()).not.toContain(m.phone.slice(1));
      expect(p.data.toString()).not.toContain(text);
    }
    // The whole history as text: the number and the text appear nowhere.
    const raw = JSON.stringify(history);
    expect(raw).not.toContain(m.phone.slice(1));
    expect(raw).not.toContain(text);
  });

  it('a signal sent from a client is encrypted, and so are the memo and the current details the UI queries', async () => {
    const m = testMessage('details');
    // Started at once: a deferred guard (the default) runs nothing before its deadline, so answers no query.
    const undeferred = new GuardClient(stack.client, stack.taskQueue, { deferStart: false });
    const { workflowId } = await undeferred.track({ ...m, staleIn: '1h', fallbackText: `Never shown ${randomUUID()}` });
    await stack.client.workflow.getHandle(workflowId).signal('DELIVERED', { eventId: `e-${randomUUID()}` }).catch(() => undefined);

    // Current details (setCurrentDetails) reach the UI through this query: encoded by the worker's codec.
    const raw = await plain.workflowService.queryWorkflow({
      namespace: 'default',
      execution: { workflowId },
      query: { queryType: '__temporal_workflow_metadata' },
    });
    const answer = payloadsIn(protoJson(raw));
    expect(answer.map((p) => p.encoding)).toEqual([ENCRYPTED_ENCODING]);
    const metadata = await stack.client.workflow.getHandle(workflowId).query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    expect(metadata.currentDetails).toMatch(/\*\*(AWAITING_DELIVERY|DELIVERED)\*\*/);
    const signals = payloadsIn(protoJson(await plain.workflow.getHandle(workflowId).fetchHistory())).filter((p) =>
      /workflowExecutionSignaledEventAttributes\.input/.test(p.path),
    );
    expect(signals.length).toBe(1);
    expect(signals[0]!.encoding).toBe(ENCRYPTED_ENCODING);

    // A memo goes through the same codec (the guard sets none; this proves the client does it).
    const memoId = `memo-${randomUUID()}`;
    await stack.client.workflow.start(WORKFLOW_TYPE, {
      workflowId: memoId,
      taskQueue: `nobody-${randomUUID()}`,
      args: [{ agentId: 'a', messageId: 'b' }],
      memo: { contact: m.phone },
    });
    const described = await plain.workflowService.describeWorkflowExecution({ namespace: 'default', execution: { workflowId: memoId } });
    const memo = payloadsIn(protoJson(described)).filter((p) => p.path.includes('memo'));
    expect(memo.map((p) => p.encoding)).toEqual([ENCRYPTED_ENCODING]);
    expect((await stack.client.workflow.getHandle(memoId).describe()).memo).toEqual({ contact: m.phone });
    await stack.client.workflow.getHandle(memoId).terminate('test done');
    await stack.guards.cancel(workflowId).catch(() => undefined);
  });
});

// ---- part 2: the SQLite file itself ----

interface BatchMessage {
  agentId: string;
  messageId: string;
  phone: string;
  fallbackText?: string;
  sendText?: string;
  staleInMs: number;
  plan: Parameters<Awaited<ReturnType<typeof startLocalStack>>['sim']['registerSent']>[0]['plan'];
  revokeFaults: RbmFault[];
}

/** A mixed batch, each message with its own number and its own texts (so a match can only be ours). */
function privacyBatch(n: number): BatchMessage[] {
  return Array.from({ length: n }, (_, i) => {
    const phone = `+1415${String(2_000_000 + Math.floor(Math.random() * 7_000_000) + i).slice(0, 7)}`;
    const ref = randomBytes(6).toString('hex');
    const base = { agentId: 'privacy-agent', messageId: `privacy-${i}-${ref}`, phone, staleInMs: 1500 + (i % 4) * 300, revokeFaults: [] as RbmFault[] };
    const fallbackText = `Your code is ${100000 + ((i * 7919) % 900000)} (ref ${ref})`;
    switch (i % 5) {
      case 0: // delivered in time: DELIVERED and READ arrive through the webhook
        return { ...base, fallbackText, plan: { deliverAfterMs: 300, readAfterMs: 600 } };
      case 1: // never delivered: revoked, SMS sent
        return { ...base, fallbackText, plan: { deliverAfterMs: null } };
      case 2: // delivered just as the revoke lands (404)
        return { ...base, fallbackText, plan: { deliverAfterMs: null, raceRevoke: 404 as const } };
      case 3: // a flaky RBM API on the way to the revoke
        return { ...base, fallbackText, plan: { deliverAfterMs: null }, revokeFaults: [{ status: 503 }] };
      default: // the guard sends the RBM message itself (its text is an activity argument)
        return { ...base, fallbackText, sendText: `Hello from the shop, order ${ref} is ready`, plan: undefined };
    }
  });
}

interface BatchRun {
  outcomes: Partial<Record<Outcome | 'OPEN', number>>;
  pushesAcknowledged: number;
  smsSent: number;
  /** temporal.db and its -wal/-shm, concatenated: what is on disk after the server stopped. */
  bytes: Buffer;
  files: string[];
}

async function runBatch(batch: BatchMessage[], encryptionEnv?: Record<string, string>): Promise<BatchRun> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rbm-guard-privacy-'));
  const stack = await startLocalStack({ dataDir, taskQueue: 'privacy', encryptionEnv });
  let outcomes: Partial<Record<Outcome | 'OPEN', number>> = {};
  let pushesAcknowledged = 0;
  let smsSent = 0;
  try {
    for (const m of batch) {
      if (m.plan) stack.sim.registerSent({ agentId: m.agentId, messageId: m.messageId, phone: m.phone, plan: m.plan });
      if (m.revokeFaults.length) stack.sim.injectRevokeFaults(m.messageId, m.revokeFaults);
    }
    const ids = await Promise.all(
      batch.map(async (m) => {
        const { workflowId } = await stack.guards.track({
          agentId: m.agentId,
          messageId: m.messageId,
          phone: m.phone,
          staleAt: new Date(Date.now() + m.staleInMs),
          trafficType: 'AUTHENTICATION',
          fallbackText: m.fallbackText,
          sendText: m.sendText,
          policy: { graceMs: 1000, lingerMs: 500, maxRevokeRounds: 2, revokeAttempts: 3 },
        });
        return workflowId;
      }),
    );
    const statuses = await Promise.all(ids.map((id) => stack.client.workflow.getHandle(id).result() as Promise<GuardStatus>));
    outcomes = {};
    for (const s of statuses) outcomes[s.outcome ?? 'OPEN'] = (outcomes[s.outcome ?? 'OPEN'] ?? 0) + 1;
    pushesAcknowledged = stack.sim.stats().pushesAcknowledged;
    smsSent = stack.sink.sends.length;
  } finally {
    await stack.stop(); // the dev server stops: SQLite closes its file
  }
  const files = readdirSync(dataDir).filter((f) => f.startsWith('temporal.db'));
  const bytes = Buffer.concat(files.map((f) => readFileSync(join(dataDir, f))));
  rmSync(dataDir, { recursive: true, force: true });
  return { outcomes, pushesAcknowledged, smsSent, bytes, files };
}

function countMatches(haystack: Buffer, needle: string): number {
  const n = Buffer.from(needle, 'utf8');
  let count = 0;
  for (let at = haystack.indexOf(n); at >= 0; at = haystack.indexOf(n, at + 1)) count++;
  return count;
}

/** Every personal string of the batch: numbers (with and without +), fallback texts, sent texts. */
function needles(batch: BatchMessage[]): string[] {
  return batch.flatMap((m) => [m.phone, m.phone.slice(1), m.fallbackText, m.sendText].filter((s): s is string => Boolean(s)));
}

describe('the demo stack’s SQLite file holds no phone number and no message text', () => {
  const batch = privacyBatch(20);

  it('with encryption on: zero matches; with encryption off, the same batch shows every one (the search can fail)', async () => {
    const encrypted = await runBatch(batch);
    const clear = await runBatch(batch, { RBM_GUARD_ENCRYPTION: 'off' });

    // Both runs really ran the batch, through the webhook too.
    for (const run of [encrypted, clear]) {
      expect(run.outcomes.OPEN ?? 0).toBe(0);
      expect(Object.values(run.outcomes).reduce((a, b) => a + b, 0)).toBe(batch.length);
      expect(run.pushesAcknowledged).toBeGreaterThan(0);
      expect(run.smsSent).toBeGreaterThan(0);
      expect(run.files).toContain('temporal.db');
      expect(run.bytes.length).toBeGreaterThan(100_000);
    }
    expect(countMatches(encrypted.bytes, 'privacy-agent')).toBeGreaterThan(0); // the file does hold this batch

    const strings = needles(batch);
    const inEncrypted = strings.map((s) => [s, countMatches(encrypted.bytes, s)] as const);
    const inClear = strings.map((s) => [s, countMatches(clear.bytes, s)] as const);
    const total = (rows: (readonly [string, number])[]) => rows.reduce((a, [, c]) => a + c, 0);
    console.log(
      `privacy: ${strings.length} personal strings of ${batch.length} messages searched in ${encrypted.files.join('+')} ` +
        `(${encrypted.bytes.length} bytes): ${total(inEncrypted)} matches with encryption on; ` +
        `${total(inClear)} matches (${inClear.filter(([, c]) => c > 0).length}/${strings.length} strings found) with encryption off; ` +
        `outcomes ${JSON.stringify(encrypted.outcomes)}`,
    );
    expect(inEncrypted.filter(([, c]) => c > 0)).toEqual([]);
    expect(inClear.filter(([, c]) => c === 0)).toEqual([]);
  }, 300_000);
});
