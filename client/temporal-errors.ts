// What a Temporal client error means, in one place: the walk down an error's `cause` chain (the SDK
// wraps gRPC errors in ServiceError and friends) and the gRPC status codes we act on. The CLI and
// the webhook adapter both import this; neither keeps a table of its own.
import { isGrpcServiceError } from '@temporalio/client';

/** gRPC status codes (grpc-js's `status` enum, without importing grpc-js itself). */
export const GRPC = {
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcCode = (typeof GRPC)[keyof typeof GRPC];

/** A code's name for logs and metric labels: `deadline_exceeded`; an unlisted code as its number. */
export function grpcCodeName(code: number): string {
  const entry = Object.entries(GRPC).find(([, value]) => value === code);
  return entry ? entry[0].toLowerCase() : String(code);
}

/**
 * Codes that mean "try again later": Temporal down, overloaded, slow or restarting. A deadline that
 * lapses while a call is queued surfaces as CANCELLED in grpc-js, so it counts too.
 */
export const TRANSIENT_GRPC_CODES: ReadonlySet<number> = new Set([
  GRPC.CANCELLED,
  GRPC.UNKNOWN,
  GRPC.DEADLINE_EXCEEDED,
  GRPC.RESOURCE_EXHAUSTED,
  GRPC.ABORTED,
  GRPC.INTERNAL,
  GRPC.UNAVAILABLE,
]);

/** How deep a cause chain is followed (the SDK nests two or three levels; a cycle must not hang). */
const MAX_DEPTH = 5;

function* causes(err: unknown): Generator<unknown> {
  for (let e: unknown = err, depth = 0; e && depth < MAX_DEPTH; e = (e as { cause?: unknown }).cause, depth++) yield e;
}

/** The first error of this type in the cause chain (the error itself included). */
export function causeOf<T extends Error>(err: unknown, type: abstract new (...args: never[]) => T): T | undefined {
  for (const e of causes(err)) if (e instanceof type) return e;
  return undefined;
}

export interface GrpcCause {
  code: number;
  details: string;
  message: string;
}

/** The gRPC error in the cause chain, if the failure came from the wire. */
export function grpcCause(err: unknown): GrpcCause | undefined {
  for (const e of causes(err)) {
    if (isGrpcServiceError(e)) return { code: e.code, details: e.details, message: e.message };
  }
  return undefined;
}

/** The gRPC status code in the cause chain, if any. */
export function grpcCode(err: unknown): number | undefined {
  return grpcCause(err)?.code;
}

/** A message for one line of output: the error's own message, or the value as text. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
