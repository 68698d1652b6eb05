// The V8 flags the gateway runs with when deployed (deploy/ems-gateway.service, deploy/Containerfile,
// docs/operations.md; test/bench/gateway-node-flags.test.ts keeps them in step). A 4 MB semi-space
// (V8's default grows to 16 MB: 32 MB of young generation resident) and an old generation that
// grows 1.5x its live size between full collections (V8 lets it grow further, into garbage, for
// lack of pressure): bench:modbus measured RSS 110 MB instead of 158 MB at 1,000 devices, CPU 1.5x
// the bare client instead of 1.3x (docs/modbus.md "Benchmark"). bench:modbus runs its gateway
// processes with these unless --gateway-node-flags= says otherwise, and reports them in its JSON;
// bench:ingest runs its gateway with them. `--expose-gc` lets the meter ingest ask for a full
// collection after it forgot a crowd of meters (src/meters/state-bound.ts), so that memory goes
// back at once rather than at V8's next full collection, which a light load may put hours away.
export const GATEWAY_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--heap-growing-percent=50', '--expose-gc'];
