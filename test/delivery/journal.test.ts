// The spool's dedupe journal: one entry per batch committed with it, the last `journalBatches`
// kept (older ones deleted in the same commits), the same after the spool is opened again; the
// encoding gives back each reading's meter id, timestamp, kwh and arrival exactly.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Spool } from '../../src/delivery/spool.js';
import { LmdbSpoolStore } from '../../src/delivery/spool-store.js';
import { decodeJournal, encodeJournal } from '../../src/meters/dedupe-journal.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { seededReadings } from './fixture.js';

describe('dedupe journal', () => {
  const dirs: string[] = [];
  afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

  const open = (dir: string): Spool => Spool.open(new LmdbSpoolStore(dir), {
    maxBytes: 1 << 26, maxAgeMs: 86_400_000, policy: 'backpressure', sinks: [], clock: systemClock, logger: silentLogger(), journalBatches: 3,
  });
  const decode = (entry: Uint8Array): Array<[string, number, number, number]> => {
    const out: Array<[string, number, number, number]> = [];
    decodeJournal(entry, (id, ts, kwh, at) => out.push([id, ts, kwh, at]));
    return out;
  };

  it('keeps the last journalBatches entries, committed with their batches, across a reopen', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ems-journal-'));
    dirs.push(dir);
    const readings = seededReadings(50).map((r, i) => ({ ...r, meter_id: i % 5 === 0 ? `zähler-${i}` : r.meter_id }));
    const batches = [0, 10, 20, 30, 40].map((s) => readings.slice(s, s + 10));
    let spool = open(dir);
    for (const b of batches) await spool.append([], { ingested: new Map([['north', b.length]]), dropped: new Map() }, encodeJournal(b, 1000));
    const expected = batches.slice(2).map((b) => b.map((r) => [r.meter_id, r.timestamp_ms, r.kwh, r.arrived_at + 1000]));
    expect(spool.journalEntries().map(decode)).toEqual(expected);
    await spool.close();
    spool = open(dir);
    expect(spool.journalEntries().map(decode)).toEqual(expected);
    expect(spool.totalsSnapshot().ingested).toEqual({ north: 50 });
    // A further batch pushes the oldest one out, the numbering goes on after the reopen.
    await spool.append([], { ingested: new Map(), dropped: new Map() }, encodeJournal(readings.slice(0, 1), 0));
    expect(spool.journalEntries().map(decode)).toEqual([...expected.slice(1), [[readings[0]?.meter_id, readings[0]?.timestamp_ms, readings[0]?.kwh, readings[0]?.arrived_at]]]);
    await spool.close();
  });

  it('a truncated entry gives back its whole readings and stops', () => {
    const readings = seededReadings(3);
    const entry = encodeJournal(readings, 0);
    expect(decodeJournal(entry.subarray(0, entry.length - 5), () => undefined)).toBe(2);
  });
});
