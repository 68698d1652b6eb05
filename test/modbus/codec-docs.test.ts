// docs/modbus-codec.md stays true: its console example and both tables are checked here.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { PointDef, WordOrder } from '../../src/config/profile-types.js';
import { decodeTable } from '../../src/cli/decode.js';
import { decodePoint, encodePoint } from '../../src/modbus/codec.js';

const doc = readFileSync(new URL('../../docs/modbus-codec.md', import.meta.url), 'utf8');
const hex = (cell: string): number[] => [...cell.matchAll(/0x[0-9A-Fa-f]{4}|\b\d+\b/g)].map((m) => Number(m[0]));

describe('docs/modbus-codec.md', () => {
  it('the decode console example is the real output', () => {
    const block = /```console\n\$ ems-gateway decode (.*)\n([\s\S]*?)```/.exec(doc);
    expect(block).not.toBeNull();
    expect(decodeTable((block?.[1] ?? '').split(' '))).toBe(block?.[2]);
  });

  it('the order table: float32 12.5 in each order', () => {
    const rows = [...doc.matchAll(/^\| (ABCD|CDAB|BADC|DCBA)\s+\| `([^`]+)`/gm)];
    expect(rows).toHaveLength(4);
    for (const [, order, words] of rows) {
      const p: PointDef = { id: 'x', table: 'holding', address: 0, type: 'float32', order: order as WordOrder };
      expect(decodePoint({ default_order: 'ABCD' }, p, Uint16Array.from(hex(words ?? '')), 0)).toMatchObject({ ok: true, value: 12.5 });
    }
  });

  it('the encode table', () => {
    const cases: [string, PointDef, number | undefined][] = [
      ['uint16, `scale_factor`, sf = -1', { id: 'a', table: 'holding', address: 0, type: 'uint16', scale_factor: 'sf' }, -1],
      ['int16, scale 0.1, offset -40', { id: 'b', table: 'holding', address: 0, type: 'int16', scale: 0.1, offset: -40 }, undefined],
      ['int32 ABCD', { id: 'c', table: 'holding', address: 0, type: 'int32', order: 'ABCD' }, undefined],
      ['int32 CDAB', { id: 'd', table: 'holding', address: 0, type: 'int32', order: 'CDAB' }, undefined],
      ['float32 DCBA', { id: 'e', table: 'holding', address: 0, type: 'float32', order: 'DCBA' }, undefined],
    ];
    for (const [label, point, sf] of cases) {
      const row = doc.split('\n').find((l) => l.startsWith(`| ${label} |`));
      expect(row, label).toBeDefined();
      const [, , value, words] = (row ?? '').split('|').map((c) => c.trim());
      expect(Array.from(encodePoint({ default_order: 'ABCD' }, point, Number(value), sf)), label).toEqual(hex(words ?? ''));
    }
  });
});
