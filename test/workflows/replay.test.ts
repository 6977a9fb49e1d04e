// Determinism guard: every recorded history (test/histories, written by guard.test.ts with
// RBM_GUARD_RECORD_HISTORIES=1) must replay against today's workflow code without a
// nondeterminism error. A change that breaks this needs patched().
import { readdirSync, readFileSync } from 'node:fs';
import { temporal } from '@temporalio/proto';
import type { DataConverter } from '@temporalio/common';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { expect, inject, it } from 'vitest';
import { dataConverter, ephemeralEncryption } from '../../client/codec.ts';
import { rotatedTestCodec } from '../support/encryption.ts';

// Replay workers log every state change at INFO; failures are asserted below.
Runtime.install({ logger: new DefaultLogger('ERROR') });

const dir = new URL('../histories/', import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

it('has recorded histories of every path to replay', () => {
  expect(files.length).toBeGreaterThanOrEqual(15);
});

it('replays every recorded history without nondeterminism', async () => {
  const histories = files.map((file) => ({
    workflowId: file.replace(/\.json$/, ''),
    history: temporal.api.history.v1.History.fromObject(JSON.parse(readFileSync(new URL(file, dir), 'utf8'))),
  }));
  const failures: string[] = [];
  let replayed = 0;
  for await (const result of Worker.runReplayHistories({ workflowBundle: { codePath: inject('workflowBundlePath') } }, histories)) {
    replayed += 1;
    if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
  }
  expect(failures).toEqual([]);
  expect(replayed).toBe(files.length);
});

// ---- with the payload codec on ----
// test/histories/encrypted/ holds the same paths recorded with encryption on (key test-1, the
// suite's stack); the top-level histories predate encryption.

const encryptedDir = new URL('../histories/encrypted/', import.meta.url);
const encryptedFiles = readdirSync(encryptedDir).filter((f) => f.endsWith('.json'));
const load = (d: URL, file: string) => ({
  workflowId: file.replace(/\.json$/, ''),
  history: temporal.api.history.v1.History.fromObject(JSON.parse(readFileSync(new URL(file, d), 'utf8'))),
});

async function replayAll(histories: ReturnType<typeof load>[], dataConverter: DataConverter | undefined) {
  const failures: string[] = [];
  let replayed = 0;
  for await (const result of Worker.runReplayHistories({ workflowBundle: { codePath: inject('workflowBundlePath') }, dataConverter }, histories)) {
    replayed += 1;
    if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
  }
  return { failures, replayed };
}

/** [where, encoding, key id] of every payload in a proto-JSON value. */
function payloadsIn(value: unknown, path = ''): [string, string, string | undefined][] {
  if (Array.isArray(value)) return value.flatMap((v, i) => payloadsIn(v, `${path}[${i}]`));
  if (!value || typeof value !== 'object') return [];
  const { metadata } = value as { metadata?: Record<string, string> };
  const text = (b64: string | undefined) => (b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString());
  if (metadata && typeof metadata.encoding === 'string') return [[path, text(metadata.encoding)!, text(metadata['encryption-key-id'])]];
  return Object.entries(value).flatMap(([k, v]) => payloadsIn(v, `${path}.${k}`));
}

it('the encrypted histories really are encrypted with key test-1 (search attributes aside)', () => {
  expect(encryptedFiles.length).toBeGreaterThanOrEqual(15);
  for (const file of encryptedFiles) {
    const payloads = payloadsIn(JSON.parse(readFileSync(new URL(file, encryptedDir), 'utf8')));
    const [attributes, others] = [payloads.filter(([p]) => p.includes('searchAttributes')), payloads.filter(([p]) => !p.includes('searchAttributes'))];
    expect(others.length).toBeGreaterThan(0);
    expect(others.filter(([, encoding, keyId]) => encoding !== 'binary/encrypted' || keyId !== 'test-1')).toEqual([]);
    expect(attributes.every(([, encoding]) => encoding === 'json/plain')).toBe(true);
  }
});

it('replays every history with the codec on, after a key rotation: encrypted (key 1) and pre-encryption ones', async () => {
  // test-2 is now current; test-1 still decrypts what was written before the rotation.
  const histories = [...encryptedFiles.map((f) => load(encryptedDir, f)), ...files.map((f) => load(dir, f))];
  const { failures, replayed } = await replayAll(histories, dataConverter(rotatedTestCodec));
  expect(failures).toEqual([]);
  expect(replayed).toBe(encryptedFiles.length + files.length);
});

it('an encrypted history does not replay without its key: a clear error, not garbage', async () => {
  const [history] = encryptedFiles.slice(0, 1).map((f) => load(encryptedDir, f));
  const without = await replayAll([history!], undefined);
  expect(without.failures).toHaveLength(1);
  expect(without.failures[0]).toMatch(/binary\/encrypted/);
  const otherKey = await replayAll([history!], dataConverter(ephemeralEncryption('k-other').codec));
  expect(otherKey.failures).toHaveLength(1);
  // (the message reaches us through the core's debug format, quotes escaped)
  expect(otherKey.failures[0]).toMatch(/payload is encrypted with key id \\?"test-1\\?", which is not loaded \(loaded: k-other\)/);
});

// ---- the pessimistic rules: 2 and 3 (kept for the guards that run them), 4 (today's) ----
// test/histories/rules2/, rules3/ and rules4/ hold every path under GUARD_RULES 2, 3 and 4 (encrypted,
// key test-1), recorded by guard.test.ts and guard-pessimistic.test.ts; the folders above are rules 1.

const rulesDir = (rules: 2 | 3 | 4 | '4-deferred') => new URL(`../histories/rules${rules}/`, import.meta.url);
const rulesFiles = (rules: 2 | 3 | 4 | '4-deferred') => readdirSync(rulesDir(rules)).filter((f) => f.endsWith('.json'));

it.each([2, 3, 4] as const)('replays every rules-%s history: the pessimistic paths too (SENDING, ORPHANED, UNRESOLVED, 404 after a lost 200)', async (rules) => {
  const files = rulesFiles(rules);
  for (const path of ['sending-never-landed', 'orphaned', 'unresolved-promotion', '404-after-lost-200', 'delivered-between-attempts']) {
    expect(files).toContain(`${path}.json`);
  }
  // Rules 3's own paths: a slow provider's SMS found after it settled, a blind resend.
  if (rules >= 3) for (const path of ['twilio-slow-create', 'twilio-maybe-twice']) expect(files).toContain(`${path}.json`);
  const { failures, replayed } = await replayAll(files.map((f) => load(rulesDir(rules), f)), dataConverter(rotatedTestCodec));
  expect(failures).toEqual([]);
  expect(replayed).toBe(files.length);
});

// Rules 4 with deferred starts (GuardClient's deferStart): the same paths, each guard started with a
// start delay until its deadline, recorded by guard.test.ts and guard-pessimistic.test.ts under
// default (RBM_GUARD_TEST_DEFER_START unset).
it('replays every deferred rules-4 history', async () => {
  const files = rulesFiles('4-deferred');
  for (const path of ['delivered', 'revoked', 'read-first', 'cancel', 'extend', 'orphaned', 'twilio-maybe-twice']) expect(files).toContain(`${path}.json`);
  const { failures, replayed } = await replayAll(files.map((f) => load(rulesDir('4-deferred'), f)), dataConverter(rotatedTestCodec));
  expect(failures).toEqual([]);
  expect(replayed).toBe(files.length);
});
