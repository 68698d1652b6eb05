// What every command lends the config loader when it loads a site: the device metric vocabulary,
// the poll budget and the Modbus layer's profile checks (src/config/load.ts, LoadOptions). One
// place, so a check lent later reaches every command.
import { pollBudgetWarnings } from '../modbus/poll-budget.js';
import { modbusProfileChecks } from '../modbus/profile-load.js';
import { DEVICE_METRICS } from '../telemetry/semconv.js';

export const LOAD_CHECKS = { metrics: DEVICE_METRICS, pollBudget: pollBudgetWarnings, profileChecks: modbusProfileChecks } as const;
