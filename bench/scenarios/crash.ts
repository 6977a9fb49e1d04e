// The durability check behind the SQLite setting: guards are tracked in a closed loop; mid-load the
// dev server is killed with SIGKILL (no shutdown: as a crash would), restarted on the same SQLite
// file, and every guard whose track() had been acknowledged before the kill must still exist, and
// guards that had closed before must still be closed. A process crash only: an OS crash or power
// loss is what synchronous=FULL adds protection against (see bench/README.md).
import { randomBytes } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import { closedLoop, sleep } from '../lib/drive.ts';
import type { BenchEnv } from '../lib/env.ts';
import { BENCH_AGENT } from './paths.ts';

export interface CrashCheck {
  acknowledged: number;
  foundAfterRestart: number;
  missing: string[];
  completedBefore: number;
  completedFound: number;
  restartSeconds: number;
}

export async function crashCheck(env: BenchEnv, n: number, concurrency: number, onDone: () => void): Promise<CrashCheck> {
  const { stack } = env;
  const tag = `crash-${randomBytes(4).toString('hex')}`;
  const acknowledged: string[] = [];
  let killed = false;

  // Guards closed before the crash: a few delivered ones, awaited to their end.
  const closedIds: string[] = [];
  for (let i = 0; i < 10; i++) {
    const messageId = `${tag}-closed-${i}`;
    const { workflowId } = await stack.guards.track({ agentId: BENCH_AGENT, messageId, phone: `+1777000${String(i).padStart(4, '0')}`, staleIn: '10m', fallbackText: 'x' });
    stack.sim.registerSent({ agentId: BENCH_AGENT, messageId, phone: `+1777000${String(i).padStart(4, '0')}`, plan: { deliverAfterMs: 10 } });
    await stack.client.workflow.getHandle(workflowId).result();
    closedIds.push(workflowId);
  }

  const load = closedLoop(n, concurrency, async (i) => {
    const messageId = `${tag}-${i}`;
    try {
      const { workflowId } = await stack.guards.track({ agentId: BENCH_AGENT, messageId, phone: `+1777${String(i).padStart(7, '0')}`, staleIn: '10m', fallbackText: 'x' });
      if (!killed) acknowledged.push(workflowId);
      return true;
    } catch {
      return false; // in flight at the kill: neither acknowledged nor required to exist
    } finally {
      onDone();
    }
  });
  // Let the load build up, then kill the server where it stands.
  while (acknowledged.length < Math.min(n / 2, 100)) await sleep(20);
  const server = stack.devServer.process;
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  killed = true;
  server.kill('SIGKILL');
  await exited;
  const t0 = Date.now();
  await stack.restartTemporal();
  const restartSeconds = (Date.now() - t0) / 1000;
  await load;

  const missing: string[] = [];
  for (const workflowId of acknowledged) {
    try {
      await stack.client.workflow.getHandle(workflowId).describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) missing.push(workflowId);
      else throw err;
    }
  }
  let completedFound = 0;
  for (const workflowId of closedIds) {
    const { status } = await stack.client.workflow.getHandle(workflowId).describe();
    if (status.name === 'COMPLETED') completedFound++;
  }
  // Leave no sleeping guard behind to fire into the next measurement.
  await Promise.allSettled(acknowledged.map((id) => stack.client.workflow.getHandle(id).terminate('bench crash check done')));
  return {
    acknowledged: acknowledged.length,
    foundAfterRestart: acknowledged.length - missing.length,
    missing: missing.slice(0, 10),
    completedBefore: closedIds.length,
    completedFound,
    restartSeconds,
  };
}
