// SunSpec discovery at connect: find the 'SunS' marker (the profile's sunspec_base first, then
// 40000, 50000 and 0), then walk the model chain header by header (ID, L) until the 0xFFFF end
// marker, and keep each model's block start. The walk is bounded (MAX_MODELS headers, the
// 65536-register address space); a device that refuses the read after its last model (no end
// marker) ends the chain there. A marker one register off is the address-base error
// identity-check.ts reports for fixed-address profiles, and is reported the same way here.
import type { Logger } from '../runtime/logger.js';
import type { SunSpecBlock, SunSpecChain } from './sunspec-layout.js';
import { ModbusError, type ModbusErrorType, type RegisterReader } from './types.js';

/** Whom discovery reads from: reads only (the poller's endpoint, or a read-only view for probe and scan). */
interface DiscoveryTarget {
  deviceId: string;
  unitId: number;
  endpoint: RegisterReader;
  timeoutMs: number;
}

/** Where SunSpec devices put the marker, in the order they are tried. */
const SUNSPEC_BASES: readonly number[] = [40000, 50000, 0];
/** More model headers than this is not a chain but a device answering anything. */
export const MAX_MODELS = 64;
const END_MARKER = 0xffff;
const SUNS: readonly [number, number] = [0x5375, 0x6e53];

const REFUSED: ReadonlySet<ModbusErrorType> = new Set(['exception_illegal_function', 'exception_illegal_address', 'exception_illegal_value']);

type DiscoveryOutcome =
  | { status: 'ok'; chain: SunSpecChain }
  | { status: 'mismatch'; error: ModbusError; fields: Record<string, unknown> }
  | { status: 'read_failed'; error: ModbusError };

const asModbusError = (e: unknown, device: string): ModbusError =>
  (e instanceof ModbusError ? e : new ModbusError('exception_other', String(e), { device }));

/** The wire addresses tried for the marker: `preferred` (the profile's) first, then SUNSPEC_BASES. */
function markerCandidates(preferred: number | undefined): number[] {
  return [...new Set([...(preferred === undefined ? [] : [preferred]), ...SUNSPEC_BASES])].filter((b) => b >= 0 && b + 4 <= 0x10000);
}

/** Finds the marker and walks the chain through the device's endpoint. Never rejects. */
export async function discoverChain(t: DiscoveryTarget, preferred?: number): Promise<DiscoveryOutcome> {
  const read = (address: number, count: number): Promise<Uint16Array | Uint8Array> =>
    t.endpoint.read({ unitId: t.unitId, table: 'holding', address, count }, { deviceId: t.deviceId, timeoutMs: t.timeoutMs });
  const tried: string[] = [];
  let offByOne: { expected: number; found: number } | undefined;
  let base: number | undefined;
  let first: [number, number] | undefined;
  for (const b of markerCandidates(preferred)) {
    let words: Uint16Array | Uint8Array;
    try {
      words = await read(b, 4);
    } catch (e) {
      const err = asModbusError(e, t.deviceId);
      if (!REFUSED.has(err.code)) return { status: 'read_failed', error: err };
      tried.push(`${b}: refused (${err.code})`);
      // A device that counts from 1 refuses the register before its map: is 'SunS' one register later?
      if (offByOne === undefined && b + 3 <= 0x10000) {
        try {
          const next = await read(b + 1, 2);
          if (next[0] === SUNS[0] && next[1] === SUNS[1]) offByOne = { expected: b, found: b + 1 };
        } catch (e2) {
          const err2 = asModbusError(e2, t.deviceId);
          if (!REFUSED.has(err2.code)) return { status: 'read_failed', error: err2 };
        }
      }
      continue;
    }
    if (words[0] === SUNS[0] && words[1] === SUNS[1]) {
      base = b;
      first = [words[2] ?? 0, words[3] ?? 0];
      break;
    }
    const hex = Array.from(words.subarray(0, 2), (w) => `0x${w.toString(16).padStart(4, '0')}`).join(' ');
    tried.push(`${b}: ${hex}`);
    // 'SunS' one register later, or its second half first: the device counts from the other base.
    if (offByOne === undefined && words[1] === SUNS[0] && words[2] === SUNS[1]) offByOne = { expected: b, found: b + 1 };
    else if (offByOne === undefined && words[0] === SUNS[1] && b > 0) offByOne = { expected: b, found: b - 1 };
  }
  if (base === undefined || first === undefined) {
    const where = `${t.deviceId} (unit ${t.unitId}) at ${t.endpoint.key}`;
    const hint = offByOne === undefined
      ? 'the device does not answer as a SunSpec device at 40000, 50000 or 0: check the unit id, and that it speaks SunSpec'
      : `'SunS' is at wire address ${offByOne.found}, 1 register ${offByOne.found > offByOne.expected ? 'after' : 'before'} ${offByOne.expected}: the address base is off (check address_base 0 vs 1, sunspec_base)`;
    const fields: Record<string, unknown> = {
      error_type: 'identity_mismatch', endpoint: t.endpoint.key, unit_id: t.unitId, tried: tried.join('; '), hint,
      ...(offByOne === undefined ? {} : { found_at_wire_address: offByOne.found }),
    };
    const message = `${where}: SunSpec marker 'SunS' not found (read ${tried.join('; ')}); ${hint}`;
    return { status: 'mismatch', error: new ModbusError('identity_mismatch', message, { device: t.deviceId }), fields };
  }
  return walk(read, base, first, t.deviceId);
}

async function walk(
  read: (address: number, count: number) => Promise<Uint16Array | Uint8Array>, base: number, first: [number, number], device: string,
): Promise<DiscoveryOutcome> {
  const models: SunSpecBlock[] = [];
  let at = base + 2;
  let header: [number, number] | undefined = first;
  for (;;) {
    if (header === undefined) {
      if (at + 2 > 0x10000) return { status: 'ok', chain: { base, models, end: 'address_space' } };
      try {
        const w = await read(at, 2);
        header = [w[0] ?? END_MARKER, w[1] ?? 0];
      } catch (e) {
        const err = asModbusError(e, device);
        if (REFUSED.has(err.code)) return { status: 'ok', chain: { base, models, end: 'refused' } };
        return { status: 'read_failed', error: err };
      }
    }
    const [id, length] = header;
    header = undefined;
    if (id === END_MARKER) return { status: 'ok', chain: { base, models, end: 'end_marker' } };
    if (models.length >= MAX_MODELS) return { status: 'ok', chain: { base, models, end: 'model_limit' } };
    if (at + 2 + length > 0x10000) return { status: 'ok', chain: { base, models, end: 'address_space' } };
    models.push({ id, start: at, length });
    at += 2 + length;
  }
}

/** The way a chain ended, when it is worth a log line (not the end marker). */
export function logChainEnd(log: Logger, chain: SunSpecChain): void {
  if (chain.end === 'end_marker') return;
  const why = chain.end === 'refused' ? 'the device refused the read after the last model (no 0xFFFF end marker)'
    : chain.end === 'model_limit' ? `more than ${MAX_MODELS} models: the walk stopped there`
      : 'the chain runs to the end of the register space';
  log.warn({ sunspec_base: chain.base, models: chain.models.length, end: chain.end }, `SunSpec chain: ${why}`);
}
