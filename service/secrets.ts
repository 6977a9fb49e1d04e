// Comparing what a caller presents with the secrets we hold (API keys, the codec token, the webhook's
// client tokens and signatures) without the time taken saying anything about either.
import { createHash, timingSafeEqual } from 'node:crypto';

/** A secret's fixed-length digest: what is kept and compared, never the secret itself. */
export function digest(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/** Constant time for equal lengths; unequal lengths say only that (digests and MACs have one length). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The first of `known` that matches, every one compared without stopping early: no hint of which one it was. */
export function firstMatch<T>(presented: Uint8Array, known: readonly T[], bytesOf: (k: T) => Uint8Array): T | undefined {
  let found: T | undefined;
  for (const k of known) if (sameBytes(presented, bytesOf(k)) && found === undefined) found = k;
  return found;
}
