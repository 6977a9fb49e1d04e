// `npm run keygen -- [id]`: prints one new key entry to append to the key list (client/codec.ts
// owns the key format).
import { toolArgs } from '../config/args.ts';
import { generateKeyEntry } from '../client/codec.ts';

const { positionals } = toolArgs(
  'keygen',
  `
npm run keygen -- [id]

Prints one new key entry (id:base64key, 32 random bytes) to append to RBM_GUARD_ENCRYPTION_KEYS or
the key file; the id defaults to k<today>, e.g. k20261203.`,
  {},
  { allowPositionals: true },
);
const id = positionals[0] ?? `k${new Date().toISOString().slice(0, 10).replaceAll('-', '')}`;
try {
  console.log(generateKeyEntry(id));
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
