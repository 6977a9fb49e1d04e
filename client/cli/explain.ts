// Any failure → one line for an operator and an exit code. Loaded only when something failed: it
// pulls in the Temporal client's error classes, which `--help` should not pay for.
import { NamespaceNotFoundError, WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { ConfigError } from '../../config/index.ts';
import { PayloadDecryptionError } from '../codec.ts';
import { DifferentMessageError } from '../same-message.ts';
import { causeOf, errorText, GRPC, grpcCause } from '../temporal-errors.ts';
import { ValidationError } from '../track-input.ts';
import { CliError, EXIT } from './errors.ts';
import type { Session } from './session.ts';

/** The flag an input field came from, for a ValidationError from the library. */
const FLAG_OF_FIELD: Record<string, string> = {
  agentId: '--agent',
  messageId: '--message-id',
  phone: '--phone',
  staleAt: '--stale-at',
  staleIn: '--stale-in',
  expireTime: '--expire-time',
  ttl: '--ttl',
  fallbackText: '--fallback-text',
  trafficType: '--traffic-type',
  priority: '--priority',
  state: '--state',
  outcome: '--outcome',
  limit: '--limit',
  workflowId: 'guard id',
};

export function explain(err: unknown, session: Session | undefined): { message: string; exitCode: number } {
  const namespace = session?.namespace ?? 'default';
  const address = session?.address ?? '';
  if (err instanceof CliError) return { message: err.message, exitCode: err.exitCode };
  if (err instanceof ValidationError) {
    return { message: err.issues.map((i) => `${FLAG_OF_FIELD[i.field] ?? i.field}: ${i.message}`).join('; '), exitCode: EXIT.usage };
  }
  if (err instanceof DifferentMessageError) {
    const hint = err.differences?.includes('deadline') ? ` (rbm-guard status ${err.workflowId} shows the deadline it holds)` : '';
    return { message: `${err.message}; nothing changed${hint}`, exitCode: EXIT.failed };
  }
  if (err instanceof ConfigError) {
    return { message: `invalid configuration: ${err.issues.map((i) => `${i.variable}: ${i.message}`).join('; ')}`, exitCode: EXIT.usage };
  }
  if (err instanceof WorkflowNotFoundError) {
    return { message: `no guard ${err.workflowId || ''} in namespace ${namespace}`.replace('  ', ' '), exitCode: EXIT.notFound };
  }
  if (err instanceof NamespaceNotFoundError) {
    return { message: `namespace ${err.namespace} does not exist on Temporal at ${address} (TEMPORAL_NAMESPACE)`, exitCode: EXIT.unreachable };
  }
  const undecryptable = causeOf(err, PayloadDecryptionError);
  if (undecryptable) {
    return {
      message: `cannot decrypt the guard's data: ${undecryptable.message} — use the service's keys (RBM_GUARD_ENCRYPTION_KEYS or RBM_GUARD_ENCRYPTION_KEY_FILE)`,
      exitCode: EXIT.failed,
    };
  }
  if (err instanceof WorkflowFailedError) {
    return { message: `the guard ended without a status: ${errorText(err.cause ?? err)}`, exitCode: EXIT.failed };
  }
  const grpc = grpcCause(err);
  if (grpc) {
    const reason = grpc.details || grpc.message;
    if (grpc.code === GRPC.UNAVAILABLE || grpc.code === GRPC.DEADLINE_EXCEEDED) {
      const message = session ? session.unreachable(reason).message : `cannot reach Temporal: ${reason}`;
      return { message, exitCode: EXIT.unreachable };
    }
    if (grpc.code === GRPC.UNAUTHENTICATED || grpc.code === GRPC.PERMISSION_DENIED) {
      return { message: `Temporal at ${address} refused the credentials (TEMPORAL_API_KEY / TEMPORAL_TLS_CERT): ${reason}`, exitCode: EXIT.unreachable };
    }
    return { message: `Temporal refused the request: ${reason}`, exitCode: EXIT.failed };
  }
  return { message: `unexpected failure: ${errorText(err)}`, exitCode: EXIT.failed };
}
