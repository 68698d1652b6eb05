#!/usr/bin/python3
"""An independent Modbus server (pymodbus 3.0, Debian python3-pymodbus) for interop tests.

Usage: /usr/bin/python3 pymodbus-server.py SPEC [SPEC ...]
  PORT or tcp:PORT          Modbus TCP on 127.0.0.1:PORT
  rtu-tcp:PORT              raw RTU frames over TCP on 127.0.0.1:PORT (a serial device server)
  rtu-serial:PATH:BAUD:PAR  Modbus RTU on the serial port PATH (e.g. a socat pty), parity N, E or O
Each SPEC may end with @UNITS (comma-separated unit ids, default 1); every unit serves the same
register map below. Prints "ready SPEC ..." once every server is up (for a bare PORT: "ready PORT").
The expected decoded values live in test/interop/pymodbus-fixture.ts; keep both in step.

pymodbus 3.0 API used (pymodbus/server/async_io.py): StartAsyncTcpServer(context, address, framer,
defer_start=True) returns a ModbusTcpServer whose serve_forever() runs it; StartAsyncSerialServer
(context, framer, port, baudrate, parity, stopbits, bytesize, defer_start=True) returns a
ModbusSerialServer whose start() opens the port (its framer defaults to ASCII: RTU is passed).
A request for a unit that is not in the context gets no answer (the RTU framer drops it).
"""
import asyncio
import struct
import sys

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.framer.rtu_framer import ModbusRtuFramer
from pymodbus.framer.socket_framer import ModbusSocketFramer
from pymodbus.server.async_io import StartAsyncSerialServer, StartAsyncTcpServer


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
    put(23, [4])                                     # SunSpec St (enum16): 4 = MPPT
    put(24, [37])                                    # alarm bit field: bits 0, 2, 5 = COMMS, OVER_TEMP_WARNING, ISOLATION
    put(25, reorder(words_abcd('f', 62.0), 'CDAB'))  # a state of charge, 62 %, CDAB (read as ABCD: 2.39e-41)
    return regs


def unit_context():
    # pymodbus 3.0 data blocks are 1-based unless zero_mode: wire address 0 reads block address 1,
    # so each block starts at 1 and the lists above are indexed by wire address.
    return ModbusSlaveContext(
        hr=ModbusSequentialDataBlock(1, holding_map()),
        ir=ModbusSequentialDataBlock(1, [500, 6001] + [0] * 8),   # input 1: 60.01 Hz (scale 0.01)
        co=ModbusSequentialDataBlock(1, [0] * 16),
        di=ModbusSequentialDataBlock(1, [1, 0, 1] + [0] * 13),
    )


async def start(spec):
    body, _, units = spec.partition('@')
    unit_ids = [int(u) for u in units.split(',')] if units else [1]
    context = ModbusServerContext(slaves={u: unit_context() for u in unit_ids}, single=False)
    if body.isdigit() or body.startswith('tcp:') or body.startswith('rtu-tcp:'):
        port = int(body.rsplit(':', 1)[-1])
        framer = ModbusRtuFramer if body.startswith('rtu-tcp:') else ModbusSocketFramer
        server = await StartAsyncTcpServer(context=context, address=('127.0.0.1', port), framer=framer, defer_start=True)
        task = asyncio.ensure_future(server.serve_forever())
        await server.serving
        return task
    if body.startswith('rtu-serial:'):
        _, path, baud, parity = body.split(':')
        server = await StartAsyncSerialServer(context=context, framer=ModbusRtuFramer, port=path, baudrate=int(baud),
                                              parity=parity, stopbits=1, bytesize=8, defer_start=True)
        await server.start()
        if server.transport is None:
            raise RuntimeError(f'cannot open {path}')
        return asyncio.ensure_future(server.serve_forever())
    raise ValueError(f'unknown spec {spec!r}: PORT, tcp:PORT, rtu-tcp:PORT or rtu-serial:PATH:BAUD:PARITY')


async def main(specs):
    tasks = [await start(s) for s in specs]
    print('ready ' + ' '.join(specs), flush=True)
    await asyncio.gather(*tasks)


if __name__ == '__main__':
    asyncio.run(main(sys.argv[1:]))
