// The payload codec and its keys: AES-256-GCM round trips, a fresh IV per payload, key rotation
// (key 1's payloads still decode once key 2 encrypts), clear errors for an unknown key id and for
// tampered bytes, and the key configuration: validation naming the variable, the dev key in the
// data folder (0600, generated once), and the refusal to run against a real Temporal without a key.
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseEncryptionKeys } from '../../config/index.ts';
import {
  codecFromConfig,
  dataConverter,
  devKeyFile,
  EncryptionCodec,
  ENCRYPTED_ENCODING,
  generateKeyEntry,
  KEY_ID_METADATA,
  keyRingEnv,
  loadKeyRing,
  PayloadDecryptionError,
} from '../../client/codec.ts';
import { TEST_KEY_1, TEST_KEY_2 } from '../support/encryption.ts';

const PHONE = '+14155550199';
const TEXT = 'Your code is 482913';
const message = { agentId: 'bank', messageId: 'm-1', phone: PHONE, fallback: { channel: 'sms', text: TEXT } };

const keys = (spec: string) => parseEncryptionKeys(spec, 'test');
const codec1 = new EncryptionCodec(keys(TEST_KEY_1));
const codec12 = new EncryptionCodec(keys(`${TEST_KEY_1},${TEST_KEY_2}`)); // test-2 is current (the last)
const meta = (p: Payload, key: string) => Buffer.from(p.metadata?.[key] ?? new Uint8Array()).toString('utf8');
const plain = () => [defaultPayloadConverter.toPayload(message), defaultPayloadConverter.toPayload('hello'), defaultPayloadConverter.toPayload(null)];

/** Config for the key tests: only what is given (plus a temp data folder), nothing from process.env. */
function config(env: Record<string, string> = {}) {
  return loadConfig({ RBM_GUARD_DATA_DIR: mkdtempSync(join(tmpdir(), 'rbm-guard-keys-')), ...env });
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('AES-256-GCM payload codec', () => {
  it('round-trips payloads; the stored bytes hold neither the phone number nor the text', async () => {
    const input = plain();
    const encoded = await codec1.encode(input);
    expect(encoded).toHaveLength(3);
    for (const p of encoded) {
      expect(meta(p, 'encoding')).toBe(ENCRYPTED_ENCODING);
      expect(meta(p, KEY_ID_METADATA)).toBe('test-1');
      expect(Object.keys(p.metadata ?? {}).sort()).toEqual(['encoding', KEY_ID_METADATA]); // json/plain is inside
      const bytes = Buffer.from(p.data!);
      expect(bytes.includes(PHONE)).toBe(false);
      expect(bytes.includes(TEXT)).toBe(false);
      expect(bytes.includes('json/plain')).toBe(false);
    }
    const decoded = await codec1.decode(encoded);
    expect(decoded.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([message, 'hello', null]);
  });

  it('uses a fresh 12-byte IV for every payload: the same value never encrypts to the same bytes', async () => {
    const [a, b] = await codec1.encode([defaultPayloadConverter.toPayload(message), defaultPayloadConverter.toPayload(message)]);
    expect(Buffer.from(a!.data!).equals(Buffer.from(b!.data!))).toBe(false);
    expect(Buffer.from(a!.data!).subarray(0, 12).equals(Buffer.from(b!.data!).subarray(0, 12))).toBe(false);
    // 12-byte IV + ciphertext + 16-byte tag
    const inner = Buffer.from(JSON.stringify(message)).length;
    expect(a!.data!.length).toBeGreaterThan(12 + 16 + inner);
  });

  it('key rotation: payloads written with key 1 still decode after key 2 becomes current', async () => {
    const old = await codec1.encode(plain());
    expect(codec12.currentKeyId).toBe('test-2');
    expect((await codec12.decode(old)).map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([message, 'hello', null]);
    const fresh = await codec12.encode(plain());
    expect(fresh.map((p) => meta(p, KEY_ID_METADATA))).toEqual(['test-2', 'test-2', 'test-2']);
    // An explicit current key (RBM_GUARD_ENCRYPTION_KEY_ID) wins over "the last one".
    const pinned = new EncryptionCodec(keys(`${TEST_KEY_1},${TEST_KEY_2}`), 'test-1');
    expect(meta((await pinned.encode(plain()))[0]!, KEY_ID_METADATA)).toBe('test-1');
  });

  it('a payload with an unknown key id fails with an error naming the key id, not garbage', async () => {
    const fresh = await codec12.encode([defaultPayloadConverter.toPayload(message)]);
    const err = await codec1.decode(fresh).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayloadDecryptionError);
    expect((err as PayloadDecryptionError).keyId).toBe('test-2');
    expect((err as Error).message).toBe(
      'payload is encrypted with key id "test-2", which is not loaded (loaded: test-1); add that key to RBM_GUARD_ENCRYPTION_KEYS (or the key file) to read it',
    );
  });

  it('tampered ciphertext, tag, IV or key id fails authentication', async () => {
    const [good] = await codec12.encode([defaultPayloadConverter.toPayload(message)]);
    const flip = (at: (n: number) => number) => {
      const data = Buffer.from(good!.data!);
      data[at(data.length)]! ^= 0x01;
      return { metadata: good!.metadata, data: new Uint8Array(data) };
    };
    for (const tampered of [flip(() => 20), flip((n) => n - 1), flip(() => 0)]) {
      await expect(codec12.decode([tampered])).rejects.toThrow(
        'encrypted payload (key "test-2") failed authentication: it was altered, or "test-2" now names a different key',
      );
    }
    // The key id is authenticated data: relabelling a payload as another loaded key fails too.
    const relabelled = { ...good!, metadata: { ...good!.metadata, [KEY_ID_METADATA]: new TextEncoder().encode('test-1') } };
    await expect(codec12.decode([relabelled])).rejects.toThrow('encrypted payload (key "test-1") failed authentication');
    await expect(codec12.decode([{ ...good!, data: new Uint8Array(10) }])).rejects.toThrow('encrypted payload (key "test-2") is truncated: 10 bytes');
    const noId = { ...good!, metadata: { encoding: good!.metadata!.encoding! } };
    await expect(codec12.decode([noId])).rejects.toThrow(`encrypted payload has no ${KEY_ID_METADATA} in its metadata`);
  });

  it('payloads written before encryption was on pass through decode unchanged', async () => {
    const input = plain();
    expect(await codec1.decode(input)).toEqual(input);
  });

  it('dataConverter(codec) puts the codec on a client or worker; null means none', () => {
    expect(dataConverter(codec1)).toEqual({ payloadCodecs: [codec1] });
    expect(dataConverter(null)).toEqual({});
  });
});

describe('keys from config', () => {
  it('RBM_GUARD_ENCRYPTION_KEYS: several keys, the last is current unless RBM_GUARD_ENCRYPTION_KEY_ID says', () => {
    const ring = loadKeyRing(config({ RBM_GUARD_ENCRYPTION_KEYS: `${TEST_KEY_1}, ${TEST_KEY_2}`, TEMPORAL_ADDRESS: 'temporal:7233' }));
    expect(ring?.keys.map((k) => k.id)).toEqual(['test-1', 'test-2']);
    expect(ring?.currentKeyId).toBe('test-2');
    expect(ring?.generated).toBe(false);
    const pinned = loadKeyRing(config({ RBM_GUARD_ENCRYPTION_KEYS: `${TEST_KEY_1},${TEST_KEY_2}`, RBM_GUARD_ENCRYPTION_KEY_ID: 'test-1' }));
    expect(pinned?.currentKeyId).toBe('test-1');
  });

  it('validates keys at load, naming the variable and never echoing key material', () => {
    const short = `k1:${Buffer.alloc(16, 7).toString('base64')}`;
    const cases: [Record<string, string>, string, string][] = [
      [{ RBM_GUARD_ENCRYPTION_KEYS: short }, 'RBM_GUARD_ENCRYPTION_KEYS', 'key "k1" is 16 bytes; AES-256 needs 32 (e.g. `openssl rand -base64 32`)'],
      [{ RBM_GUARD_ENCRYPTION_KEYS: `${TEST_KEY_1},${TEST_KEY_1}` }, 'RBM_GUARD_ENCRYPTION_KEYS', 'key id "test-1" appears twice'],
      [{ RBM_GUARD_ENCRYPTION_KEYS: 'k1:not base64!' }, 'RBM_GUARD_ENCRYPTION_KEYS', 'key "k1" is not base64'],
      [{ RBM_GUARD_ENCRYPTION_KEYS: 'c2VjcmV0LWtleS1tYXRlcmlhbA==' }, 'RBM_GUARD_ENCRYPTION_KEYS', 'entry 1 is not id:base64key'],
      [{ RBM_GUARD_ENCRYPTION_KEYS: `bad id:${Buffer.alloc(32).toString('base64')}` }, 'RBM_GUARD_ENCRYPTION_KEYS', 'entry 1: a key id is 1-64 letters, digits, . _ - (starting with a letter or digit)'],
      [{ RBM_GUARD_ENCRYPTION_KEYS: TEST_KEY_1, RBM_GUARD_ENCRYPTION_KEY_ID: 'test-9' }, 'RBM_GUARD_ENCRYPTION_KEY_ID', '"test-9" is not among RBM_GUARD_ENCRYPTION_KEYS (test-1)'],
      [{ RBM_GUARD_ENCRYPTION_KEYS: TEST_KEY_1, RBM_GUARD_ENCRYPTION_KEY_FILE: '/x' }, 'RBM_GUARD_ENCRYPTION_KEY_FILE', 'set RBM_GUARD_ENCRYPTION_KEYS or RBM_GUARD_ENCRYPTION_KEY_FILE, not both'],
      [{ RBM_GUARD_ENCRYPTION: 'off', NODE_ENV: 'production' }, 'RBM_GUARD_ENCRYPTION', 'cannot be off with NODE_ENV=production: payloads hold phone numbers and message text'],
      [{ RBM_GUARD_CODEC_TOKEN: 'short' }, 'RBM_GUARD_CODEC_TOKEN', 'at least 16 characters, letters, digits and . _ ~ - only'],
      [{ RBM_GUARD_CODEC_ORIGINS: 'http://ui.example/path' }, 'RBM_GUARD_CODEC_ORIGINS', 'not an origin (scheme://host[:port], no path): http://ui.example/path'],
    ];
    for (const [env, variable, message] of cases) {
      const err = configError(() => config(env));
      expect(err.issues).toEqual([{ variable, message }]);
      expect(err.message).not.toContain('c2VjcmV0');
      expect(err.message).not.toContain(Buffer.alloc(16, 7).toString('base64'));
    }
  });

  it('production refuses to run without a configured key, naming the variable', () => {
    for (const env of [{ TEMPORAL_ADDRESS: 'temporal.prod:7233' }, { NODE_ENV: 'production' }] as Record<string, string>[]) {
      const err = configError(() => loadKeyRing(config(env)));
      expect(err.issues).toHaveLength(1);
      expect(err.issues[0]!.variable).toBe('RBM_GUARD_ENCRYPTION_KEYS');
      expect(err.issues[0]!.message).toMatch(/^required when (TEMPORAL_ADDRESS is set|NODE_ENV=production) \(or RBM_GUARD_ENCRYPTION_KEY_FILE\)/);
    }
  });

  it('next to the embedded dev server, a dev key is generated once into the data folder with mode 0600', () => {
    const cfg = config();
    const first = loadKeyRing(cfg);
    expect(first?.generated).toBe(true);
    expect(first?.currentKeyId).toMatch(/^dev-[0-9a-f]{8}$/);
    const file = devKeyFile(cfg.RBM_GUARD_DATA_DIR);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const second = loadKeyRing(cfg);
    expect(second?.generated).toBe(false);
    expect(second?.currentKeyId).toBe(first?.currentKeyId);
    expect(second?.keys[0]!.key.equals(first!.keys[0]!.key)).toBe(true);
    // Other processes of a local stack get the same ring through the key file.
    expect(keyRingEnv(cfg)).toEqual({
      RBM_GUARD_ENCRYPTION: 'on',
      RBM_GUARD_ENCRYPTION_KEYS: '',
      RBM_GUARD_ENCRYPTION_KEY_FILE: file,
      RBM_GUARD_ENCRYPTION_KEY_ID: '',
    });
  });

  it('a key file: comments, one key per line, rotation by appending a line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rbm-guard-keyfile-'));
    const file = join(dir, 'keys');
    writeFileSync(file, `# production keys\n${TEST_KEY_1}\n`, { mode: 0o600 });
    const before = codecFromConfig(config({ RBM_GUARD_ENCRYPTION_KEY_FILE: file, TEMPORAL_ADDRESS: 'temporal:7233' }))!;
    const written = await before.encode([defaultPayloadConverter.toPayload(message)]);
    writeFileSync(file, `${readFileSync(file, 'utf8')}${TEST_KEY_2}\n`);
    const after = codecFromConfig(config({ RBM_GUARD_ENCRYPTION_KEY_FILE: file, TEMPORAL_ADDRESS: 'temporal:7233' }))!;
    expect(after.currentKeyId).toBe('test-2');
    expect(defaultPayloadConverter.fromPayload((await after.decode(written))[0]!)).toEqual(message);

    const missing = configError(() => loadKeyRing(config({ RBM_GUARD_ENCRYPTION_KEY_FILE: join(dir, 'nope') })));
    expect(missing.issues).toEqual([{ variable: 'RBM_GUARD_ENCRYPTION_KEY_FILE', message: `cannot read ${join(dir, 'nope')} (ENOENT)` }]);
    writeFileSync(file, 'k1:tooshort\n');
    expect(configError(() => loadKeyRing(config({ RBM_GUARD_ENCRYPTION_KEY_FILE: file }))).issues).toEqual([
      { variable: 'RBM_GUARD_ENCRYPTION_KEY_FILE', message: `${file}: key "k1" is 6 bytes; AES-256 needs 32 (e.g. \`openssl rand -base64 32\`)` },
    ]);
  });

  it('RBM_GUARD_ENCRYPTION=off means no codec (outside production)', () => {
    expect(codecFromConfig(config({ RBM_GUARD_ENCRYPTION: 'off', TEMPORAL_ADDRESS: 'temporal:7233' }))).toBeNull();
  });

  it('generateKeyEntry makes a valid 32-byte key entry (what `npm run keygen` prints)', () => {
    const entry = generateKeyEntry('k2');
    expect(entry).toMatch(/^k2:[A-Za-z0-9+/]{43}=$/);
    expect(keys(entry)[0]!.key).toHaveLength(32);
  });
});
