// The payload-encryption test vectors (contract/codec-vectors.json, docs/payload-encryption.md):
// client/codec.ts decrypts every committed payload to its plain payload, round-trips each plain
// one, and refuses the bad ones with the error the format promises.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EncryptionCodec, PayloadDecryptionError } from '../../client/codec.ts';
import { fromWire, toWire, VECTORS_FILE, type CodecVectors } from '../../scripts/generate-codec-vectors.ts';

const file = JSON.parse(readFileSync(VECTORS_FILE, 'utf8')) as CodecVectors;
const keys = file.keys.map((k) => ({ id: k.id, key: Buffer.from(k.key, 'base64') }));

describe('codec test vectors', () => {
  it('has vectors under both keys and every kind of reject', () => {
    expect(new Set(file.vectors.map((v) => v.keyId))).toEqual(new Set(['vector-1', 'vector-2']));
    expect(new Set(file.rejects.map((r) => r.error))).toEqual(new Set(['unknown-key', 'authentication', 'truncated']));
  });

  it.each(file.vectors)('decrypts "$name"', async (v) => {
    const [plain] = await new EncryptionCodec(keys).decode([fromWire(v.encrypted)]);
    expect(toWire(plain!)).toEqual(v.plain);
  });

  it.each(file.vectors)('round-trips "$name" under its key, with a fresh IV each time', async (v) => {
    const codec = new EncryptionCodec(keys, v.keyId);
    const [a, b] = await codec.encode([fromWire(v.plain), fromWire(v.plain)]);
    expect(Buffer.from(a!.metadata!['encryption-key-id']!).toString()).toBe(v.keyId);
    expect(Buffer.from(a!.data!).subarray(0, 12)).not.toEqual(Buffer.from(b!.data!).subarray(0, 12));
    expect(toWire((await codec.decode([a!]))[0]!)).toEqual(v.plain);
  });

  it.each(file.rejects)('refuses "$name"', async (r) => {
    const err = await new EncryptionCodec(keys).decode([fromWire(r.encrypted)]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayloadDecryptionError);
    expect((err as PayloadDecryptionError).keyId).toBe(r.keyId);
    expect((err as Error).message).toContain(`"${r.keyId}"`);
    const expected = { 'unknown-key': /not loaded/, authentication: /failed authentication/, truncated: /truncated/ }[r.error];
    expect((err as Error).message).toMatch(expected);
  });
});
