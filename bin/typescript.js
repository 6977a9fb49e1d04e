// How this project's .ts files run, in one place: Node's own type stripping where Node has it
// (≥ 22.18, or 22.6+ with --experimental-strip-types; the sources are erasableSyntaxOnly), tsx's
// ESM loader on older Nodes. Node's compile cache (22.1+) keeps compiled and stripped code across
// runs, so a command started again and again does not pay for it twice.
import module from 'node:module';

export async function enableTypeScript() {
  module.enableCompileCache?.();
  if (process.features.typescript) return;
  const { register } = await import('tsx/esm/api');
  register();
}
