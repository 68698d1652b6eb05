#!/usr/bin/python3
"""SunSpec devices laid out unlike the team simulator, served by pymodbus 3.0 (Debian python3-pymodbus).

Usage: /usr/bin/python3 pymodbus-sunspec-server.py SPEC.json
SPEC.json: {"devices": [{"port": P, "base": 40000, "models": [{"id": 1, "length": 65, "points": [[offset, kind, value, size?], ...]}]}]}
Each device gets its own Modbus TCP server on 127.0.0.1:port, unit 1. The register map is built
here, independently of the gateway's codec: the 'SunS' marker at `base`, each model's ID and L
registers, its points at `offset` from the ID register (kinds u16, i16, u32, i32, f32, str with
`size` registers), anything else 0, and the 0xFFFF end marker (L 0) after the last model.
Prints "ready" once every server is up. pymodbus 3.0 API as in pymodbus-server.py.
"""
import asyncio
import json
import struct
import sys

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.framer.socket_framer import ModbusSocketFramer
from pymodbus.server.async_io import StartAsyncTcpServer


def words(fmt, value):
    b = struct.pack('>' + fmt, value)
    return [int.from_bytes(b[i:i + 2], 'big') for i in range(0, len(b), 2)]


def encode(kind, value, size):
    if kind == 'u16':
        return words('H', value)
    if kind == 'i16':
        return words('h', value)
    if kind == 'u32':
        return words('I', value)
    if kind == 'i32':
        return words('i', value)
    if kind == 'f32':
        return words('f', value)
    if kind == 'str':
        raw = value.encode('ascii').ljust(size * 2, b'\0')[:size * 2]
        return [int.from_bytes(raw[i:i + 2], 'big') for i in range(0, len(raw), 2)]
    raise ValueError(kind)


def register_map(dev):
    base = dev['base']
    end = base + 2 + sum(2 + m['length'] for m in dev['models']) + 2
    regs = [0] * end
    regs[base:base + 2] = [0x5375, 0x6E53]  # 'SunS'
    at = base + 2
    for m in dev['models']:
        regs[at] = m['id']
        regs[at + 1] = m['length']
        for p in m.get('points', []):
            offset, kind, value = p[0], p[1], p[2]
            size = p[3] if len(p) > 3 else 0
            w = encode(kind, value, size)
            if offset + len(w) > m['length'] + 2:
                raise ValueError(f"model {m['id']}: offset {offset} past its length {m['length']}")
            regs[at + offset:at + offset + len(w)] = w
        at += 2 + m['length']
    regs[at] = 0xFFFF
    regs[at + 1] = 0
    return regs


async def start(dev):
    # pymodbus 3.0 blocks are 1-based unless zero_mode: wire address 0 is block address 1.
    unit = ModbusSlaveContext(hr=ModbusSequentialDataBlock(1, register_map(dev)))
    context = ModbusServerContext(slaves={1: unit}, single=False)
    server = await StartAsyncTcpServer(context=context, address=('127.0.0.1', dev['port']), framer=ModbusSocketFramer, defer_start=True)
    task = asyncio.ensure_future(server.serve_forever())
    await server.serving
    return task


async def main(path):
    with open(path, encoding='utf-8') as f:
        spec = json.load(f)
    tasks = [await start(d) for d in spec['devices']]
    print('ready', flush=True)
    await asyncio.gather(*tasks)


if __name__ == '__main__':
    asyncio.run(main(sys.argv[1]))
