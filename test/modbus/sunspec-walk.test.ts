// The chain walk on its own, against register maps a device could answer with: where the marker
// is tried and in which order, the walk's bounds (64 models, the register space), a device
// without an end marker, nothing SunSpec anywhere, and a timeout (retried, not a mismatch).
import { describe, expect, it } from 'vitest';
import { discoverChain, MAX_MODELS } from '../../src/modbus/sunspec-discovery.js';
import { ModbusError, type ModbusEndpointClient, type ReadRequest } from '../../src/modbus/types.js';

/** A device as a sparse register map; reads outside [lo, hi) are refused with exception 2. */
function device(regs: Map<number, number>, lo: number, hi: number, opts: { timeoutAt?: number } = {}): { ep: ModbusEndpointClient; reads: ReadRequest[] } {
  const reads: ReadRequest[] = [];
  const ep = {
    key: 'fake:502', connected: true,
    read: async (req: ReadRequest) => {
      reads.push(req);
      if (opts.timeoutAt !== undefined && req.address <= opts.timeoutAt && opts.timeoutAt < req.address + req.count) throw new ModbusError('timeout', 'timeout');
      if (req.address < lo || req.address + req.count > hi) throw new ModbusError('exception_illegal_address', 'exception 2');
      return Uint16Array.from({ length: req.count }, (_, i) => regs.get(req.address + i) ?? 0);
    },
    write: async () => { throw new Error('never written'); },
    onConnect: () => () => {},
    close: async () => {},
  } as unknown as ModbusEndpointClient;
  return { ep, reads };
}

function chain(base: number, models: Array<[number, number]>, end = true): Map<number, number> {
  const m = new Map<number, number>([[base, 0x5375], [base + 1, 0x6e53]]);
  let at = base + 2;
  for (const [id, len] of models) {
    m.set(at, id);
    m.set(at + 1, len);
    at += 2 + len;
  }
  if (end) { m.set(at, 0xffff); m.set(at + 1, 0); }
  return m;
}

const target = (ep: ModbusEndpointClient): { deviceId: string; unitId: number; endpoint: ModbusEndpointClient; timeoutMs: number } => ({ deviceId: 'd', unitId: 1, endpoint: ep, timeoutMs: 100 });

describe('SunSpec chain walk', () => {
  it('tries 40000, 50000, 0 in turn and walks the chain found (one header read per model)', async () => {
    const { ep, reads } = device(chain(0, [[1, 66], [103, 50]]), 0, 200);
    const out = await discoverChain(target(ep));
    expect(out).toEqual({ status: 'ok', chain: { base: 0, end: 'end_marker', models: [{ id: 1, start: 2, length: 66 }, { id: 103, start: 70, length: 50 }] } });
    expect(reads.map((r) => [r.address, r.count])).toEqual([[40000, 4], [40001, 2], [50000, 4], [50001, 2], [0, 4], [70, 2], [122, 2]]);
  });

  it('the profile base first', async () => {
    const { ep, reads } = device(chain(50000, [[1, 65]]), 50000, 50100);
    const out = await discoverChain(target(ep), 50000);
    expect(out.status === 'ok' && out.chain.models).toEqual([{ id: 1, start: 50002, length: 65 }]);
    expect(reads[0]).toMatchObject({ address: 50000, count: 4 });
  });

  it(`stops after ${MAX_MODELS} models, and at the end of the register space`, async () => {
    const many = device(chain(40000, Array.from({ length: 100 }, (): [number, number] => [64001, 0])), 40000, 40300);
    const a = await discoverChain(target(many.ep));
    expect(a.status === 'ok' && [a.chain.models.length, a.chain.end]).toEqual([MAX_MODELS, 'model_limit']);
    expect(many.reads.length).toBeLessThanOrEqual(MAX_MODELS + 2);
    const huge = device(chain(40000, [[1, 66], [103, 60000]]), 40000, 40100);
    const b = await discoverChain(target(huge.ep));
    expect(b.status === 'ok' && [b.chain.models.map((m) => m.id), b.chain.end]).toEqual([[1], 'address_space']);
  });

  it('a device without the end marker that refuses the read after its last model: the chain ends there', async () => {
    const { ep } = device(chain(40000, [[1, 66], [103, 50]], false), 40000, 40122);
    const out = await discoverChain(target(ep));
    expect(out.status === 'ok' && [out.chain.models.map((m) => m.id), out.chain.end]).toEqual([[1, 103], 'refused']);
  });

  it('nothing SunSpec anywhere: identity_mismatch naming what each candidate held', async () => {
    const { ep } = device(new Map([[40000, 0x1234]]), 0, 60000);
    const out = await discoverChain(target(ep));
    expect(out.status).toBe('mismatch');
    if (out.status !== 'mismatch') return;
    expect(out.error.code).toBe('identity_mismatch');
    expect(out.error.message).toMatch(/not found \(read 40000: 0x1234 0x0000; 50000: 0x0000 0x0000; 0: 0x0000 0x0000\); .*does not answer as a SunSpec device/);
  });

  it('a timeout is a failed read (retried next cycle), not a mismatch', async () => {
    const { ep } = device(chain(40000, [[1, 66], [103, 50]]), 40000, 40200, { timeoutAt: 40070 });
    const out = await discoverChain(target(ep));
    expect(out.status === 'read_failed' && out.error.code).toBe('timeout');
  });
});
