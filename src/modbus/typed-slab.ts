// Small typed arrays that live as long as their device (a poller's decode cache, the snapshot's
// values, the gauges' slots), carved out of shared 64 KB ArrayBuffers. A typed array of its own
// above 64 bytes gets an ArrayBuffer object and a separately allocated backing store with V8's
// bookkeeping for it; at 5,000 devices with seven each that was ~35,000 backing stores (bench:modbus
// RSS). A view here costs its view object and its bytes. The memory is zeroed (a fresh buffer) and
// never handed out twice; a slab is freed once no view of it is left.
const SLAB_BYTES = 64 * 1024;

let slab: ArrayBuffer | undefined;
let used = 0;
let carvedTotal = 0;

function carve(bytes: number, align: number): { buffer: ArrayBuffer; offset: number } {
  if (bytes > SLAB_BYTES / 8) return { buffer: new ArrayBuffer(bytes), offset: 0 };
  let at = Math.ceil(used / align) * align;
  if (slab === undefined || at + bytes > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    at = 0;
  }
  used = at + bytes;
  carvedTotal += bytes;
  return { buffer: slab, offset: at };
}

export function slabFloat64(n: number): Float64Array {
  const { buffer, offset } = carve(n * 8, 8);
  return new Float64Array(buffer, offset, n);
}

export function slabInt32(n: number): Int32Array {
  const { buffer, offset } = carve(n * 4, 4);
  return new Int32Array(buffer, offset, n);
}

export function slabUint16(n: number): Uint16Array {
  const { buffer, offset } = carve(n * 2, 2);
  return new Uint16Array(buffer, offset, n);
}

export function slabUint8(n: number): Uint8Array {
  const { buffer, offset } = carve(n, 1);
  return new Uint8Array(buffer, offset, n);
}

/** Bytes handed out from the slabs so far (tests: a plan compiled again must not take more). */
export function slabBytesCarved(): number {
  return carvedTotal;
}
