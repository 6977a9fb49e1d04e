// Flags for every runnable tool (bench, chaos, demo, contract, keygen, `npm start`): node:util's
// parseArgs, answered the same way everywhere — --help (or -h) prints the usage and exits 0; an
// unknown or malformed flag is one line on stderr naming it, and exit 2; never a stack trace.
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

export function toolArgs<const O extends Options, const P extends boolean = false>(
  tool: string,
  usage: string,
  options: O,
  config: { allowPositionals?: P; args?: string[] } = {},
) {
  const args = config.args ?? process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${usage.trim()}\n`);
    process.exit(0);
  }
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: (config.allowPositionals ?? false) as P });
  } catch (err) {
    // parseArgs names the flag ("Unknown option '--bogus'"); its hint about '--' is not ours.
    const message = (err instanceof Error ? err.message : String(err)).split('. ')[0]!.replace(/\.$/, '');
    process.stderr.write(`${tool}: ${message}; see --help\n`);
    process.exit(2);
  }
}
