// The one structured logger. Personal data is redacted here, at the logger, not at each call:
// any field that can hold a phone number, message text or a secret never reaches the output, at
// any depth, and E.164 numbers are masked inside every string (messages, error messages, stacks).
import { pino, type Logger as PinoLogger } from 'pino';
import type { Config } from './index.ts';

export type Logger = PinoLogger;

/** Field names whose values are never logged (compared case-insensitively, at any depth). */
const SENSITIVE = [
  // personal data
  'phone',
  'phoneNumber',
  'senderPhoneNumber',
  'to',
  'text',
  'body',
  'content',
  'contentMessage',
  'messageText',
  'fallbackText',
  'sendText',
  'payload',
  'payloads',
  // secrets
  'secret',
  'token',
  'clientToken',
  'authorization',
  'authorization-extras',
  'cookie',
  'x-goog-signature',
  'private_key',
  'privateKey',
  'access_token',
  'refresh_token',
  'id_token',
  'apiKey',
  'password',
  'authToken',
  'RBM_CLIENT_TOKEN',
  'TEMPORAL_API_KEY',
  'TWILIO_AUTH_TOKEN',
  'FALLBACK_HTTP_TOKEN',
  'RBM_GUARD_ENCRYPTION_KEYS',
  'RBM_GUARD_CODEC_TOKEN',
];
const SENSITIVE_KEYS = new Set(SENSITIVE.map((k) => k.toLowerCase()));
const CENSOR = '[redacted]';

/** Fixed paths for pino's own redaction (bindings of child loggers included); the deep walk below covers the rest. */
export const REDACT_PATHS = [
  ...SENSITIVE.map((k) => (/^[A-Za-z_$][\w$]*$/.test(k) ? k : `["${k}"]`)),
  ...SENSITIVE.map((k) => (/^[A-Za-z_$][\w$]*$/.test(k) ? `*.${k}` : `*["${k}"]`)),
  'req.headers.authorization',
  'req.headers["x-goog-signature"]',
];

/** E.164 numbers inside free text (error messages, URLs with %2B) are masked too. */
export function maskPhones(text: string): string {
  return text.replace(/(\+|%2B)[1-9]\d{6,14}/gi, (m) => `${m.startsWith('+') ? m.slice(0, 3) : m.slice(0, 5)}…`);
}

const MAX_DEPTH = 8;

/**
 * A copy of a log object with sensitive fields censored and phone numbers masked in every string,
 * at any depth. Errors are copied (same class) with their message, stack and cause masked.
 */
export function sanitizeForLog(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return maskPhones(value);
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[deep]';
  seen.add(value);
  if (value instanceof Error) {
    // A copy of the same class (so the err serializer still names its type), masked.
    const copy = Object.create(Object.getPrototypeOf(value) as object) as Record<string, unknown>;
    for (const [k, v] of Object.entries(value)) {
      copy[k] = SENSITIVE_KEYS.has(k.toLowerCase()) && v !== undefined && v !== null ? CENSOR : sanitizeForLog(v, depth + 1, seen);
    }
    const hidden = (v: unknown) => ({ value: v, enumerable: false, writable: true, configurable: true });
    Object.defineProperty(copy, 'message', hidden(maskPhones(value.message)));
    if (value.stack) Object.defineProperty(copy, 'stack', hidden(maskPhones(value.stack)));
    if (Object.hasOwn(value, 'name')) Object.defineProperty(copy, 'name', hidden(value.name));
    if (value.cause !== undefined) Object.defineProperty(copy, 'cause', hidden(sanitizeForLog(value.cause, depth + 1, seen)));
    return copy;
  }
  if (Array.isArray(value)) return value.map((v) => sanitizeForLog(v, depth + 1, seen));
  // Raw bytes (a client error's rawPacket, a body) can hold an API key or a phone in any encoding: never logged.
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return `[${value.byteLength} bytes]`;
  if (value instanceof Date) return value;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value; // class instances (e.g. fastify's req) keep their serializers
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SENSITIVE_KEYS.has(k.toLowerCase()) && v !== undefined && v !== null ? CENSOR : sanitizeForLog(v, depth + 1, seen);
  }
  return out;
}

export function createLogger(config: Pick<Config, 'LOG_LEVEL'>, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level: config.LOG_LEVEL,
      redact: { paths: REDACT_PATHS, censor: CENSOR },
      formatters: {
        // Every log object, however deep, before it is written.
        log: (object) => sanitizeForLog(object) as Record<string, unknown>,
      },
      hooks: {
        logMethod(args, method) {
          // Mask numbers in the message string itself, wherever it came from — including the
          // message pino would take from an error logged without one.
          const masked = args.map((a) => (typeof a === 'string' ? maskPhones(a) : a)) as unknown[];
          const [first] = masked;
          if (masked.length === 1 && typeof first === 'object' && first !== null) {
            const err = first instanceof Error ? first : (first as { err?: unknown }).err;
            if (err instanceof Error && (first instanceof Error || (first as { msg?: unknown }).msg === undefined)) masked.push(maskPhones(err.message));
          }
          return method.apply(this, masked as Parameters<typeof method>);
        },
      },
    },
    destination as never,
  );
}
