/**
 * Alert rules: the settings (built-in defaults, overridden for the fleet and
 * per machine) and the pure evaluation of a machine's last telemetry, its
 * silence and its rejected commands into the conditions that hold now. No
 * I/O here: the engine (engine.ts) loads, evaluates and stores.
 *
 * Telemetry bodies are checked by the ingest only for `v` and `t`, so
 * everything read here is read defensively: a field of the wrong type is as
 * good as absent, never an exception.
 */

export const ALERT_KINDS = [
  'slot-empty',
  'low-stock',
  'coin-tube-low',
  'exact-change-only',
  'bill-stacker-full',
  'slot-fault',
  'device-offline',
  'device-currency-mismatch',
  'temperature',
  'offline',
  'journal-full',
  'storage-fault',
  'commands-rejected',
  'rolled-back',
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export type Severity = 'info' | 'warning' | 'critical';

/** A condition that holds now; (kind, subject) names the alert it keeps open. */
export interface Condition {
  kind: AlertKind;
  /** Slot code, coin value, device name, or '' for the machine as a whole. */
  subject: string;
  severity: Severity;
  message: string;
  /** Figures behind the message; a change in them updates the open alert. */
  detail: Record<string, unknown>;
}

/** Rules in force for one machine (built-in defaults, then the fleet's, then the machine's own). */
export interface AlertRules {
  /** Each kind on (true, the default) or off. */
  kinds: Record<AlertKind, boolean>;
  lowStock: {
    /** Low when a slot holds at most this share of its capacity (rounded up, at least 1 item); null: off, except slots with their own threshold. */
    percent: number | null;
    /** Per slot code: low at or below this many items (0: only empty counts, null: never low). */
    slots: Record<string, number | null>;
  };
  coinTubeLow: {
    /** Low when a tube holds at most this many coins; null: off. */
    coins: number | null;
    /** Per coin value (minor units, as a string key): its own threshold, null: never low. */
    byValue: Record<string, number | null>;
  };
  /** Cabinet temperature range in °C; either end null: not checked. */
  temperature: { min: number | null; max: number | null };
  offline: {
    /** Offline after this many telemetry intervals without a word from the machine. */
    intervals: number;
    /** The interval assumed when the machine never said its own (seconds). */
    defaultIntervalS: number;
  };
  /** Journal nearly full: level low/full, or the fill at or above this percentage (null: the level alone). */
  journal: { fillPercent: number | null };
  /** At least `count` rejected commands (forged, replayed, expired...) within `windowMinutes`. */
  commandsRejected: { count: number; windowMinutes: number };
}

/** Rules as stored and sent by operators: any part of AlertRules, the rest inherited. */
export type RulesPatch = {
  kinds?: Partial<Record<AlertKind, boolean>>;
  lowStock?: { percent?: number | null; slots?: Record<string, number | null> };
  coinTubeLow?: { coins?: number | null; byValue?: Record<string, number | null> };
  temperature?: { min?: number | null; max?: number | null };
  offline?: { intervals?: number; defaultIntervalS?: number };
  journal?: { fillPercent?: number | null };
  commandsRejected?: { count?: number; windowMinutes?: number };
};

export const DEFAULT_RULES: AlertRules = {
  kinds: Object.fromEntries(ALERT_KINDS.map((k) => [k, true])) as Record<AlertKind, boolean>,
  lowStock: { percent: 20, slots: {} },
  coinTubeLow: { coins: 5, byValue: {} },
  temperature: { min: 0, max: 10 },
  offline: { intervals: 3, defaultIntervalS: 300 },
  journal: { fillPercent: 75 },
  commandsRejected: { count: 5, windowMinutes: 60 },
};

const SLOT_KEY = '^[A-Z0-9]{1,4}$';
const COIN_KEY = '^[1-9][0-9]{0,8}$';
const nullableCount = (max: number) => ({ type: ['integer', 'null'], minimum: 0, maximum: max }) as const;

/**
 * JSON schema of a RulesPatch (the API checks bodies against it): unknown
 * fields refused, bounds on every number.
 */
export const RULES_PATCH_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    kinds: { type: 'object', additionalProperties: false, properties: Object.fromEntries(ALERT_KINDS.map((k) => [k, { type: 'boolean' }])) },
    lowStock: {
      type: 'object',
      additionalProperties: false,
      properties: {
        percent: { type: ['number', 'null'], minimum: 1, maximum: 100, description: 'percent of capacity, rounded up to whole items, at least 1' },
        slots: { type: 'object', maxProperties: 256, propertyNames: { pattern: SLOT_KEY }, additionalProperties: nullableCount(999), description: 'slot code: items' },
      },
    },
    coinTubeLow: {
      type: 'object',
      additionalProperties: false,
      properties: {
        coins: nullableCount(10000),
        byValue: { type: 'object', maxProperties: 64, propertyNames: { pattern: COIN_KEY }, additionalProperties: nullableCount(10000), description: 'coin value in minor units: coins' },
      },
    },
    temperature: {
      type: 'object',
      additionalProperties: false,
      properties: { min: { type: ['number', 'null'], minimum: -50, maximum: 100 }, max: { type: ['number', 'null'], minimum: -50, maximum: 100 } },
    },
    offline: {
      type: 'object',
      additionalProperties: false,
      properties: { intervals: { type: 'integer', minimum: 1, maximum: 1000 }, defaultIntervalS: { type: 'integer', minimum: 1, maximum: 86400 } },
    },
    journal: { type: 'object', additionalProperties: false, properties: { fillPercent: { type: ['integer', 'null'], minimum: 1, maximum: 100 } } },
    commandsRejected: {
      type: 'object',
      additionalProperties: false,
      properties: { count: { type: 'integer', minimum: 1, maximum: 1000000 }, windowMinutes: { type: 'integer', minimum: 1, maximum: 10080 } },
    },
  },
} as const;

// ---- merging ----------------------------------------------------------------------------------

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const numOrNull = (v: unknown, fallback: number | null): number | null => (v === null ? null : isNum(v) ? v : fallback);
const num = (v: unknown, fallback: number): number => (isNum(v) ? v : fallback);

function thresholds(base: Record<string, number | null>, patch: unknown): Record<string, number | null> {
  const out = { ...base };
  if (isRecord(patch)) for (const [k, v] of Object.entries(patch)) if (v === null || isNum(v)) out[k] = v;
  return out;
}

/**
 * `patch` over `base`: every field the patch sets wins, maps (kinds, slot and
 * coin thresholds) are merged key by key. Stored patches went through the
 * schema, but are read as unknown: a bad field is ignored, not trusted.
 */
export function applyRules(base: AlertRules, patch: unknown): AlertRules {
  if (!isRecord(patch)) return base;
  const g = (key: string): Record<string, unknown> => {
    const v = patch[key];
    return isRecord(v) ? v : {};
  };
  const kinds = { ...base.kinds };
  for (const [k, v] of Object.entries(g('kinds'))) if ((ALERT_KINDS as readonly string[]).includes(k) && typeof v === 'boolean') kinds[k as AlertKind] = v;
  const ls = g('lowStock');
  const ct = g('coinTubeLow');
  const t = g('temperature');
  const off = g('offline');
  const j = g('journal');
  const cr = g('commandsRejected');
  return {
    kinds,
    lowStock: { percent: numOrNull(ls['percent'], base.lowStock.percent), slots: thresholds(base.lowStock.slots, ls['slots']) },
    coinTubeLow: { coins: numOrNull(ct['coins'], base.coinTubeLow.coins), byValue: thresholds(base.coinTubeLow.byValue, ct['byValue']) },
    temperature: { min: numOrNull(t['min'], base.temperature.min), max: numOrNull(t['max'], base.temperature.max) },
    offline: { intervals: num(off['intervals'], base.offline.intervals), defaultIntervalS: num(off['defaultIntervalS'], base.offline.defaultIntervalS) },
    journal: { fillPercent: numOrNull(j['fillPercent'], base.journal.fillPercent) },
    commandsRejected: { count: num(cr['count'], base.commandsRejected.count), windowMinutes: num(cr['windowMinutes'], base.commandsRejected.windowMinutes) },
  };
}

/** The rules in force: defaults, then the fleet's patch, then the machine's. */
export function resolveRules(fleet: unknown, machine?: unknown): AlertRules {
  return applyRules(applyRules(DEFAULT_RULES, fleet), machine);
}

/** What a patch cannot say in its schema: a range the right way round. Undefined if it is fine. */
export function rulesProblem(rules: AlertRules): string | undefined {
  const { min, max } = rules.temperature;
  if (min !== null && max !== null && min >= max) return `temperature.min (${min}) must be below temperature.max (${max})`;
  return undefined;
}

// ---- evaluation -------------------------------------------------------------------------------

/** Items at or below which a slot is low; undefined: not checked. */
export function lowStockThreshold(rules: AlertRules, code: string, capacity: number | undefined): number | undefined {
  if (Object.hasOwn(rules.lowStock.slots, code)) return rules.lowStock.slots[code] ?? undefined;
  if (rules.lowStock.percent === null || capacity === undefined || capacity <= 0) return undefined;
  return Math.max(1, Math.ceil((capacity * rules.lowStock.percent) / 100));
}

function coinThreshold(rules: AlertRules, value: number): number | undefined {
  const key = String(value);
  if (Object.hasOwn(rules.coinTubeLow.byValue, key)) return rules.coinTubeLow.byValue[key] ?? undefined;
  return rules.coinTubeLow.coins ?? undefined;
}

const DEVICES: Record<string, { subject: string; name: string }> = {
  'changer-offline': { subject: 'changer', name: 'Coin changer' },
  'bill-validator-offline': { subject: 'bill-validator', name: 'Bill validator' },
  'cashless-offline': { subject: 'cashless', name: 'Card reader' },
};

/** A device that answers but is not enabled: its currency, or a scaling that cannot express the machine's money. */
const MISMATCHED: Record<string, { subject: string; name: string; key: string }> = {
  'changer-currency-mismatch': { subject: 'changer', name: 'Coin changer', key: 'changer' },
  'bill-validator-currency-mismatch': { subject: 'bill-validator', name: 'Bill validator', key: 'bill' },
  'cashless-currency-mismatch': { subject: 'cashless', name: 'Card reader', key: 'cashless' },
};

const slotName = (code: string, product: unknown): string => (typeof product === 'string' && product !== '' ? `Slot ${code} (${product})` : `Slot ${code}`);

/**
 * The conditions a machine's telemetry shows (docs/uplink.md), under its
 * rules: every kind but `offline` and `commands-rejected`, which come from
 * silence and from events (offlineCondition, rejectedCondition).
 */
export function evaluate(telemetry: unknown, rules: AlertRules): Condition[] {
  if (!isRecord(telemetry)) return [];
  const out: Condition[] = [];
  const on = (k: AlertKind): boolean => rules.kinds[k];
  const errors = Array.isArray(telemetry['errors']) ? telemetry['errors'].filter((e): e is string => typeof e === 'string') : [];
  const faulted = new Set(errors.filter((e) => e.startsWith('slot-fault:')).map((e) => e.slice('slot-fault:'.length)));

  const slots = Array.isArray(telemetry['slots']) ? telemetry['slots'].filter(isRecord) : [];
  for (const s of slots) {
    const code = s['code'];
    const qty = s['qty'];
    if (typeof code !== 'string' || code === '' || !isNum(qty)) continue;
    const capacity = isNum(s['capacity']) ? s['capacity'] : undefined;
    const name = slotName(code, s['product']);
    if (s['fault'] === true) faulted.add(code);
    if (qty <= 0) {
      if (on('slot-empty')) out.push({ kind: 'slot-empty', subject: code, severity: 'warning', message: `${name} is empty`, detail: { qty, ...(capacity !== undefined ? { capacity } : {}) } });
      continue;
    }
    const threshold = on('low-stock') ? lowStockThreshold(rules, code, capacity) : undefined;
    if (threshold !== undefined && qty <= threshold) {
      out.push({
        kind: 'low-stock',
        subject: code,
        severity: 'info',
        message: `${name} low: ${qty}${capacity !== undefined ? ` of ${capacity}` : ''} left`,
        detail: { qty, ...(capacity !== undefined ? { capacity } : {}), threshold },
      });
    }
  }
  if (on('slot-fault')) {
    for (const code of [...faulted].sort()) {
      const s = slots.find((x) => x['code'] === code);
      out.push({ kind: 'slot-fault', subject: code, severity: 'warning', message: `${slotName(code, s?.['product'])} out of service (jam or motor fault)`, detail: {} });
    }
  }

  if (on('coin-tube-low')) {
    const tubes = Array.isArray(telemetry['tubes']) ? telemetry['tubes'].filter(isRecord) : [];
    for (const t of tubes) {
      const value = t['value'];
      const count = t['count'];
      if (!isNum(value) || !isNum(count)) continue;
      const threshold = coinThreshold(rules, value);
      if (threshold !== undefined && count <= threshold) {
        out.push({ kind: 'coin-tube-low', subject: String(value), severity: 'info', message: `Coin tube for ${value} low: ${count} coin${count === 1 ? '' : 's'} left`, detail: { count, threshold } });
      }
    }
  }

  if (on('exact-change-only') && errors.includes('exact-change-only')) {
    out.push({ kind: 'exact-change-only', subject: '', severity: 'warning', message: 'Exact change only: the changer cannot pay change', detail: {} });
  }

  if (on('bill-stacker-full')) {
    const st = isRecord(telemetry['stacker']) ? telemetry['stacker'] : undefined;
    const count = isNum(st?.['count']) ? st['count'] : undefined;
    const capacity = isNum(st?.['capacity']) ? st['capacity'] : undefined;
    const byCount = count !== undefined && capacity !== undefined && capacity > 0 && count >= capacity;
    if (errors.includes('bill-stacker-full') || byCount) {
      out.push({
        kind: 'bill-stacker-full',
        subject: '',
        severity: 'warning',
        message: `Bill stacker full${count !== undefined && capacity !== undefined ? ` (${count} of ${capacity})` : ''}: no more bills accepted`,
        detail: { ...(count !== undefined ? { count } : {}), ...(capacity !== undefined ? { capacity } : {}) },
      });
    }
  }

  if (on('device-offline')) {
    for (const [code, d] of Object.entries(DEVICES)) {
      if (errors.includes(code)) out.push({ kind: 'device-offline', subject: d.subject, severity: 'critical', message: `${d.name} offline (MDB)`, detail: {} });
    }
  }

  if (on('device-currency-mismatch')) {
    const refused = isRecord(telemetry['refused']) ? telemetry['refused'] : {};
    for (const [code, d] of Object.entries(MISMATCHED)) {
      if (!errors.includes(code)) continue;
      // What the device reported (ISO 4217 numeric currency, scale factor, decimals), when the machine says.
      const entry = refused[d.key];
      const r = isRecord(entry) ? entry : {};
      const detail: Record<string, unknown> = {};
      for (const k of ['reason', 'currency', 'scale', 'decimals']) if (typeof r[k] === 'string' || isNum(r[k])) detail[k] = r[k];
      const why = detail['reason'] === 'scaling' ? 'its money units cannot express the prices' : `its currency${isNum(detail['currency']) ? ` (${detail['currency']})` : ''} is not the machine's`;
      out.push({ kind: 'device-currency-mismatch', subject: d.subject, severity: 'critical', message: `${d.name} not enabled: ${why}`, detail });
    }
  }

  const temperature = telemetry['temperature'];
  if (on('temperature') && isNum(temperature)) {
    const { min, max } = rules.temperature;
    const low = min !== null && temperature < min;
    const high = max !== null && temperature > max;
    if (low || high) {
      out.push({
        kind: 'temperature',
        subject: '',
        severity: 'warning',
        message: `Temperature ${temperature} °C ${high ? `above ${max}` : `below ${min}`} °C`,
        detail: { temperature, min, max },
      });
    }
  }

  if (on('journal-full')) {
    const j = isRecord(telemetry['journal']) ? telemetry['journal'] : {};
    const level = typeof j['level'] === 'string' ? j['level'] : errors.includes('journal-full') ? 'full' : errors.includes('journal-low') ? 'low' : 'ok';
    const fill = isNum(j['fill']) ? j['fill'] : undefined;
    const full = level === 'full' || errors.includes('journal-full');
    const nearly = full || level === 'low' || errors.includes('journal-low') || (fill !== undefined && rules.journal.fillPercent !== null && fill >= rules.journal.fillPercent);
    if (nearly) {
      out.push({
        kind: 'journal-full',
        subject: '',
        severity: full ? 'critical' : 'warning',
        // The level, not the fill: a fill that creeps by a percent is not news worth an update.
        message: full ? 'Journal full: the machine stops selling until its events reach the gateway' : 'Journal nearly full: events are not reaching the gateway',
        detail: { level: full ? 'full' : 'low' },
      });
    }
  }

  if (on('storage-fault')) {
    const j = isRecord(telemetry['journal']) ? telemetry['journal'] : {};
    const faults = isNum(j['faults']) && j['faults'] > 0 ? j['faults'] : 0;
    const stopped = j['level'] === 'fault' || errors.includes('journal-fault');
    if (faults > 0 || stopped) {
      out.push({
        kind: 'storage-fault',
        subject: '',
        // Failed blocks are skipped and the machine sells on; with too few left it stops.
        severity: stopped ? 'critical' : 'warning',
        message: stopped ? 'Storage fault: too few flash blocks work, the machine stopped selling' : `Flash faults: ${faults} writes or erases failed since boot (their blocks are skipped)`,
        detail: { faults, stopped },
      });
    }
  }
  return out;
}

/** Offline: nothing from the machine for `intervals` of its telemetry interval. */
export function offlineCondition(lastSeen: Date | null, silentS: number | null, intervalS: number | undefined, rules: AlertRules): Condition | undefined {
  if (!rules.kinds.offline || lastSeen === null || silentS === null) return undefined;
  const interval = intervalS !== undefined && intervalS > 0 ? intervalS : rules.offline.defaultIntervalS;
  const afterS = interval * rules.offline.intervals;
  if (silentS <= afterS) return undefined;
  return {
    kind: 'offline',
    subject: '',
    severity: 'critical',
    message: `No word from the machine since ${lastSeen.toISOString()} (more than ${rules.offline.intervals} telemetry intervals of ${interval} s)`,
    // No running "silent for" figure: it would update the alert at every sweep.
    detail: { lastSeen: lastSeen.toISOString(), intervalS: interval, afterS },
  };
}

/** Rejected commands: `count` (with those the machine counted but did not journal) within the window, by reason. */
export function rejectedCondition(count: number, reasons: Record<string, number>, rules: AlertRules): Condition | undefined {
  if (!rules.kinds['commands-rejected'] || count < rules.commandsRejected.count) return undefined;
  const w = rules.commandsRejected.windowMinutes;
  const top = Object.entries(reasons)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([r, n]) => `${r} ${n}`)
    .join(', ');
  return {
    kind: 'commands-rejected',
    subject: '',
    severity: 'warning',
    message: `${count} commands rejected by the machine in the last ${w} min${top ? ` (${top})` : ''}`,
    detail: { count, windowMinutes: w, reasons },
  };
}

/**
 * A firmware update rolled back: the machine's newest update report
 * (machine_updates) says the previous image booted instead of the new one,
 * and why. It stays open until the machine reports on an update again.
 */
export function rolledBackCondition(report: { phase: string; version: string; reason: string | null } | undefined, rules: AlertRules): Condition | undefined {
  if (!rules.kinds['rolled-back'] || report?.phase !== 'rolled-back') return undefined;
  const reason = report.reason ?? 'no reason given';
  return {
    kind: 'rolled-back',
    subject: report.version,
    severity: 'warning',
    message: `Firmware ${report.version} rolled back (${reason}): the machine runs its previous image`,
    detail: { version: report.version, reason },
  };
}

/** Telemetry interval the machine said it keeps, if it did. */
export function intervalOf(telemetry: unknown): number | undefined {
  if (!isRecord(telemetry)) return undefined;
  const v = telemetry['intervalS'];
  return isNum(v) && v > 0 ? v : undefined;
}
