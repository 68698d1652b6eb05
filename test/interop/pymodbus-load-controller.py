#!/usr/bin/python3
"""A load controller served by pymodbus 3.0 (Debian python3-pymodbus), independent of our simulator,
for the demand-response command-channel tests.

Usage: /usr/bin/python3 pymodbus-load-controller.py PORT [UNITS]
Serves the register map of devices/generic-load-controller.yaml (address_base 1: datasheet 40001 is
wire address 40000) on unit ids 1..UNITS (default 1) at 127.0.0.1:PORT. Prints "ready PORT" once
listening, then one JSON line per write it accepts, its write log:
  {"write": {"unit": 1, "fc": 6, "address": 40002, "values": [3500]}}
and counts them in WRITES (wire address 40006, outside the profile's map): a test reads the
counter over Modbus, which is ordered with the writes (the log on stdout is not).
Behaviour: a write of P_LIMIT (40003) sets ACK (40005) to 1 (ACCEPTED), as the profile's read-back
expects; the load (P_LOAD, 40001-40002, 0.1 kW) is min(400 kW, P_LIMIT) while LIMIT_EN (40004) is 1.
"""
import asyncio
import json
import sys

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.server.async_io import StartAsyncTcpServer

BASE = 40000             # wire address of datasheet 40001
P_LOAD, P_LIMIT, LIMIT_EN, ACK, FLAGS, WRITES = 0, 2, 3, 4, 5, 6
BASE_LOAD = 4000         # 400.0 kW


class LoadController(ModbusSlaveContext):
    def __init__(self, unit):
        regs = [0] * 8
        regs[P_LOAD + 1] = BASE_LOAD
        regs[P_LIMIT] = 5000      # 500.0 kW: no limit
        # pymodbus 3.0 data blocks are 1-based unless zero_mode: wire address A is block address A + 1.
        super().__init__(
            hr=ModbusSequentialDataBlock(BASE + 1, regs),
            ir=ModbusSequentialDataBlock(1, [0] * 4),
            co=ModbusSequentialDataBlock(1, [0] * 4),
            di=ModbusSequentialDataBlock(1, [0] * 4),
        )
        self.unit = unit

    def setValues(self, fc_as_hex, address, values):
        super().setValues(fc_as_hex, address, values)
        print(json.dumps({"write": {"unit": self.unit, "fc": fc_as_hex, "address": address, "values": list(values)}}), flush=True)
        hr = self.store["h"]
        regs = hr.getValues(BASE + 1, 8)
        if address <= BASE + P_LIMIT < address + len(values):
            regs[ACK] = 1
        regs[WRITES] = (regs[WRITES] + 1) & 0xFFFF
        load = min(BASE_LOAD, regs[P_LIMIT]) if regs[LIMIT_EN] == 1 else BASE_LOAD
        regs[P_LOAD], regs[P_LOAD + 1] = load >> 16, load & 0xFFFF
        # The device's own updates go to the block directly: they are not writes of the log.
        hr.setValues(BASE + 1, regs)


async def main(port, units):
    context = ModbusServerContext(slaves={u: LoadController(u) for u in range(1, units + 1)}, single=False)
    server = await StartAsyncTcpServer(context=context, address=("127.0.0.1", port), defer_start=True)
    task = asyncio.ensure_future(server.serve_forever())
    await server.serving
    print(f"ready {port}", flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1))
