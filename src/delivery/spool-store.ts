// The spool's storage: LMDB through the `lmdb` package (docs/delivery.md says why LMDB and with
// which figures). One environment, two databases: `entries` (sequence number of an entry's first
// record -> the encoded batch) and `meta` (head sequence, sink positions, cumulative totals).
// Writes issued in the same event turn are committed by lmdb's writer thread in one transaction,
// fsynced before their promises resolve (overlappingSync off): group commit, off the event loop.
import { mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';

interface StoredEntry {
  key: number;
  value: Uint8Array;
}

/** What the spool needs from a store; writes issued together (same turn) commit together. */
export interface SpoolStore {
  putEntry(key: number, value: Uint8Array): Promise<unknown>;
  removeEntry(key: number): Promise<unknown>;
  putMeta(key: string, value: unknown): Promise<unknown>;
  removeMeta(key: string): Promise<unknown>;
  getEntry(key: number): Uint8Array | undefined;
  getMeta(key: string): unknown;
  metaKeys(): string[];
  /** Every entry in key order (used once, at open, to rebuild the in-memory index). */
  entries(): Iterable<StoredEntry>;
  close(): Promise<void>;
}

export class LmdbSpoolStore implements SpoolStore {
  private readonly root: RootDatabase;
  private readonly entryDb: Database<Uint8Array, number>;
  private readonly metaDb: Database<unknown, string>;

  constructor(directory: string) {
    mkdirSync(directory, { recursive: true });
    // overlappingSync resolves a write at commit, before the fsync: the PUBACK would then precede
    // durability. Off, each commit is fsynced by the writer thread before the promise resolves.
    this.root = open({ path: directory, overlappingSync: false, compression: false, maxDbs: 4 });
    this.entryDb = this.root.openDB<Uint8Array, number>('entries', { encoding: 'binary' });
    this.metaDb = this.root.openDB<unknown, string>('meta', { encoding: 'msgpack' });
  }

  putEntry(key: number, value: Uint8Array): Promise<unknown> { return this.entryDb.put(key, value); }
  removeEntry(key: number): Promise<unknown> { return this.entryDb.remove(key); }
  putMeta(key: string, value: unknown): Promise<unknown> { return this.metaDb.put(key, value); }
  removeMeta(key: string): Promise<unknown> { return this.metaDb.remove(key); }
  getEntry(key: number): Uint8Array | undefined { return this.entryDb.getBinary(key) ?? undefined; }
  getMeta(key: string): unknown { return this.metaDb.get(key); }
  metaKeys(): string[] { return [...this.metaDb.getKeys()]; }

  *entries(): Iterable<StoredEntry> {
    for (const { key, value } of this.entryDb.getRange({})) yield { key, value };
  }

  async close(): Promise<void> {
    await this.root.flushed;
    await this.root.close();
  }
}

/** ENOSPC, EDQUOT or LMDB's MDB_MAP_FULL: the disk (or the map) is full, not the spool broken. */
export function isDiskFull(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  const text = `${String(e?.code ?? '')} ${String(e?.message ?? '')}`;
  return /ENOSPC|EDQUOT|MDB_MAP_FULL|No space left|Quota exceeded|-30792/.test(text);
}
