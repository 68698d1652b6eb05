// The Modbus device simulators: one import for tests, the bench and `ems-gateway simulate`.
export { SimulatedDevice, createSimulatedDevice, type SimulatedDeviceOptions } from './device.js';
export { startModbusServer, type ModbusFault, type ModbusServerOptions, type ModbusSimControl, type ModbusSimServer, type ServerStats, type WriteLog } from './server.js';
export { startRtuSerialServer, type RtuSerialServer, type RtuSerialServerOptions } from './serial-server.js';
export { openPtyPair, type PtyPair } from './pty.js';
export { startSiteSimulators, SiteSimulatorError, type SiteSimulatorErrorCode, type SiteEndpoint, type SiteSerialLine, type SiteSimulators, type SiteSimulatorOptions } from './site.js';
export { layoutChain, servedProfile, type SunSpecLayout } from './sunspec.js';
