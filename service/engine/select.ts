// Which Temporal engine a local run starts (RBM_GUARD_ENGINE, validated by the config module).
import { ConfigError, envSchema } from '../../config/index.ts';

export type EngineName = 'dev' | 'postgres';

export function engineFromEnv(env: Record<string, string | undefined> = process.env): EngineName {
  const parsed = envSchema.shape.RBM_GUARD_ENGINE.safeParse(env.RBM_GUARD_ENGINE);
  if (!parsed.success) throw new ConfigError([{ variable: 'RBM_GUARD_ENGINE', message: "expected 'dev' or 'postgres'" }]);
  return parsed.data;
}
