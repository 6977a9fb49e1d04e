// `npm run chaos [-- --n 1000 --seed 1 --provider http|twilio --no-kills --keep]`: the chaos run (see
// ./run.ts) on the simulator's pessimistic defaults; --provider picks the SMS provider (default http).
// Prints the report table and exits 1 on any invariant violation (2 on a bad flag, 3 if the run
// itself could not complete).
import { toolArgs } from '../../config/args.ts';
import { formatReport, runChaos } from './run.ts';

const USAGE = `
npm run chaos -- [--n 1000] [--seed N] [--provider http|twilio] [--no-kills] [--keep] [--quiet]

The chaos run: N messages on the local stack with the simulator's pessimistic faults, worker and
webhook SIGKILLs and a Temporal restart; prints the invariant table. Exit 1 on any violation, 2 on a
bad flag, 3 when the run itself could not complete.
  --n         messages (1-20000, default 1000)
  --seed      the random seed (default: random, printed)
  --provider  the SMS provider the worker uses: http (default) or twilio
  --no-kills  faults only, no SIGKILLs or restarts
  --keep      keep the data folder (SQLite file, child logs) even when clean
  --quiet     no progress lines`;

const { values: flags } = toolArgs('chaos', USAGE, {
  n: { type: 'string', default: '1000' },
  seed: { type: 'string' },
  provider: { type: 'string', default: 'http' },
  'no-kills': { type: 'boolean', default: false },
  keep: { type: 'boolean', default: false },
  quiet: { type: 'boolean', default: false },
});
const n = Number(flags.n);
const seed = flags.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(flags.seed);
if (!Number.isInteger(n) || n < 1 || n > 20_000) usage(`--n must be a whole number from 1 to 20000, not ${flags.n}`);
if (!Number.isInteger(seed) || seed < 0) usage(`--seed must be a non-negative whole number, not ${flags.seed}`);
const provider = flags.provider;
if (provider !== 'http' && provider !== 'twilio') usage(`--provider must be http or twilio, not ${provider}`);

try {
  const report = await runChaos({
    n,
    seed,
    provider,
    kills: !flags['no-kills'],
    keepData: flags.keep,
    progress: flags.quiet ? undefined : (line) => console.log(line),
  });
  console.log(`\n${formatReport(report)}`);
  process.exit(report.violations.length ? 1 : 0);
} catch (err) {
  console.error(`The chaos run could not complete: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(3);
}

function usage(message: string): never {
  console.error(message);
  process.exit(2);
}
