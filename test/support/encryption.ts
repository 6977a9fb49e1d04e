// The test suite's encryption keys. TEST KEYS ONLY: committed so the recorded encrypted histories
// (test/histories/encrypted/) can be replayed; never use them outside tests.
// `test-1` is what the suite's stacks encrypt with; `test-2` is the key a rotation moves to.
import { parseEncryptionKeys } from '../../config/index.ts';
import { dataConverter, EncryptionCodec } from '../../client/codec.ts';

export const TEST_KEY_1 = 'test-1:kSuLuv8FJQNjSPi0F4RY7d1r518lNfhDtqCcU8mu/Hs=';
export const TEST_KEY_2 = 'test-2:tqdKRgUjYNnnmU343DyavkjlRSyr3Lll22R61kTvY4w=';

/** The env a process needs to share the suite's key ring (spread it into a config's env). */
export const TEST_ENCRYPTION_ENV = { RBM_GUARD_ENCRYPTION_KEYS: TEST_KEY_1 } as const;

/** The suite's codec: encrypts with test-1. */
export const testCodec = new EncryptionCodec(parseEncryptionKeys(TEST_KEY_1, 'test'));
/** After a rotation: test-2 encrypts, test-1 still decrypts. */
export const rotatedTestCodec = new EncryptionCodec(parseEncryptionKeys(`${TEST_KEY_1},${TEST_KEY_2}`, 'test'));

export const testDataConverter = dataConverter(testCodec);
