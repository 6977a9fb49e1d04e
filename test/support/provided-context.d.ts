// What the global setup provides to every test file through vitest's inject().
import 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    workflowBundlePath: string;
    /** The bench's bundle: the guard plus the floor workflows. */
    benchBundlePath: string;
  }
}
