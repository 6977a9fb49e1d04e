// Payload encryption for every Temporal client and worker: AES-256-GCM over each payload's
// protobuf bytes, a fresh 12-byte IV per payload, the key id in the payload's metadata. Several
// keys are loaded at once so a key can be rotated: new payloads use the current key, any loaded
// key decrypts. Keys come from config (RBM_GUARD_ENCRYPTION_KEYS or RBM_GUARD_ENCRYPTION_KEY_FILE);
// only the embedded dev server gets a key generated into its data folder.
//
// Search attributes are never encoded by Temporal: they stay plain, which is why the contract
// allows only state, outcome, agent and deadline there.
//
// `npm run keygen -- <id>` (scripts/keygen.ts) prints a new `id:base64key` entry.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
// A CommonJS package whose exports Node's ESM loader cannot list: default import, then destructure.
import proto from '@temporalio/proto';
import { ConfigError, encryptionKeyRequired, KEY_ID_PATTERN, parseEncryptionKeys, type Config, type EncryptionKey } from '../config/index.ts';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const { temporal } = proto;
const ALGORITHM = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** The dev key file's name inside RBM_GUARD_DATA_DIR (beside the dev server's temporal.db). */
export const DEV_KEY_FILE = 'encryption-keys';

const utf8 = (text: string) => new TextEncoder().encode(text);
const text = (bytes: Uint8Array | null | undefined) => (bytes ? Buffer.from(bytes).toString('utf8') : undefined);

/** A payload this codec cannot decrypt: unknown key id, tampered bytes, or a malformed envelope. */
export class PayloadDecryptionError extends Error {
  override readonly name = 'PayloadDecryptionError';
  readonly keyId?: string;
  constructor(message: string, keyId?: string) {
    super(message);
    this.keyId = keyId;
  }
}

export class EncryptionCodec implements PayloadCodec {
  readonly currentKeyId: string;
  private readonly keys: ReadonlyMap<string, Buffer>;

  /** `currentKeyId` defaults to the last key: append a new key to rotate. */
  constructor(keys: readonly EncryptionKey[], currentKeyId?: string) {
    if (keys.length === 0) throw new Error('EncryptionCodec: no keys');
    const map = new Map<string, Buffer>();
    for (const { id, key } of keys) {
      if (!KEY_ID_PATTERN.test(id)) throw new Error(`EncryptionCodec: bad key id "${id}"`);
      if (map.has(id)) throw new Error(`EncryptionCodec: key id "${id}" appears twice`);
      if (key.length !== 32) throw new Error(`EncryptionCodec: key "${id}" is ${key.length} bytes, not 32`);
      map.set(id, Buffer.from(key));
    }
    this.currentKeyId = currentKeyId ?? keys[keys.length - 1]!.id;
    if (!map.has(this.currentKeyId)) throw new Error(`EncryptionCodec: current key "${this.currentKeyId}" is not loaded`);
    this.keys = map;
  }

  get keyIds(): string[] {
    return [...this.keys.keys()];
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const id = this.currentKeyId;
    const key = this.keys.get(id)!;
    return payloads.map((payload) => {
      const plain = temporal.api.common.v1.Payload.encode(payload).finish();
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv(ALGORITHM, key, iv);
      // The key id is authenticated too: moving a payload to another id fails like tampering.
      cipher.setAAD(Buffer.from(id, 'utf8'));
      const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: { encoding: utf8(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: utf8(id) },
        data: new Uint8Array(sealed),
      };
    });
  }

  /** Decrypts our payloads; any other payload (e.g. written before encryption was on) passes unchanged. */
  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      if (text(payload.metadata?.encoding) !== ENCRYPTED_ENCODING) return payload;
      const id = text(payload.metadata?.[KEY_ID_METADATA]);
      if (!id) throw new PayloadDecryptionError(`encrypted payload has no ${KEY_ID_METADATA} in its metadata`);
      const key = this.keys.get(id);
      if (!key) {
        throw new PayloadDecryptionError(
          `payload is encrypted with key id "${id}", which is not loaded (loaded: ${this.keyIds.join(', ')}); ` +
            'add that key to RBM_GUARD_ENCRYPTION_KEYS (or the key file) to read it',
          id,
        );
      }
      const sealed = Buffer.from(payload.data ?? new Uint8Array());
      if (sealed.length < IV_BYTES + TAG_BYTES) {
        throw new PayloadDecryptionError(`encrypted payload (key "${id}") is truncated: ${sealed.length} bytes`, id);
      }
      let plain: Buffer;
      try {
        const decipher = createDecipheriv(ALGORITHM, key, sealed.subarray(0, IV_BYTES));
        decipher.setAAD(Buffer.from(id, 'utf8'));
        decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
        plain = Buffer.concat([decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)), decipher.final()]);
      } catch {
        throw new PayloadDecryptionError(
          `encrypted payload (key "${id}") failed authentication: it was altered, or "${id}" now names a different key`,
          id,
        );
      }
      const decoded = temporal.api.common.v1.Payload.decode(plain);
      return { metadata: decoded.metadata, data: decoded.data };
    });
  }
}

/** What every Client and Worker gets: `{ payloadCodecs: [codec] }` (nothing when encryption is off). */
export function dataConverter(codec: PayloadCodec | null): DataConverter {
  return codec ? { payloadCodecs: [codec] } : {};
}

// ---- keys from config ----

export type EncryptionConfig = Pick<
  Config,
  | 'RBM_GUARD_ENCRYPTION'
  | 'RBM_GUARD_ENCRYPTION_KEYS'
  | 'RBM_GUARD_ENCRYPTION_KEY_FILE'
  | 'RBM_GUARD_ENCRYPTION_KEY_ID'
  | 'RBM_GUARD_DATA_DIR'
  | 'TEMPORAL_ADDRESS'
  | 'NODE_ENV'
>;

export interface KeyRing {
  keys: EncryptionKey[];
  currentKeyId: string;
  /** For the start-up log line: where the keys came from (never the keys). */
  source: string;
  /** True when the key was generated for the embedded dev server. */
  generated: boolean;
}

/**
 * The key ring config describes, or null when RBM_GUARD_ENCRYPTION=off. Throws ConfigError naming
 * the variable: bad keys, an unreadable key file, or no key where one is required.
 */
export function loadKeyRing(config: EncryptionConfig): KeyRing | null {
  if (config.RBM_GUARD_ENCRYPTION === 'off') return null;
  let keys: EncryptionKey[];
  let source: string;
  let generated = false;
  let variable = 'RBM_GUARD_ENCRYPTION_KEYS';
  if (config.RBM_GUARD_ENCRYPTION_KEYS) {
    keys = parseEncryptionKeys(config.RBM_GUARD_ENCRYPTION_KEYS, variable);
    source = 'RBM_GUARD_ENCRYPTION_KEYS';
  } else if (config.RBM_GUARD_ENCRYPTION_KEY_FILE) {
    variable = 'RBM_GUARD_ENCRYPTION_KEY_FILE';
    const file = config.RBM_GUARD_ENCRYPTION_KEY_FILE;
    keys = parseEncryptionKeys(readSecretFile(file, variable), variable, `${file}: `);
    source = file;
  } else if (encryptionKeyRequired(config)) {
    const why = config.NODE_ENV === 'production' ? 'NODE_ENV=production' : 'TEMPORAL_ADDRESS is set';
    throw new ConfigError([
      {
        variable: 'RBM_GUARD_ENCRYPTION_KEYS',
        message: `required when ${why} (or RBM_GUARD_ENCRYPTION_KEY_FILE): payloads hold phone numbers and message text; create a key with \`npm run keygen -- k1\``,
      },
    ]);
  } else {
    const file = devKeyFile(config.RBM_GUARD_DATA_DIR);
    generated = ensureDevKeyFile(file);
    keys = parseEncryptionKeys(readSecretFile(file, 'RBM_GUARD_DATA_DIR'), 'RBM_GUARD_DATA_DIR', `${file}: `);
    source = `${file} (dev key${generated ? ', generated now' : ''})`;
  }
  const currentKeyId = config.RBM_GUARD_ENCRYPTION_KEY_ID ?? keys[keys.length - 1]!.id;
  if (!keys.some((k) => k.id === currentKeyId)) {
    throw new ConfigError([
      { variable: 'RBM_GUARD_ENCRYPTION_KEY_ID', message: `"${currentKeyId}" is not among the keys in ${variable} (${keys.map((k) => k.id).join(', ')})` },
    ]);
  }
  return { keys, currentKeyId, source, generated };
}

/**
 * The env that gives other processes (child processes of a local stack) the key ring `config`
 * describes: the configured keys, or the dev key file (generated if needed). Every encryption
 * variable is set, so nothing leaks in from the parent's environment.
 */
export function keyRingEnv(config: EncryptionConfig): Record<string, string> {
  const env = { RBM_GUARD_ENCRYPTION: config.RBM_GUARD_ENCRYPTION, RBM_GUARD_ENCRYPTION_KEYS: '', RBM_GUARD_ENCRYPTION_KEY_FILE: '', RBM_GUARD_ENCRYPTION_KEY_ID: config.RBM_GUARD_ENCRYPTION_KEY_ID ?? '' };
  if (config.RBM_GUARD_ENCRYPTION === 'off') return env;
  if (config.RBM_GUARD_ENCRYPTION_KEYS) return { ...env, RBM_GUARD_ENCRYPTION_KEYS: config.RBM_GUARD_ENCRYPTION_KEYS };
  if (config.RBM_GUARD_ENCRYPTION_KEY_FILE) return { ...env, RBM_GUARD_ENCRYPTION_KEY_FILE: config.RBM_GUARD_ENCRYPTION_KEY_FILE };
  const ring = loadKeyRing(config); // the required-key check, or the dev key file
  if (!ring) return env;
  return { ...env, RBM_GUARD_ENCRYPTION_KEY_FILE: devKeyFile(config.RBM_GUARD_DATA_DIR) };
}

/** The codec config describes, or null when RBM_GUARD_ENCRYPTION=off. See loadKeyRing. */
export function codecFromConfig(config: EncryptionConfig): EncryptionCodec | null {
  const ring = loadKeyRing(config);
  return ring && new EncryptionCodec(ring.keys, ring.currentKeyId);
}

/** A one-line description for the start-up log: ids and where they came from, never key material. */
export function describeKeyRing(ring: KeyRing | null): string {
  if (!ring) return 'payload encryption is OFF (RBM_GUARD_ENCRYPTION=off): payloads are stored in clear';
  return `payload encryption on: current key "${ring.currentKeyId}", ${ring.keys.length} key(s) loaded from ${ring.source}`;
}

export function devKeyFile(dataDir: string): string {
  return resolve(dataDir, DEV_KEY_FILE);
}

/** A new key entry, `id:base64key`, with 32 random bytes. */
export function generateKeyEntry(id: string): string {
  if (!KEY_ID_PATTERN.test(id)) throw new Error(`bad key id "${id}": 1-64 letters, digits, . _ -`);
  return `${id}:${randomBytes(32).toString('base64')}`;
}

/** Creates the dev key file (0600) unless it exists; true if it created it. Safe if two processes race. */
export function ensureDevKeyFile(file: string): boolean {
  const entry = generateKeyEntry(`dev-${randomBytes(4).toString('hex')}`);
  return writeSecretFileOnce(
    file,
    [
      `# rbm-guard development encryption keys, generated ${new Date().toISOString()}.`,
      '# The payloads in this folder\'s temporal.db can only be read with them: keep this file.',
      '# One id:base64key per line; the last one encrypts new payloads, all of them decrypt.',
      entry,
      '',
    ].join('\n'),
  );
}

/** Writes a secret file with mode 0600 if it does not exist yet; true if this call wrote it. */
export function writeSecretFileOnce(file: string, content: string): boolean {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  try {
    writeFileSync(file, content, { mode: 0o600, flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

function readSecretFile(file: string, variable: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ variable, message: `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})` }]);
  }
}

/** A throwaway key ring for tests and benchmarks: the env that configures it, and its codec. */
export function ephemeralEncryption(id = 'ephemeral'): { env: { RBM_GUARD_ENCRYPTION_KEYS: string }; codec: EncryptionCodec } {
  const entry = generateKeyEntry(id);
  return {
    env: { RBM_GUARD_ENCRYPTION_KEYS: entry },
    codec: new EncryptionCodec(parseEncryptionKeys(entry, 'RBM_GUARD_ENCRYPTION_KEYS')),
  };
}
