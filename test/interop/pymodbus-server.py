#!/usr/bin/python3
"""An independent Modbus TCP server (pymodbus 3.0, Debian python3-pymodbus) for interop tests.

Usage: /usr/bin/python3 pymodbus-server.py PORT
Serves unit 1 on 127.0.0.1:PORT with the register map below and prints "ready PORT" once listening.
The expected decoded values live in test/interop/pymodbus.test.ts; keep both in step.
"""
import asyncio
import struct
import sys

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.server.async_io import StartAsyncTcpServer


def words_abcd(fmt, value):
    b = struct.pack('>' + fmt, value)
    return [int.from_bytes(b[i:i + 2], 'big') for i in range(0, len(b), 2)]


def reorder(words, order):
    """ABCD words -> the given order (named by where bytes A..D land, as in the profile format)."""
    if order == 'ABCD':
        return list(words)
    if order == 'CDAB':
        return list(reversed(words))
    swapped = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    if order == 'BADC':
        return swapped
    if order == 'DCBA':
        return list(reversed(swapped))
    raise ValueError(order)


def holding_map():
    regs = [0] * 40
    def put(addr, words):
        regs[addr:addr + len(words)] = words
    put(0, reorder(words_abcd('f', 1234.5), 'ABCD'))
    put(2, reorder(words_abcd('f', -50.25), 'CDAB'))
    put(4, reorder(words_abcd('f', 3.14159), 'BADC'))
    put(6, reorder(words_abcd('f', 6.5e6), 'DCBA'))
    put(8, words_abcd('i', -123456))                 # int32 ABCD
    put(10, [4321])                                  # uint16, scale 0.1 -> 432.1
    put(11, [2345])                                  # int16 with scale factor at 12 -> 23.45
    put(12, words_abcd('h', -2))                     # the scale factor: -2
    put(13, [0x8000])                                # int16 "not implemented"
    put(14, [0xFFFF])                                # uint16 "not implemented"
    put(15, words_abcd('f', float('nan')))           # float32 NaN
    put(17, [0x8000, 0x0000])                        # int32 "not implemented"
    put(19, words_abcd('i', 70000)[::-1])            # int32 CDAB 70000
    put(21, words_abcd('H', 0xFFFE))                 # uint16 65534: just below the sentinel
    return regs


async def main(port):
    # pymodbus 3.0 data blocks are 1-based unless zero_mode: wire address 0 reads block address 1,
    # so each block starts at 1 and the lists above are indexed by wire address.
    unit = ModbusSlaveContext(
        hr=ModbusSequentialDataBlock(1, holding_map()),
        ir=ModbusSequentialDataBlock(1, [500, 6001] + [0] * 8),   # input 1: 60.01 Hz (scale 0.01)
        co=ModbusSequentialDataBlock(1, [0] * 16),
        di=ModbusSequentialDataBlock(1, [1, 0, 1] + [0] * 13),
    )
    context = ModbusServerContext(slaves={1: unit}, single=False)
    server = await StartAsyncTcpServer(context=context, address=('127.0.0.1', port), defer_start=True)
    task = asyncio.ensure_future(server.serve_forever())
    await server.serving
    print(f'ready {port}', flush=True)
    await task


if __name__ == '__main__':
    asyncio.run(main(int(sys.argv[1])))
