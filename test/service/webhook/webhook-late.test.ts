// Events after a guard closed, end to end on the suite's dev server: a real worker runs the guards
// (simulator + SMS sink) and the late-delivery records; the real webhook takes signed pushes over a
// port. A DELIVERED/READ after an SMS outcome must become one searchable DOUBLE_DELIVERY record per
// event; other late events are answered 200 and counted by the outcome they met.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import { EVENTS_PATH, rbmSignature } from '../../../service/webhook/app.ts';
import { startWebhookServer, type WebhookServer } from '../../../service/webhook/server.ts';
import {
  guardWorkflowId,
  LATE_DELIVERY_WORKFLOW_TYPE,
  MAX_WORKFLOW_ID_BYTES,
  SA,
  type GuardStatus,
  type LateDeliveryInput,
  type Outcome,
} from '../../../workflows/contract.ts';
import { rbmLateDelivery } from '../../../workflows/late-delivery.ts';
import { lateDeliveryWorkflowId } from '../../../client/late-records.ts';
import { runCli } from '../../../client/cli.ts';
import { startGuardStack, testMessage, type GuardStack } from '../../support/stack.ts';
import { eventually } from '../../support/eventually.ts';

const TOKEN = 'late-client-token';
let stack: GuardStack;
let webhook: WebhookServer;
const registry = new Registry();

beforeAll(async () => {
  stack = await startGuardStack({ directEvents: false });
  const config = { ...stack.config, RBM_CLIENT_TOKEN: TOKEN, TEMPORAL_TASK_QUEUE: stack.taskQueue, WEBHOOK_HOST: '127.0.0.1', WEBHOOK_PORT: 0, LOG_LEVEL: 'silent' as const };
  webhook = await startWebhookServer(config, { client: stack.client, metrics: registry });
});
afterAll(async () => {
  await webhook?.close();
  await stack?.close();
});


/** The CLI as an operator runs it against this stack (its key ring, its task queue). */
function cliEnv(): Record<string, string> {
  const keys = (['RBM_GUARD_ENCRYPTION', 'RBM_GUARD_ENCRYPTION_KEYS', 'RBM_GUARD_ENCRYPTION_KEY_FILE', 'RBM_GUARD_ENCRYPTION_KEY_ID'] as const).flatMap((k) =>
    stack.config[k] === undefined ? [] : [[k, String(stack.config[k])] as const],
  );
  return { TEMPORAL_ADDRESS: stack.config.TEMPORAL_ADDRESS!, TEMPORAL_TASK_QUEUE: stack.taskQueue, ...Object.fromEntries(keys) };
}
async function cli(args: string[], env: Record<string, string>) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env });
  return { code, stdout, stderr };
}

/** POSTs a signed push, as RBM would, and returns the status and JSON answer. */
async function pushSigned(event: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  const data = Buffer.from(JSON.stringify(event));
  const res = await fetch(`${webhook.url}${EVENTS_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-goog-signature': rbmSignature(TOKEN, data), 'x-goog-webhook-type': 'message_callback' },
    body: JSON.stringify({ message: { data: data.toString('base64'), messageId: randomUUID() } }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const rbmEvent = (m: { agentId: string; messageId: string; phone: string }, eventType: string, eventId: string = randomUUID()) => ({
  agentId: `${m.agentId}@rbm.goog`,
  messageId: m.messageId,
  eventId,
  eventType,
  sendTime: new Date().toISOString(),
  ...(eventType.startsWith('TTL') ? { phoneNumber: m.phone } : { senderPhoneNumber: m.phone }),
});

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const text = await registry.metrics();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && want.every((w) => l.split(' ')[0]?.includes(w)))
    .reduce((sum, l) => sum + Number(l.split(' ')[1]), 0);
}

/** A guard that ran for real and closed with `want` (short deadline, short linger). */
async function closedGuard(name: string, want: Outcome, deliver: boolean, ids: { agentId?: string; messageId?: string } = {}) {
  const m = { ...testMessage(name), ...ids };
  const workflowId = guardWorkflowId(m.agentId, m.messageId);
  stack.sim.registerSent({ agentId: m.agentId, messageId: m.messageId, phone: m.phone });
  await stack.guards.track({ ...m, staleIn: deliver ? '1m' : '1s', fallbackText: `late test ${name}`, policy: { ...m.policy, lingerMs: 300 } });
  if (deliver) stack.sim.deliver(m.messageId);
  // With directEvents off, the simulator's own DELIVERED push is not wired: signal it like the webhook would.
  if (deliver) expect((await pushSigned(rbmEvent(m, 'DELIVERED'))).status).toBe(200);
  const status = await stack.result(workflowId);
  expect(status.outcome).toBe(want);
  await eventually(
    () => stack.client.workflow.getHandle(workflowId).describe(),
    (d) => d.status.name === 'COMPLETED' && d.typedSearchAttributes.get(SA.outcome) === want,
  );
  return { m, workflowId };
}

describe('a DELIVERED after the guard closed with an SMS', () => {
  it('is recorded once as a DOUBLE_DELIVERY workflow operators can search for; a duplicate makes no second record', async () => {
    const { m, workflowId } = await closedGuard('late-sms', 'FALLBACK_SENT', false);
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(1);
    const before = await metric('rbm_webhook_double_deliveries_total', { outcome: 'FALLBACK_SENT', result: 'recorded' });

    const eventId = randomUUID();
    const first = await pushSigned(rbmEvent(m, 'DELIVERED', eventId));
    const recordId = lateDeliveryWorkflowId(workflowId, eventId);
    expect(first).toEqual({ status: 200, body: { status: 'recorded', workflowId, outcome: 'FALLBACK_SENT', recordId, duplicate: false } });

    const record = stack.client.workflow.getHandle(recordId);
    const result = (await record.result()) as LateDeliveryInput;
    expect(result).toMatchObject({ guardWorkflowId: workflowId, agentId: m.agentId, messageId: m.messageId, eventType: 'DELIVERED', eventId, guardOutcome: 'FALLBACK_SENT' });
    const description = await record.describe();
    expect(description.type).toBe(LATE_DELIVERY_WORKFLOW_TYPE);
    expect(description.status.name).toBe('COMPLETED');
    expect(description.typedSearchAttributes.get(SA.outcome)).toBe('DOUBLE_DELIVERY');
    expect(description.typedSearchAttributes.get(SA.state)).toBe('DOUBLE_DELIVERY');
    expect(description.typedSearchAttributes.get(SA.agentId)).toBe(m.agentId);
    expect(await description.staticSummary()).toContain(workflowId);

    // RBM retries the same event (a lost 200): same record id, answered 200, still one record.
    const again = await pushSigned(rbmEvent(m, 'DELIVERED', eventId));
    expect(again.body).toMatchObject({ status: 'recorded', recordId, duplicate: true });
    const found = await eventually(
      async () => {
        const runs: string[] = [];
        const query = `RbmOutcome = "DOUBLE_DELIVERY" AND RbmAgentId = "${m.agentId}" AND WorkflowId = "${recordId}"`;
        for await (const w of stack.client.workflow.list({ query })) runs.push(w.workflowId);
        return runs;
      },
      (runs) => runs.length > 0,
    );
    expect(found).toEqual([recordId]);
    expect(await metric('rbm_webhook_double_deliveries_total', { outcome: 'FALLBACK_SENT', result: 'recorded' })).toBe(before + 1);
    expect(await metric('rbm_webhook_double_deliveries_total', { outcome: 'FALLBACK_SENT', result: 'duplicate' })).toBeGreaterThanOrEqual(1);
    // The guard itself is untouched: still one closed run, still one SMS.
    const runs: string[] = [];
    for await (const w of stack.client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) runs.push(w.status.name);
    expect(runs).toEqual(['COMPLETED']);
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(1);

    // Operators with the CLI see it: `list --outcome DOUBLE_DELIVERY` lists the record, `status` reads it.
    const env = cliEnv();
    const listed = await eventually(
      () => cli(['list', '--outcome', 'DOUBLE_DELIVERY', '--agent', m.agentId, '--json'], env),
      (r) => r.stdout.includes(recordId),
    );
    expect(JSON.parse(listed.stdout)).toEqual(expect.arrayContaining([expect.objectContaining({ workflowId: recordId, outcome: 'DOUBLE_DELIVERY' })]));
    const shown = await cli(['status', recordId], env);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`^guard +${workflowId}$`, 'm'));
    expect(shown.stdout).toMatch(/^guard outcome +FALLBACK_SENT$/m);
    expect(shown.stdout).toMatch(new RegExp(`^event +DELIVERED ${eventId}$`, 'm'));
    expect((await cli(['status', 'rbm-late/only-two'], env)).code).toBe(2);
  });

  it('an event id of any length makes one record Temporal accepts, also after the longest guard id', async () => {
    // The longest guard id the rules allow: a 128-character agent, a 256-character message id of 3-byte characters.
    const ids = { agentId: `long-${'a'.repeat(123)}`, messageId: `${randomUUID()}-`.padEnd(256, '\u20ac') };
    const { m, workflowId } = await closedGuard('late-long', 'FALLBACK_SENT', false, ids);
    expect(workflowId.length).toBe('rbm-guard/'.length + 128 + 1 + 256);
    const recordIds = new Set<string>();
    for (const length of [990, 5000]) {
      const eventId = `${randomUUID()}-`.padEnd(length, 'e');
      const first = await pushSigned(rbmEvent(m, 'DELIVERED', eventId));
      expect(first.status).toBe(200);
      expect(first.body).toMatchObject({ status: 'recorded', duplicate: false });
      const recordId = first.body.recordId as string;
      expect(recordId).toBe(lateDeliveryWorkflowId(workflowId, eventId));
      expect(Buffer.byteLength(recordId)).toBeLessThanOrEqual(MAX_WORKFLOW_ID_BYTES);
      expect(((await stack.client.workflow.getHandle(recordId).result()) as LateDeliveryInput).eventId).toBe(eventId);
      // RBM's retry of the same event finds the same record.
      expect((await pushSigned(rbmEvent(m, 'DELIVERED', eventId))).body).toMatchObject({ status: 'recorded', recordId, duplicate: true });
      recordIds.add(recordId);
    }
    expect(recordIds.size).toBe(2);
  });

  it('reads the outcome from the closed run\'s result when it has no RbmOutcome attribute', async () => {
    // A closed run with the guard's id and a result that names an SMS outcome, but no search attribute.
    const m = testMessage('late-result');
    const workflowId = guardWorkflowId(m.agentId, m.messageId);
    const closed = await stack.client.workflow.start(rbmLateDelivery, {
      workflowId,
      taskQueue: stack.taskQueue,
      args: [{ outcome: 'FALLBACK_MAYBE_TWICE' } as unknown as LateDeliveryInput],
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    });
    expect(((await closed.result()) as unknown as GuardStatus).outcome).toBe('FALLBACK_MAYBE_TWICE');
    const res = await pushSigned(rbmEvent(m, 'READ'));
    expect(res.body).toMatchObject({ status: 'recorded', outcome: 'FALLBACK_MAYBE_TWICE', duplicate: false });
  });
});

describe('other late events', () => {
  it('a READ after a DELIVERED outcome is late: answered 200, counted by outcome, no record', async () => {
    const { m, workflowId } = await closedGuard('late-read', 'DELIVERED', true);
    const before = await metric('rbm_webhook_late_events_by_outcome_total', { event_type: 'READ', outcome: 'DELIVERED' });
    const eventId = randomUUID();
    const res = await pushSigned(rbmEvent(m, 'READ', eventId));
    expect(res).toEqual({ status: 200, body: { status: 'late', workflowId, outcome: 'DELIVERED' } });
    expect(await metric('rbm_webhook_late_events_by_outcome_total', { event_type: 'READ', outcome: 'DELIVERED' })).toBe(before + 1);
    await expect(stack.client.workflow.getHandle(lateDeliveryWorkflowId(workflowId, eventId)).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(0);
  });

  it('a TTL_EXPIRATION_REVOKED after close is answered 200 and counted with the outcome it met, no record', async () => {
    const { m, workflowId } = await closedGuard('late-ttl', 'FALLBACK_SENT', false);
    const before = await metric('rbm_webhook_late_events_by_outcome_total', { event_type: 'TTL_EXPIRATION_REVOKED', outcome: 'FALLBACK_SENT' });
    const eventId = randomUUID();
    const res = await pushSigned(rbmEvent(m, 'TTL_EXPIRATION_REVOKED', eventId));
    expect(res).toEqual({ status: 200, body: { status: 'late', workflowId, outcome: 'FALLBACK_SENT' } });
    expect(await metric('rbm_webhook_late_events_by_outcome_total', { event_type: 'TTL_EXPIRATION_REVOKED', outcome: 'FALLBACK_SENT' })).toBe(before + 1);
    await expect(stack.client.workflow.getHandle(lateDeliveryWorkflowId(workflowId, eventId)).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
  });
});
