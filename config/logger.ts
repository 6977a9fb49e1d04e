// The one structured logger. Personal data is redacted here, at the logger, not at each call:
// any field that can hold a phone number, message text or a secret never reaches the output.
import { pino, type Logger as PinoLogger } from 'pino';
import type { Config } from './index.ts';

export type Logger = PinoLogger;

const SENSITIVE = [
  'phone',
  'phoneNumber',
  'senderPhoneNumber',
  'to',
  'text',
  'body',
  'fallbackText',
  'sendText',
  'secret',
  'clientToken',
  'authorization',
  'private_key',
  'access_token',
];
export const REDACT_PATHS = [...SENSITIVE, ...SENSITIVE.map((k) => `*.${k}`), ...SENSITIVE.map((k) => `*.*.${k}`), 'req.headers.authorization', 'req.headers["x-goog-signature"]'];

/** E.164 numbers inside free text (error messages, URLs with %2B) are masked too. */
export function maskPhones(text: string): string {
  return text.replace(/(\+|%2B)[1-9]\d{6,14}/gi, (m) => `${m.startsWith('+') ? m.slice(0, 3) : m.slice(0, 5)}…`);
}

export function createLogger(config: Pick<Config, 'LOG_LEVEL'>, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level: config.LOG_LEVEL,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      hooks: {
        logMethod(args, method) {
          // Mask numbers in the message string itself, wherever it came from.
          const masked = args.map((a) => (typeof a === 'string' ? maskPhones(a) : a)) as Parameters<typeof method>;
          return method.apply(this, masked);
        },
      },
    },
    destination as never,
  );
}
