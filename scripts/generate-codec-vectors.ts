// Writes contract/codec-vectors.json: test keys, plain payloads, and the same payloads encrypted by
// client/codec.ts, plus payloads every implementation must refuse. IVs are random, so this runs once
// and the file is committed; every implementation (test/client/codec-vectors.test.ts, the Python and Go
// clients' suites) decrypts the committed payloads and round-trips the plain ones.
//   npx tsx scripts/generate-codec-vectors.ts     (only when the format changes: bump formatVersion)
import { isEntryPoint } from '../config/entrypoint.ts';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Payload } from '@temporalio/common';
import { EncryptionCodec, KEY_ID_METADATA } from '../client/codec.ts';
import { guardWorkflowId } from '../workflows/contract.ts';

export const VECTORS_FILE = resolve(import.meta.dirname, '../contract/codec-vectors.json');

export interface WirePayload {
  metadata: Record<string, string>;
  data: string;
}
export interface CodecVectors {
  formatVersion: number;
  keys: { id: string; key: string }[];
  vectors: { name: string; keyId: string; plain: WirePayload; encrypted: WirePayload }[];
  rejects: { name: string; error: 'unknown-key' | 'authentication' | 'truncated'; keyId: string; encrypted: WirePayload }[];
}

const b64 = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? new Uint8Array()).toString('base64');
export const toWire = (p: Payload): WirePayload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, b64(v)])),
  data: b64(p.data),
});
export const fromWire = (w: WirePayload): Payload => ({
  metadata: Object.fromEntries(Object.entries(w.metadata).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))])),
  data: new Uint8Array(Buffer.from(w.data, 'base64')),
});
const json = (value: unknown): Payload => ({
  metadata: { encoding: new TextEncoder().encode('json/plain') },
  data: new TextEncoder().encode(JSON.stringify(value)),
});

async function generate(): Promise<CodecVectors> {
  const keys = [
    { id: 'vector-1', key: randomBytes(32) },
    { id: 'vector-2', key: randomBytes(32) },
  ];
  const plains: { name: string; payload: Payload }[] = [
    {
      name: 'guard input (json/plain)',
      payload: json({
        agentId: 'acme',
        messageId: 'm-1',
        message: {
          agentId: 'acme', messageId: 'm-1', phone: '+14155550100', staleAt: '2030-01-01T00:10:00.000Z', sentAt: '2030-01-01T00:00:00.000Z',
          platformExpireAt: null, trafficType: 'AUTHENTICATION', fallback: { channel: 'sms', text: 'Your code is 123456' }, send: null,
          policy: { graceMs: 30000, maxRevokeRounds: 3, revokeAttempts: 5, fallbackAttempts: 8, onUnknown: 'fallback', lingerMs: 600000 },
        },
      }),
    },
    { name: 'unicode text', payload: json({ text: 'Ihr Code: 123456 — ✓ 验证码 🔐' }) },
    { name: 'guard id string', payload: json(guardWorkflowId('acme', 'a/b:c')) },
    { name: 'null (binary/null, no data)', payload: { metadata: { encoding: new TextEncoder().encode('binary/null') }, data: new Uint8Array() } },
  ];
  const vectors: CodecVectors['vectors'] = [];
  for (const [i, { name, payload }] of plains.entries()) {
    const key = keys[i % 2]!;
    const [encrypted] = await new EncryptionCodec(keys, key.id).encode([payload]);
    vectors.push({ name, keyId: key.id, plain: toWire(payload), encrypted: toWire(encrypted!) });
  }
  const unknown = { id: 'vector-missing', key: randomBytes(32) };
  const [byUnknown] = await new EncryptionCodec([unknown]).encode([plains[1]!.payload]);
  const tampered = fromWire(vectors[0]!.encrypted);
  tampered.data![20]! ^= 0x01;
  const moved = fromWire(vectors[1]!.encrypted); // encrypted under vector-2, relabelled vector-1
  moved.metadata![KEY_ID_METADATA] = new TextEncoder().encode('vector-1');
  const truncated = fromWire(vectors[0]!.encrypted);
  truncated.data = truncated.data!.subarray(0, 20);
  return {
    formatVersion: 1,
    keys: keys.map((k) => ({ id: k.id, key: k.key.toString('base64') })),
    vectors,
    rejects: [
      { name: 'key id not loaded', error: 'unknown-key', keyId: unknown.id, encrypted: toWire(byUnknown!) },
      { name: 'one ciphertext bit flipped', error: 'authentication', keyId: 'vector-1', encrypted: toWire(tampered) },
      { name: 'key id relabelled (it is authenticated data)', error: 'authentication', keyId: 'vector-1', encrypted: toWire(moved) },
      { name: 'shorter than iv + tag', error: 'truncated', keyId: 'vector-1', encrypted: toWire(truncated) },
    ],
  };
}

if (isEntryPoint(import.meta.url)) {
  writeFileSync(VECTORS_FILE, `${JSON.stringify(await generate(), null, 2)}\n`);
  console.log(`wrote ${VECTORS_FILE}`);
}
