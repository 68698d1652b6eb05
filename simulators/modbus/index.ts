// The Modbus device simulators: one import for tests, the bench and `ems-gateway simulate`.
export { SimulatedDevice, createSimulatedDevice, type SimulatedDeviceOptions } from './device.js';
export { startModbusServer, type ModbusFault, type ModbusServerOptions, type ModbusSimServer, type ServerStats, type WriteLog } from './server.js';
export { startSiteSimulators, SiteSimulatorError, type SiteSimulatorErrorCode, type SiteEndpoint, type SiteSimulators, type SiteSimulatorOptions } from './site.js';
