// API keys of the HTTP API: RBM_GUARD_API_KEYS (several during a rotation), compared in constant
// time; no key configured means every call is refused. Only the embedded dev server of `npm start`
// gets a key generated into its data folder, as it does for the encryption key and codec token.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, encryptionKeyRequired, type Config } from '../../config/index.ts';
import { writeSecretFileOnce } from '../../client/codec.ts';
import { digest, firstMatch } from '../secrets.ts';

/** The dev key's file inside RBM_GUARD_DATA_DIR. */
export const DEV_API_KEY_FILE = 'api-key';
const KEY_PATTERN = /^[A-Za-z0-9._~+/=-]{24,256}$/;

export interface ApiKey {
  /** A name for logs and the rate limiter: the first 8 hex digits of the key's SHA-256, never the key. */
  id: string;
  digest: Buffer;
}

export interface ApiKeys {
  keys: ApiKey[];
  /** Where they came from, for the start-up line (never the keys). */
  source: string;
  /** The dev key file, when `npm start` generated or reused one. */
  devKeyFile: string | null;
}

/** Parses comma-separated keys; throws ConfigError naming the variable (entries by position, never by value). */
export function parseApiKeys(text: string, variable = 'RBM_GUARD_API_KEYS'): ApiKey[] {
  const entries = text.split(/[,\n]/).map((k) => k.trim()).filter((k) => k && !k.startsWith('#'));
  const bad = entries.flatMap((k, i) => (KEY_PATTERN.test(k) ? [] : [`entry ${i + 1}`]));
  if (bad.length) throw new ConfigError([{ variable, message: `${bad.join(', ')}: a key is 24-256 characters of letters, digits and . _ ~ + / = -` }]);
  return entries.map((k) => {
    const d = digest(k);
    return { id: d.subarray(0, 4).toString('hex'), digest: d };
  });
}

/**
 * The keys config gives, or the dev key next to the embedded dev server (generated once). Against a
 * real Temporal or in production without RBM_GUARD_API_KEYS: no keys, and the API refuses every call.
 */
export function loadApiKeys(config: Pick<Config, 'RBM_GUARD_API_KEYS' | 'RBM_GUARD_DATA_DIR' | 'TEMPORAL_ADDRESS' | 'NODE_ENV'>): ApiKeys {
  if (config.RBM_GUARD_API_KEYS) return { keys: parseApiKeys(config.RBM_GUARD_API_KEYS), source: 'RBM_GUARD_API_KEYS', devKeyFile: null };
  if (encryptionKeyRequired(config)) return { keys: [], source: 'none configured (RBM_GUARD_API_KEYS): every call is refused', devKeyFile: null };
  const file = join(config.RBM_GUARD_DATA_DIR, DEV_API_KEY_FILE);
  const generated = writeSecretFileOnce(file, `${randomBytes(32).toString('base64url')}\n`);
  return { keys: parseApiKeys(readFileSync(file, 'utf8'), 'RBM_GUARD_DATA_DIR'), source: `${file} (dev key${generated ? ', generated now' : ''})`, devKeyFile: file };
}

/**
 * The key a request's `Authorization: Bearer <key>` matches, or undefined. Every configured key is
 * compared (service/secrets.ts), so the time taken says nothing about which.
 */
export function matchApiKey(keys: readonly ApiKey[], authorization: string | undefined): ApiKey | undefined {
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
  if (!match) return undefined;
  return firstMatch(digest(match[1]!), keys, (key) => key.digest);
}

/**
 * Failed authentications per client address in a fixed window: past `limit`, the address is refused
 * (429) before its key is even compared, so keys cannot be guessed at speed. Addresses are forgotten
 * when their window ends; at most `maxAddresses` are remembered (the oldest goes first), so a flood
 * of spoofed-looking sources cannot grow the map without bound.
 */
export class AuthFailures {
  private readonly byAddress = new Map<string, { count: number; resetAt: number }>();
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly maxAddresses: number;
  constructor(limit: number, windowMs = 60_000, maxAddresses = 10_000) {
    this.limit = limit;
    this.windowMs = windowMs;
    this.maxAddresses = maxAddresses;
  }

  /** Seconds until the address may try again, or 0 when it may try now. */
  blockedFor(address: string, now = Date.now()): number {
    const entry = this.byAddress.get(address);
    if (!entry) return 0;
    if (entry.resetAt <= now) {
      this.byAddress.delete(address);
      return 0;
    }
    return entry.count >= this.limit ? Math.ceil((entry.resetAt - now) / 1000) : 0;
  }

  record(address: string, now = Date.now()): void {
    const entry = this.byAddress.get(address);
    if (entry && entry.resetAt > now) {
      entry.count += 1;
      return;
    }
    this.byAddress.delete(address);
    if (this.byAddress.size >= this.maxAddresses) this.byAddress.delete(this.byAddress.keys().next().value!);
    this.byAddress.set(address, { count: 1, resetAt: now + this.windowMs });
  }
}
