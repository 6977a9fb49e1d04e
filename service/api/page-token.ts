// List page tokens as the HTTP API hands them out: Temporal's own token, sealed with an HMAC so a
// token the API never gave (forged, truncated, from another deployment) is refused as a bad field
// before Temporal sees it — Temporal answers those with UNKNOWN, which its client retries until the
// deadline, and a client would have read an outage. The seal's key comes from the API keys, so
// every replica with the same RBM_GUARD_API_KEYS reads every other's tokens; a key rotation
// retires the tokens of the moment (a client starts its listing again).
import { createHmac } from 'node:crypto';
import { sameBytes } from '../secrets.ts';
import type { ApiKey } from './auth.ts';

const SEAL_BYTES = 16;

export interface PageTokens {
  seal(token: Uint8Array): string;
  /** Temporal's token, or undefined when `text` is not a token these keys sealed. */
  open(text: string): Buffer | undefined;
}

export function pageTokens(keys: readonly ApiKey[]): PageTokens {
  const secret = createHmac('sha256', 'rbm-guard page token').update(Buffer.concat(keys.map((k) => k.digest).sort(Buffer.compare))).digest();
  const mac = (token: Uint8Array) => createHmac('sha256', secret).update(token).digest().subarray(0, SEAL_BYTES);
  return {
    seal: (token) => `${Buffer.from(token).toString('base64url')}.${mac(token).toString('base64url')}`,
    open(text) {
      const match = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(text);
      if (!match) return undefined;
      const token = Buffer.from(match[1]!, 'base64url');
      const given = Buffer.from(match[2]!, 'base64url');
      return sameBytes(given, mac(token)) ? token : undefined;
    },
  };
}
