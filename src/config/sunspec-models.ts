// The SunSpec information models the gateway knows by point name: the common model 1, the
// inverter models 101-103 (integer + scale factors) and 111-113 (float32), nameplate 120, basic
// settings 121, status 122 and immediate controls 123, written from the published model
// definitions (github.com/sunspec/models, json/model_<id>.json). A point's offset counts from the
// model's ID register (ID = offset 0, L = offset 1, the first point = offset 2), as in those
// definitions. Other models are known by name only (`sunspec scan` prints them).

/** SunSpec point types, as in the model definitions. */
export type SunSpecType =
  | 'uint16' | 'int16' | 'acc16' | 'enum16' | 'bitfield16' | 'count' | 'pad' | 'sunssf'
  | 'uint32' | 'int32' | 'acc32' | 'enum32' | 'bitfield32' | 'float32' | 'acc64' | 'int64' | 'string';

export interface SunSpecPoint {
  name: string;
  offset: number;   // from the model's ID register
  type: SunSpecType;
  size: number;     // registers
  sf?: string;      // the scale-factor point's name (same model)
  units?: string;   // as in the definition (W, A, V, Hz, Pct, C, Wh, Secs, % WMax ...)
  writable?: boolean;
}

export interface SunSpecModel {
  id: number;
  name: string;
  label: string;
  /** Registers after ID and L (the L a device reports when it implements the whole model). */
  length: number;
  points: SunSpecPoint[];
}

// [name, type, size?, sf?, units?, 'rw'?]: offsets follow from the order, from offset 2.
type Row = [string, SunSpecType, number?, string?, string?, 'rw'?];

function model(id: number, name: string, label: string, rows: readonly Row[]): SunSpecModel {
  let offset = 2;
  const points = rows.map(([pname, type, size = 1, sf, units, rw]): SunSpecPoint => {
    const p: SunSpecPoint = { name: pname, offset, type, size };
    if (sf) p.sf = sf;
    if (units) p.units = units;
    if (rw) p.writable = true;
    offset += size;
    return p;
  });
  return { id, name, label, length: offset - 2, points };
}

const COMMON: Row[] = [
  ['Mn', 'string', 16], ['Md', 'string', 16], ['Opt', 'string', 8], ['Vr', 'string', 8], ['SN', 'string', 16],
  ['DA', 'uint16', 1, undefined, undefined, 'rw'], ['Pad', 'pad'],
];

const INVERTER_INT: Row[] = [
  ['A', 'uint16', 1, 'A_SF', 'A'], ['AphA', 'uint16', 1, 'A_SF', 'A'], ['AphB', 'uint16', 1, 'A_SF', 'A'], ['AphC', 'uint16', 1, 'A_SF', 'A'], ['A_SF', 'sunssf'],
  ['PPVphAB', 'uint16', 1, 'V_SF', 'V'], ['PPVphBC', 'uint16', 1, 'V_SF', 'V'], ['PPVphCA', 'uint16', 1, 'V_SF', 'V'],
  ['PhVphA', 'uint16', 1, 'V_SF', 'V'], ['PhVphB', 'uint16', 1, 'V_SF', 'V'], ['PhVphC', 'uint16', 1, 'V_SF', 'V'], ['V_SF', 'sunssf'],
  ['W', 'int16', 1, 'W_SF', 'W'], ['W_SF', 'sunssf'], ['Hz', 'uint16', 1, 'Hz_SF', 'Hz'], ['Hz_SF', 'sunssf'],
  ['VA', 'int16', 1, 'VA_SF', 'VA'], ['VA_SF', 'sunssf'], ['VAr', 'int16', 1, 'VAr_SF', 'var'], ['VAr_SF', 'sunssf'],
  ['PF', 'int16', 1, 'PF_SF', 'Pct'], ['PF_SF', 'sunssf'], ['WH', 'acc32', 2, 'WH_SF', 'Wh'], ['WH_SF', 'sunssf'],
  ['DCA', 'uint16', 1, 'DCA_SF', 'A'], ['DCA_SF', 'sunssf'], ['DCV', 'uint16', 1, 'DCV_SF', 'V'], ['DCV_SF', 'sunssf'],
  ['DCW', 'int16', 1, 'DCW_SF', 'W'], ['DCW_SF', 'sunssf'],
  ['TmpCab', 'int16', 1, 'Tmp_SF', 'C'], ['TmpSnk', 'int16', 1, 'Tmp_SF', 'C'], ['TmpTrns', 'int16', 1, 'Tmp_SF', 'C'], ['TmpOt', 'int16', 1, 'Tmp_SF', 'C'], ['Tmp_SF', 'sunssf'],
  ['St', 'enum16'], ['StVnd', 'enum16'], ['Evt1', 'bitfield32', 2], ['Evt2', 'bitfield32', 2],
  ['EvtVnd1', 'bitfield32', 2], ['EvtVnd2', 'bitfield32', 2], ['EvtVnd3', 'bitfield32', 2], ['EvtVnd4', 'bitfield32', 2],
];

const INVERTER_FLOAT: Row[] = [
  ['A', 'float32', 2, undefined, 'A'], ['AphA', 'float32', 2, undefined, 'A'], ['AphB', 'float32', 2, undefined, 'A'], ['AphC', 'float32', 2, undefined, 'A'],
  ['PPVphAB', 'float32', 2, undefined, 'V'], ['PPVphBC', 'float32', 2, undefined, 'V'], ['PPVphCA', 'float32', 2, undefined, 'V'],
  ['PhVphA', 'float32', 2, undefined, 'V'], ['PhVphB', 'float32', 2, undefined, 'V'], ['PhVphC', 'float32', 2, undefined, 'V'],
  ['W', 'float32', 2, undefined, 'W'], ['Hz', 'float32', 2, undefined, 'Hz'], ['VA', 'float32', 2, undefined, 'VA'], ['VAr', 'float32', 2, undefined, 'var'],
  ['PF', 'float32', 2, undefined, 'Pct'], ['WH', 'float32', 2, undefined, 'Wh'],
  ['DCA', 'float32', 2, undefined, 'A'], ['DCV', 'float32', 2, undefined, 'V'], ['DCW', 'float32', 2, undefined, 'W'],
  ['TmpCab', 'float32', 2, undefined, 'C'], ['TmpSnk', 'float32', 2, undefined, 'C'], ['TmpTrns', 'float32', 2, undefined, 'C'], ['TmpOt', 'float32', 2, undefined, 'C'],
  ['St', 'enum16'], ['StVnd', 'enum16'], ['Evt1', 'bitfield32', 2], ['Evt2', 'bitfield32', 2],
  ['EvtVnd1', 'bitfield32', 2], ['EvtVnd2', 'bitfield32', 2], ['EvtVnd3', 'bitfield32', 2], ['EvtVnd4', 'bitfield32', 2],
];

const NAMEPLATE: Row[] = [
  ['DERTyp', 'enum16'], ['WRtg', 'uint16', 1, 'WRtg_SF', 'W'], ['WRtg_SF', 'sunssf'], ['VARtg', 'uint16', 1, 'VARtg_SF', 'VA'], ['VARtg_SF', 'sunssf'],
  ['VArRtgQ1', 'int16', 1, 'VArRtg_SF', 'var'], ['VArRtgQ2', 'int16', 1, 'VArRtg_SF', 'var'], ['VArRtgQ3', 'int16', 1, 'VArRtg_SF', 'var'], ['VArRtgQ4', 'int16', 1, 'VArRtg_SF', 'var'],
  ['VArRtg_SF', 'sunssf'], ['ARtg', 'uint16', 1, 'ARtg_SF', 'A'], ['ARtg_SF', 'sunssf'],
  ['PFRtgQ1', 'int16', 1, 'PFRtg_SF'], ['PFRtgQ2', 'int16', 1, 'PFRtg_SF'], ['PFRtgQ3', 'int16', 1, 'PFRtg_SF'], ['PFRtgQ4', 'int16', 1, 'PFRtg_SF'], ['PFRtg_SF', 'sunssf'],
  ['WHRtg', 'uint16', 1, 'WHRtg_SF', 'Wh'], ['WHRtg_SF', 'sunssf'], ['AhrRtg', 'uint16', 1, 'AhrRtg_SF', 'AH'], ['AhrRtg_SF', 'sunssf'],
  ['MaxChaRte', 'uint16', 1, 'MaxChaRte_SF', 'W'], ['MaxChaRte_SF', 'sunssf'], ['MaxDisChaRte', 'uint16', 1, 'MaxDisChaRte_SF', 'W'], ['MaxDisChaRte_SF', 'sunssf'], ['Pad', 'pad'],
];

const SETTINGS: Row[] = [
  ['WMax', 'uint16', 1, 'WMax_SF', 'W', 'rw'], ['VRef', 'uint16', 1, 'VRef_SF', 'V', 'rw'], ['VRefOfs', 'int16', 1, 'VRefOfs_SF', 'V', 'rw'],
  ['VMax', 'uint16', 1, 'VMinMax_SF', 'V', 'rw'], ['VMin', 'uint16', 1, 'VMinMax_SF', 'V', 'rw'], ['VAMax', 'uint16', 1, 'VAMax_SF', 'VA', 'rw'],
  ['VArMaxQ1', 'int16', 1, 'VArMax_SF', 'var', 'rw'], ['VArMaxQ2', 'int16', 1, 'VArMax_SF', 'var', 'rw'], ['VArMaxQ3', 'int16', 1, 'VArMax_SF', 'var', 'rw'], ['VArMaxQ4', 'int16', 1, 'VArMax_SF', 'var', 'rw'],
  ['WGra', 'uint16', 1, 'WGra_SF', '% WMax/sec', 'rw'], ['PFMinQ1', 'int16', 1, 'PFMin_SF', undefined, 'rw'], ['PFMinQ2', 'int16', 1, 'PFMin_SF', undefined, 'rw'],
  ['PFMinQ3', 'int16', 1, 'PFMin_SF', undefined, 'rw'], ['PFMinQ4', 'int16', 1, 'PFMin_SF', undefined, 'rw'], ['VArAct', 'enum16', 1, undefined, undefined, 'rw'],
  ['ClcTotVA', 'enum16', 1, undefined, undefined, 'rw'], ['MaxRmpRte', 'uint16', 1, 'MaxRmpRte_SF', '% WGra', 'rw'], ['ECPNomHz', 'uint16', 1, 'ECPNomHz_SF', 'Hz', 'rw'],
  ['ConnPh', 'enum16', 1, undefined, undefined, 'rw'], ['WMax_SF', 'sunssf'], ['VRef_SF', 'sunssf'], ['VRefOfs_SF', 'sunssf'], ['VMinMax_SF', 'sunssf'],
  ['VAMax_SF', 'sunssf'], ['VArMax_SF', 'sunssf'], ['WGra_SF', 'sunssf'], ['PFMin_SF', 'sunssf'], ['MaxRmpRte_SF', 'sunssf'], ['ECPNomHz_SF', 'sunssf'],
];

const STATUS: Row[] = [
  ['PVConn', 'bitfield16'], ['StorConn', 'bitfield16'], ['ECPConn', 'bitfield16'], ['ActWh', 'acc64', 4, undefined, 'Wh'], ['ActVAh', 'acc64', 4, undefined, 'VAh'],
  ['ActVArhQ1', 'acc64', 4, undefined, 'varh'], ['ActVArhQ2', 'acc64', 4, undefined, 'varh'], ['ActVArhQ3', 'acc64', 4, undefined, 'varh'], ['ActVArhQ4', 'acc64', 4, undefined, 'varh'],
  ['VArAval', 'int16', 1, 'VArAval_SF', 'var'], ['VArAval_SF', 'sunssf'], ['WAval', 'uint16', 1, 'WAval_SF', 'var'], ['WAval_SF', 'sunssf'],
  ['StSetLimMsk', 'bitfield32', 2], ['StActCtl', 'bitfield32', 2], ['TmSrc', 'string', 4], ['Tms', 'uint32', 2, undefined, 'Secs'], ['RtSt', 'bitfield16'],
  ['Ris', 'uint16', 1, 'Ris_SF', 'ohms'], ['Ris_SF', 'sunssf'],
];

const CONTROLS: Row[] = [
  ['Conn_WinTms', 'uint16', 1, undefined, 'Secs', 'rw'], ['Conn_RvrtTms', 'uint16', 1, undefined, 'Secs', 'rw'], ['Conn', 'enum16', 1, undefined, undefined, 'rw'],
  ['WMaxLimPct', 'uint16', 1, 'WMaxLimPct_SF', '% WMax', 'rw'], ['WMaxLimPct_WinTms', 'uint16', 1, undefined, 'Secs', 'rw'],
  ['WMaxLimPct_RvrtTms', 'uint16', 1, undefined, 'Secs', 'rw'], ['WMaxLimPct_RmpTms', 'uint16', 1, undefined, 'Secs', 'rw'], ['WMaxLim_Ena', 'enum16', 1, undefined, undefined, 'rw'],
  ['OutPFSet', 'int16', 1, 'OutPFSet_SF', undefined, 'rw'], ['OutPFSet_WinTms', 'uint16', 1, undefined, 'Secs', 'rw'], ['OutPFSet_RvrtTms', 'uint16', 1, undefined, 'Secs', 'rw'],
  ['OutPFSet_RmpTms', 'uint16', 1, undefined, 'Secs', 'rw'], ['OutPFSet_Ena', 'enum16', 1, undefined, undefined, 'rw'],
  ['VArWMaxPct', 'int16', 1, 'VArPct_SF', '% WMax', 'rw'], ['VArMaxPct', 'int16', 1, 'VArPct_SF', '% VArMax', 'rw'], ['VArAvalPct', 'int16', 1, 'VArPct_SF', '% VArAval', 'rw'],
  ['VArPct_WinTms', 'uint16', 1, undefined, 'Secs', 'rw'], ['VArPct_RvrtTms', 'uint16', 1, undefined, 'Secs', 'rw'], ['VArPct_RmpTms', 'uint16', 1, undefined, 'Secs', 'rw'],
  ['VArPct_Mod', 'enum16', 1, undefined, undefined, 'rw'], ['VArPct_Ena', 'enum16', 1, undefined, undefined, 'rw'],
  ['WMaxLimPct_SF', 'sunssf'], ['OutPFSet_SF', 'sunssf'], ['VArPct_SF', 'sunssf'],
];

const DEFINED: readonly SunSpecModel[] = [
  model(1, 'common', 'Common', COMMON),
  model(101, 'inverter_single_phase', 'Inverter (Single Phase)', INVERTER_INT),
  model(102, 'inverter_split_phase', 'Inverter (Split-Phase)', INVERTER_INT),
  model(103, 'inverter_three_phase', 'Inverter (Three Phase)', INVERTER_INT),
  model(111, 'inverter_single_phase_float', 'Inverter (Single Phase) FLOAT', INVERTER_FLOAT),
  model(112, 'inverter_split_phase_float', 'Inverter (Split Phase) FLOAT', INVERTER_FLOAT),
  model(113, 'inverter_three_phase_float', 'Inverter (Three Phase) FLOAT', INVERTER_FLOAT),
  model(120, 'nameplate', 'Nameplate', NAMEPLATE),
  model(121, 'settings', 'Basic Settings', SETTINGS),
  model(122, 'status', 'Measurements_Status', STATUS),
  model(123, 'controls', 'Immediate Controls', CONTROLS),
];

/** Models known by name only (for `sunspec scan`). */
const NAMED: Readonly<Record<number, string>> = {
  2: 'aggregator', 11: 'ethernet_link_layer', 12: 'ipv4', 13: 'ipv6', 17: 'serial_interface',
  124: 'storage_basic', 125: 'pricing', 126: 'volt_var', 127: 'freq_watt_param', 128: 'reactive_current', 129: 'lvrt', 130: 'hvrt',
  131: 'watt_pf', 132: 'volt_watt', 133: 'schedule', 134: 'freq_watt', 135: 'lfrt', 136: 'hfrt', 145: 'ext_settings', 160: 'mppt',
  201: 'ac_meter_an_or_ab', 202: 'ac_meter_abn', 203: 'ac_meter_abcn', 204: 'ac_meter_abc',
  211: 'ac_meter_an_or_ab_float', 212: 'ac_meter_abn_float', 213: 'ac_meter_abcn_float', 214: 'ac_meter_abc_float',
  302: 'irradiance', 303: 'bom_temp', 304: 'inclinometer', 701: 'DERMeasureAC', 702: 'DERCapacity', 704: 'DERCtlAC', 801: 'storage', 802: 'battery',
};

const BY_ID = new Map(DEFINED.map((m) => [m.id, m]));

/** The model's definition when the gateway knows its points. */
export function sunspecModel(id: number): SunSpecModel | undefined {
  return BY_ID.get(id);
}

/** A model's name for messages and `sunspec scan`: the definition's name, or vendor / unknown. */
export function sunspecModelName(id: number): string {
  const m = BY_ID.get(id);
  if (m) return m.name;
  const n = NAMED[id];
  if (n !== undefined) return n;
  return id >= 64000 && id <= 65535 ? 'vendor' : 'unknown';
}

/** SunSpec enum St (operating state) of the inverter models. */
export const INVERTER_STATES: Readonly<Record<string, string>> = {
  1: 'OFF', 2: 'SLEEPING', 3: 'STARTING', 4: 'MPPT', 5: 'THROTTLED', 6: 'SHUTTING_DOWN', 7: 'FAULT', 8: 'STANDBY',
};

/** SunSpec bitfield Evt1 of the inverter models. */
export const INVERTER_EVT1: Readonly<Record<string, string>> = {
  0: 'GROUND_FAULT', 1: 'DC_OVER_VOLT', 2: 'AC_DISCONNECT', 3: 'DC_DISCONNECT', 4: 'GRID_DISCONNECT', 5: 'CABINET_OPEN', 6: 'MANUAL_SHUTDOWN',
  7: 'OVER_TEMP', 8: 'OVER_FREQUENCY', 9: 'UNDER_FREQUENCY', 10: 'AC_OVER_VOLT', 11: 'AC_UNDER_VOLT', 12: 'BLOWN_STRING_FUSE', 13: 'UNDER_TEMP',
  14: 'MEMORY_LOSS', 15: 'HW_TEST_FAILURE',
};
