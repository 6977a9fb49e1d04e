// Replay fixtures: a test file records the histories of the guards it names when
// RBM_GUARD_RECORD_HISTORIES is set (`=1`: encrypted with the test key, `=plain`: without).
import { mkdirSync, writeFileSync } from 'node:fs';
import type { Client } from '@temporalio/client';

export const recordMode = process.env.RBM_GUARD_RECORD_HISTORIES;

export class HistoryRecorder {
  private readonly recorded: { name: string; workflowId: string }[] = [];
  private readonly folder: URL;
  constructor(folder: URL) {
    this.folder = folder;
  }

  add(name: string, workflowId: string): void {
    this.recorded.push({ name, workflowId });
  }

  async save(client: Client): Promise<void> {
    if (recordMode !== '1' && recordMode !== 'plain') return;
    mkdirSync(this.folder, { recursive: true });
    for (const { name, workflowId } of this.recorded) {
      const history = await client.workflow.getHandle(workflowId).fetchHistory();
      writeFileSync(new URL(`${name}.json`, this.folder), JSON.stringify(history));
    }
  }
}
