// Registers our search attributes on a namespace (idempotent). The embedded dev server gets them by
// flag; a self-hosted cluster, the time-skipping test server or a fresh namespace gets them here.
import type { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { SEARCH_ATTRIBUTE_KEYS } from '../workflows/contract.ts';

// @temporalio/proto is CommonJS: Node's ESM loader gives it as a default import only.
const INDEXED = proto.temporal.api.enums.v1.IndexedValueType;
const TYPE: Record<string, proto.temporal.api.enums.v1.IndexedValueType> = {
  KEYWORD: INDEXED.INDEXED_VALUE_TYPE_KEYWORD,
  DATETIME: INDEXED.INDEXED_VALUE_TYPE_DATETIME,
};

export async function registerSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  // The time-skipping test server has no ListSearchAttributes; there, add them all.
  const existing = await connection.operatorService.listSearchAttributes({ namespace }).catch(() => undefined);
  const missing = SEARCH_ATTRIBUTE_KEYS.filter((k) => !(k.name in (existing?.customAttributes ?? {})));
  if (!missing.length) return;
  const searchAttributes = Object.fromEntries(
    missing.map((k) => {
      const type = TYPE[k.type];
      if (type === undefined) throw new Error(`no indexed type for search attribute ${k.name} (${k.type})`);
      return [k.name, type];
    }),
  );
  await connection.operatorService.addSearchAttributes({ namespace, searchAttributes });
}
