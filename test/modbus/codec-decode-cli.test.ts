import { describe, expect, it } from 'vitest';
import { decodeTable, parseRegister } from '../../src/cli/decode.js';

describe('ems-gateway decode', () => {
  it('shows float32 0x4148 0x0000 in all four orders (ABCD = 12.5)', () => {
    const out = decodeTable(['--type', 'float32', '0x4148', '0x0000']);
    expect(typeof out).toBe('string');
    const line = (out as string).split('\n').find((l) => l.startsWith('float32'));
    expect(line?.split(/\s+/).slice(0, 4)).toEqual(['float32', '12.5', String(Buffer.from('00004148', 'hex').readFloatBE(0)), '197632']);
  });

  it('without --type prints every type that fits the registers', () => {
    const out = decodeTable(['65535', '0xfffe']) as string;
    const types = out.split('\n').slice(2).filter(Boolean).map((l) => l.split(/\s+/)[0]);
    expect(types).toEqual(['int16', 'uint16', 'int32', 'uint32', 'float32']);
    expect(out).toMatch(/^int32\s+-2\s+/m); // 0xffff 0xfffe ABCD
  });

  it('prints 64-bit integers exactly, beyond 2^53', () => {
    const out = decodeTable(['--type', 'uint64', '0x8000', '0', '0', '1']) as string;
    expect(out).toMatch(/^uint64\s+9223372036854775809\s+/m);
  });

  it('rejects bad input with a message, never a throw', () => {
    expect(decodeTable([])).toEqual({ error: 'no registers given' });
    expect(decodeTable(['0x12345'])).toMatchObject({ error: expect.stringMatching(/not a 16-bit register/) });
    expect(decodeTable(['--type', 'float64', '1', '2'])).toMatchObject({ error: 'float64 needs 4 registers, got 2' });
    expect(decodeTable(['--type', 'double', '1'])).toMatchObject({ error: expect.stringMatching(/unknown --type/) });
    expect(parseRegister('70000')).toBeUndefined();
    expect(parseRegister('0xABCD')).toBe(0xabcd);
  });
});
