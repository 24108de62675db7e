/**
 * The operator dashboard (browser side): signs in with an API token, draws
 * the fleet (map, list, totals) and one machine (planogram, coin tubes,
 * sales chart, alerts, commands, audit files), the firmware rollouts
 * (rollouts.ts) from the operator API, and keeps them current from the
 * /stream of changes without a reload.
 */
import { heatmapPanel } from './heatmap.js';
import { fleetMap, type MapMachine, type MapState } from './map.js';
import { chartPanel } from './charts.js';
import { catalogPanel } from './catalog.js';
import { rolloutPanel } from './rollouts.js';
import { routePanel } from './route-panel.js';

// ---- shapes of the API answers this page reads ------------------------------------------------

/** The machine's money (docs/uplink.md telemetry `currency`, `decimals`): every amount it reports is minor units of it. */
interface Money {
  currency: string;
  decimals: number;
}
interface MachineRow {
  id: string;
  online: boolean;
  lastSeen: string | null;
  errors: unknown[];
  openAlerts?: number;
  criticalAlerts?: number;
  firmware?: string | null;
  operator?: string;
  stock?: { units: number; capacity: number; percent: number } | null;
  needsRestock?: boolean;
  /** From the forecasts: needs restocking before midnight UTC (GET /machines restockToday; null while the gateway counts). */
  restockToday?: boolean | null;
  money?: Money | null;
  location?: { lat: number; lon: number; address?: string | null } | null;
}
interface SlotRow {
  slot: string;
  product: string | null;
  price: number;
  quantity: number;
  capacity: number | null;
  outOfService: boolean;
}
interface Summary {
  machines: number;
  online: number;
  today: { sales: number; revenue: number; revenueByCurrency?: { currency: string | null; decimals: number; revenue: number }[] };
  openAlerts: number;
  /** Machines needing restock today, from the forecasts (null while the gateway counts). */
  restockToday?: number | null;
  /** Machines offline, and with errors (telemetry errors or an open critical alert), counted by the gateway. */
  offline: number;
  withErrors: number;
  /** The money the machines sell in, each once. */
  currencies: Money[];
}
/** GET /fleet/map: every located machine as columns (state: an index into states). */
interface FleetMapRead {
  states: MapState[];
  machines: { id: string[]; lat: number[]; lon: number[]; address: (string | null)[]; state: number[] };
}
interface Command {
  id: string;
  n: number;
  type: string;
  status: string;
  issuedAt: string;
  outcome: Record<string, unknown> | null;
}
interface Alert {
  id: number;
  kind: string;
  subject: string;
  severity: string;
  message: string;
  openedAt: string;
  closedAt?: string | null;
}
interface Audit {
  id: number;
  readNumber: number | null;
  receivedAt: string;
  crc: string;
  paidVends: { init: { value: number | null; count: number | null } } | null;
}
interface Change {
  machines: string[];
  sales: string[];
  commands: { id: string; machine: string; status: string }[];
  alerts: string[];
  audits: { id: number; machine: string | null }[];
  rollouts?: string[];
}

// ---- plumbing ---------------------------------------------------------------------------------

const $ = <T extends Element = HTMLElement>(sel: string): T => {
  const e = document.querySelector<T>(sel);
  if (!e) throw new Error(`no ${sel}`);
  return e;
};
const el = (tag: string, attrs: Record<string, string> = {}, text?: string): HTMLElement => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
};
/**
 * An amount in minor units as people read it with its currency: "USD 1,234.50" (whole numbers: no float in the
 * way); without a known currency the figure alone, at 2 decimals, marked as such.
 */
const money = (minor: number, m: Money | null | undefined): string => {
  if (!Number.isFinite(minor)) return '?';
  const decimals = m?.decimals ?? 2;
  const unit = 10 ** decimals;
  const abs = Math.abs(Math.round(minor));
  const whole = Math.floor(abs / unit).toLocaleString('en-US');
  const frac = decimals > 0 ? `.${String(abs % unit).padStart(decimals, '0')}` : '';
  return `${m ? `${m.currency} ` : ''}${minor < 0 ? '-' : ''}${whole}${frac}${m ? '' : ' (currency not reported)'}`;
};
const ago = (iso: string | null): string => {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.floor(s / 60)} min ago` : `${Math.floor(s / 3600)} h ago`;
};

class Unauthorized extends Error {}

let token = sessionStorage.getItem('vendfleet-token') ?? '';

async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(path, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.body ? { 'content-type': 'application/json' } : {}), ...(init.headers ?? {}) } });
  if (res.status === 401) throw new Unauthorized('the token was refused');
  const body = (await res.json()) as T & { error?: string; message?: string };
  if (!res.ok) throw new Error(`${res.status} ${body.error ?? ''}: ${body.message ?? ''}`);
  return body;
}

/** Run `fn` at most once at a time; a call while it runs makes it run once more after. */
function serial(fn: () => Promise<void>): () => void {
  let running = false;
  let again = false;
  const go = async (): Promise<void> => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await fn();
    } catch (e) {
      if (e instanceof Unauthorized) signOut(e.message);
      else console.warn(e);
    } finally {
      running = false;
      if (again) {
        again = false;
        void go();
      }
    }
  };
  return () => void go();
}

// ---- the fleet --------------------------------------------------------------------------------

/**
 * The machine list's rows read so far, in id order: the first screen reads one page of them (GET
 * /machines?limit=), "show more" the next pages; the whole list is read only when asked for (a filter, a sort
 * other than by id, a KPI's list), and from then on kept whole (`complete`).
 */
let machines: MachineRow[] = [];
let complete = false;
/** Rows of machines opened from the map or the heatmap that the list has not read (their money, for the charts). */
const extraRows = new Map<string, MachineRow>();
/** The fleet on the map: every located machine, from GET /fleet/map (its state patched by live changes). */
let points: MapMachine[] = [];
/** The last totals read (GET /fleet/summary). */
let summary: Summary | undefined;
let selected: string | undefined;

/** A machine in trouble: its telemetry reports errors, or it has an open critical alert. */
const hasErrors = (m: MachineRow): boolean => (Array.isArray(m.errors) && m.errors.length > 0) || (m.criticalAlerts ?? 0) > 0;
type StateFilter = 'all' | 'online' | 'offline' | 'errors' | 'restock';
const STATE_TEST: Record<StateFilter, (m: MachineRow) => boolean> = {
  all: () => true,
  online: (m) => m.online,
  offline: (m) => !m.online,
  errors: hasErrors,
  restock: (m) => m.restockToday === true,
};

/** The list's columns: header text, what a row shows, and what it sorts by. */
type SortKey = 'machine' | 'operator' | 'state' | 'seen' | 'stock' | 'firmware' | 'alerts';
const SORT: Record<SortKey, (m: MachineRow) => string | number> = {
  machine: (m) => m.id,
  operator: (m) => m.operator ?? '',
  state: (m) => (m.online ? 1 : 0),
  seen: (m) => (m.lastSeen ? new Date(m.lastSeen).getTime() : 0),
  stock: (m) => m.stock?.percent ?? -1,
  firmware: (m) => (m.firmware ?? '').split('.').map((x) => x.padStart(5, '0')).join('.'),
  alerts: (m) => m.openAlerts ?? 0,
};
let sortBy: SortKey = 'machine';
let sortDown = false;

/** The list's filter words (lower case). */
const filterWords = (): string[] => $<HTMLInputElement>('#filter').value.trim().toLowerCase().split(/\s+/).filter((w) => w !== '');
/** The list as asked for needs every machine (a state or text filter, a sort other than by id): the first pages will not do. */
const wantsWholeList = (): boolean => $<HTMLSelectElement>('#state-filter').value !== 'all' || filterWords().length > 0 || sortBy !== 'machine' || sortDown;

/**
 * Machines the stream said changed, to read again (their rows only: a live change does not read the whole
 * list, seconds at 10,000 machines), and whether the fleet is to be read again (at sign-in, after the stream
 * was away, and now and then for what no change reports: the forecasts' restockToday moving on).
 */
const changedMachines = new Set<string>();
let fullWanted = true;
/** The totals and KPI counts, without the last 24 hours' sales (not shown here; after noon UTC hours of raw sales read). */
const SUMMARY = '/fleet/summary?last24h=false';
/** Most machine ids one GET /machines?ids= takes (the API's limit). */
const IDS_PER_READ = 500;
/** Beyond this many changed at once the fleet is read again instead (one read rather than many). */
const PATCH_MAX = 2000;

const syncFleet = serial(async () => {
  try {
    while (fullWanted || changedMachines.size > 0 || (!complete && wantsWholeList())) {
      if (fullWanted || changedMachines.size > PATCH_MAX) {
        fullWanted = false;
        changedMachines.clear();
        await loadFleet();
      } else if (changedMachines.size > 0) {
        const ids = [...changedMachines];
        changedMachines.clear();
        await patchFleet(ids);
      } else await loadWholeList();
    }
  } catch (e) {
    // What was to be read is not known any more: the next sync reads everything.
    fullWanted = true;
    throw e;
  }
});

/** The rows as the list keeps them: each with its place from the map's read (the text filter finds addresses). */
function placed(rows: readonly MachineRow[]): MachineRow[] {
  const where = new Map(points.map((p) => [p.id, p]));
  return rows.map((m) => {
    const p = where.get(m.id);
    return p ? { ...m, location: { lat: p.lat, lon: p.lon, address: p.address ?? null } } : m;
  });
}

/**
 * Read the fleet for the first screen: the totals and KPI counts (the gateway counts them), the map's narrow
 * read, and the list's rows drawn (one page; every machine only once the list was asked for all of them).
 */
async function loadFleet(): Promise<void> {
  const whole = complete || wantsWholeList();
  const [s, map, list] = await Promise.all([
    api<Summary>(SUMMARY),
    api<FleetMapRead>('/fleet/map'),
    api<{ machines: MachineRow[]; next?: string | null }>(whole ? '/machines' : `/machines?limit=${Math.max(rowsDrawn, PAGE_ROWS)}`),
  ]);
  const c = map.machines;
  points = c.id.map((id, i) => ({ id, lat: c.lat[i]!, lon: c.lon[i]!, address: c.address[i] ?? null, state: map.states[c.state[i]!] ?? 'online' }));
  machines = placed(list.machines);
  complete = whole || list.next === null;
  drawFleet(s);
}

/** Every machine's row (the list asked for a filter or a sort): read once, then kept up to date by live changes. */
async function loadWholeList(): Promise<void> {
  $('#machines-shown').textContent = `reading all ${summary?.machines ?? ''} machines…`;
  machines = placed((await api<{ machines: MachineRow[] }>('/machines')).machines);
  complete = true;
  drawMachineList();
}

/** The list's next page (keyset: the machines after the last one read). */
async function loadMoreRows(): Promise<void> {
  const last = machines[machines.length - 1]?.id;
  const r = await api<{ machines: MachineRow[]; next: string | null }>(`/machines?limit=${PAGE_ROWS}${last ? `&cursor=${encodeURIComponent(last)}` : ''}`);
  if (complete) return;
  const have = new Set(machines.map((m) => m.id));
  machines.push(...placed(r.machines.filter((m) => !have.has(m.id))));
  if (r.next === null) complete = true;
}

/**
 * Read the totals and the rows of `ids` again, and put those rows in place (and their state on the map). A
 * machine new to the list joins it when it falls within the rows read; a machine new to the map comes with
 * the next read of the fleet.
 */
async function patchFleet(ids: string[]): Promise<void> {
  const reads: Promise<{ machines: MachineRow[] }>[] = [];
  for (let i = 0; i < ids.length; i += IDS_PER_READ) reads.push(api(`/machines?ids=${encodeURIComponent(ids.slice(i, i + IDS_PER_READ).join(','))}`));
  const [s, ...pages] = await Promise.all([api<Summary>(SUMMARY), ...reads]);
  const fresh = new Map(placed(pages.flatMap((p) => p.machines)).map((m) => [m.id, m]));
  for (const p of points) {
    const f = fresh.get(p.id);
    if (f) p.state = mapState(f);
  }
  for (const [id, f] of fresh) if (extraRows.has(id)) extraRows.set(id, f);
  machines = machines.map((m) => {
    const f = fresh.get(m.id);
    if (!f) return m;
    fresh.delete(m.id);
    return f;
  });
  // New to the list: in place when it falls within the rows read (all of them, or the first pages in id order).
  const last = machines[machines.length - 1]?.id;
  const join = [...fresh.values()].filter((m) => complete || (last !== undefined && m.id < last));
  if (join.length > 0) machines = [...machines, ...join].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  drawFleet(s);
}

function drawFleet(s: Summary): void {
  summary = s;
  const t = $('#totals');
  t.replaceChildren();
  const item = (label: string, value: string, id: string): void => {
    const s = el('span', { 'data-total': id });
    s.append(el('b', {}, value), document.createTextNode(` ${label}`));
    t.append(s);
  };
  item('online', `${s.online}/${s.machines}`, 'online');
  item('sales today', String(s.today.sales), 'sales');
  item('open alerts', String(s.openAlerts), 'alerts');
  drawKpis(s);
  drawMachineList();
  drawMap();
  charts.refreshFleet();
  // The first screen is drawn (KPIs, list, map): the bench reads this mark (bench/lib/dashboard.ts).
  if (performance.getEntriesByName('vendfleet:first-screen').length === 0) performance.mark('vendfleet:first-screen');
}

/** The fleet's figures at the top; each shows the list behind it when clicked. */
function drawKpis(summary: Summary): void {
  const k = $('#kpis');
  k.replaceChildren();
  const kpi = (id: string, value: string, label: string, go: () => void, bad = false): void => {
    const b = el('button', { type: 'button', class: `kpi${bad ? ' bad' : ''}`, 'data-kpi': id });
    b.append(el('b', {}, value), el('span', {}, label));
    b.addEventListener('click', go);
    k.append(b);
  };
  const show = (f: StateFilter, text = ''): (() => void) => () => {
    $<HTMLSelectElement>('#state-filter').value = f;
    $<HTMLInputElement>('#filter').value = text;
    redrawMachineList();
    $('#machines').scrollIntoView({ block: 'start' });
  };
  const restock = summary.restockToday;
  // Counted by the gateway (the page holds a page of the list, not every machine).
  const errors = summary.withErrors;
  const offline = summary.offline;
  // null: the gateway is still counting (its first look after a start).
  kpi('restock', restock === null || restock === undefined ? '…' : String(restock), 'need restocking today', show('restock'), (restock ?? 0) > 0);
  kpi('errors', String(errors), 'with errors', show('errors'), errors > 0);
  kpi('offline', String(offline), 'offline', show('offline'), offline > 0);
  const byCurrency = summary.today.revenueByCurrency ?? [];
  const revenue = el('div', { class: 'kpi revenue', 'data-kpi': 'revenue' });
  const figures = el('b');
  byCurrency.forEach((r, i) => {
    if (i > 0) figures.append(document.createTextNode(' · '));
    const a = el('a', { href: '#machines', 'data-currency': r.currency ?? '' }, money(r.revenue, r.currency ? { currency: r.currency, decimals: r.decimals } : null));
    // The machines selling in that currency.
    a.addEventListener('click', (ev) => {
      ev.preventDefault();
      show('all', r.currency ?? '')();
    });
    figures.append(a);
  });
  if (byCurrency.length === 0) figures.append(document.createTextNode('none'));
  revenue.append(figures, el('span', {}, 'revenue today'));
  k.append(revenue);
}

/** Rows the list draws, a page at a time: drawing a big fleet's 10,000 rows at once takes seconds. */
const PAGE_ROWS = 100;
let rowsDrawn = PAGE_ROWS;

function drawMachineList(): void {
  const body = $('#machines tbody');
  body.replaceChildren();
  const state = $<HTMLSelectElement>('#state-filter').value as StateFilter;
  const words = filterWords();
  for (const th of document.querySelectorAll<HTMLElement>('#machines th[data-sort]')) {
    th.setAttribute('aria-sort', th.dataset['sort'] === sortBy ? (sortDown ? 'descending' : 'ascending') : 'none');
  }
  if (!complete && wantsWholeList()) {
    // Filtered or sorted: every machine's row is read first (once; syncFleet), then the list is drawn from it.
    $('#machines-shown').textContent = `reading all ${summary?.machines ?? ''} machines…`;
    syncFleet();
    return;
  }
  // Without every row read, the list is the first rows in id order of the fleet's count.
  const total = complete ? machines.length : (summary?.machines ?? machines.length);
  const key = SORT[sortBy];
  const shown = machines
    .filter((m) => (STATE_TEST[state] ?? STATE_TEST.all)(m))
    .filter((m) => {
      const text = [m.id, m.operator ?? '', m.firmware ?? '', m.money?.currency ?? '', m.online ? 'online' : 'offline', m.location?.address ?? ''].join(' ').toLowerCase();
      return words.every((w) => text.includes(w));
    })
    .sort((a, b) => {
      const x = key(a);
      const y = key(b);
      const c = x < y ? -1 : x > y ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
      return sortDown ? -c : c;
    });
  const count = complete ? shown.length : total;
  $('#machines-shown').textContent = `${count} of ${total} machines`;
  for (const m of shown.slice(0, rowsDrawn)) {
    const tr = el('tr', { 'data-machine': m.id });
    if (m.id === selected) tr.classList.add('selected');
    const n = m.openAlerts ?? 0;
    const st = m.stock;
    const stock = el('td', { 'data-stock': st ? String(st.percent) : '' }, st ? `${st.percent} % (${st.units}/${st.capacity})` : 'not reported');
    if (m.needsRestock) stock.classList.add('low');
    tr.append(
      el('td', {}, m.id),
      el('td', { 'data-operator': m.operator ?? '' }, m.operator ?? '?'),
      el('td', { class: m.online ? 'state-online' : 'state-offline' }, `${m.online ? 'online' : 'offline'}${hasErrors(m) ? ' · errors' : ''}`),
      el('td', {}, ago(m.lastSeen)),
      stock,
      el('td', { 'data-firmware': m.firmware ?? '' }, m.firmware ?? '?'),
    );
    const td = el('td');
    td.append(el('span', { class: `badge${n > 0 ? ' bad' : ''}`, 'data-alerts': String(n) }, String(n)));
    tr.append(td);
    tr.addEventListener('click', () => select(m.id));
    body.append(tr);
  }
  if (count > rowsDrawn) {
    // The rest a page at a time, on request (the filter and the sort reach every machine); pages not read yet are read then.
    const more = el('button', { type: 'button', 'data-more': String(count - rowsDrawn) }, `show ${Math.min(PAGE_ROWS, count - rowsDrawn)} more of ${count - rowsDrawn}`);
    more.addEventListener('click', () => {
      rowsDrawn += PAGE_ROWS;
      if (complete || machines.length >= rowsDrawn) drawMachineList();
      else {
        more.setAttribute('disabled', '');
        more.textContent = 'reading…';
        loadMoreRows().then(drawMachineList, (e: unknown) => (e instanceof Unauthorized ? signOut(e.message) : console.warn(e)));
      }
    });
    const td = el('td', { colspan: '7' });
    td.append(more);
    const tr = el('tr', { class: 'more' });
    tr.append(td);
    body.append(tr);
  }
}

/** The list from its first page again (a new filter or sort). */
function redrawMachineList(): void {
  rowsDrawn = PAGE_ROWS;
  drawMachineList();
}

/** A machine's row as read (the list's, or one read for it alone when it was opened from the map). */
const rowOf = (id: string | undefined): MachineRow | undefined => (id === undefined ? undefined : (machines.find((m) => m.id === id) ?? extraRows.get(id)));
/** The selected machine's money, from its row (null: it has not said). */
const moneyOfSelected = (): Money | null => rowOf(selected)?.money ?? null;

/** The map's colour for a machine: the worst of offline, with errors, needing restock (STATE_TEST), else online. */
const mapState = (m: MachineRow): MapState => (!STATE_TEST.online(m) ? 'offline' : STATE_TEST.errors(m) ? 'errors' : STATE_TEST.restock(m) ? 'restock' : 'online');

/** The fleet on the map (map.ts) and its slots' levels (heatmap.ts). */
function drawMap(): void {
  const shown = points.filter((m) => Number.isFinite(m.lat) && Number.isFinite(m.lon));
  $('#map-empty').hidden = shown.length > 0 || (summary?.machines ?? 0) === 0;
  theMap.draw(shown, selected);
  heatmap.refresh(selected);
}

// ---- one machine ------------------------------------------------------------------------------

function select(id: string): void {
  selected = id;
  $('#machine').hidden = false;
  $('#machine-title').textContent = id;
  drawMachineList();
  drawMap();
  refreshMachine();
  refreshCommands();
  refreshAlerts();
  refreshAudits();
  // The sales chart needs the machine's money: from its row, read first when the list has not read it.
  if (rowOf(id)) refreshChart();
  else {
    api<{ machines: MachineRow[] }>(`/machines?ids=${encodeURIComponent(id)}`)
      .then((r) => {
        for (const m of r.machines) extraRows.set(m.id, m);
      })
      .catch((e: unknown) => console.warn(e))
      .finally(() => {
        if (selected === id) refreshChart();
      });
  }
}

const refreshMachine = serial(async () => {
  const id = selected;
  if (!id) return;
  const [m, slots, coins] = await Promise.all([
    api<{ online: boolean; lastSeen: string | null; firmware: string | null; telemetry: { currency?: unknown; decimals?: unknown } | null }>(`/machines/${id}`),
    api<{ slots: SlotRow[] }>(`/machines/${id}/slots`),
    api<{ denominations: { value: number; count: number }[] }>(`/machines/${id}/denominations`).catch(() => ({ denominations: [] })),
  ]);
  if (id !== selected) return;
  const cur = m.telemetry?.currency;
  const dec = m.telemetry?.decimals;
  // As the gateway reads it (gateway/store/machines.ts moneyOf): the machine's own word, else the list's.
  const mm: Money | null =
    typeof cur === 'string' && /^[A-Z]{3}$/.test(cur) ? { currency: cur, decimals: typeof dec === 'number' && Number.isInteger(dec) && dec >= 0 && dec <= 3 ? dec : 2 } : moneyOfSelected();
  $('#machine-title').textContent = `${id} · ${m.online ? 'online' : 'offline'} · last seen ${ago(m.lastSeen)} · firmware ${m.firmware ?? 'unknown'}${mm ? ` · ${mm.currency}` : ''}`;
  const p = $('#planogram');
  p.replaceChildren();
  for (const s of slots.slots) {
    const cap = s.capacity ?? Math.max(s.quantity, 1);
    const level = s.quantity === 0 ? 'empty' : s.quantity * 5 <= cap ? 'low' : 'ok';
    const d = el('div', { class: `slot ${level}${s.outOfService ? ' fault' : ''}`, 'data-slot': s.slot, 'data-qty': String(s.quantity) });
    d.append(el('div', { class: 'code' }, `${s.slot} · ${money(s.price, mm)}`), el('div', {}, s.product ?? ''), el('div', {}, `${s.quantity}/${cap}${s.outOfService ? ' · out of service' : ''}`));
    const bar = el('div', { class: 'bar' });
    const fill = el('span');
    fill.style.width = `${Math.round((100 * s.quantity) / cap)}%`;
    bar.append(fill);
    d.append(bar);
    p.append(d);
  }
  const t = $('#tubes');
  t.replaceChildren();
  for (const c of coins.denominations) {
    const row = el('div', { class: 'tube', 'data-coin': String(c.value) });
    const bar = el('div', { class: 'bar' });
    const fill = el('span');
    // Tubes hold roughly 60 to 100 coins; full scale at 80.
    fill.style.width = `${Math.min(100, Math.round((100 * c.count) / 80))}%`;
    bar.append(fill);
    row.append(el('span', {}, money(c.value, mm)), bar, el('span', {}, `${c.count} · ${money(c.value * c.count, mm)}`));
    t.append(row);
  }
  if (coins.denominations.length === 0) t.append(el('p', {}, 'no coin changer reported'));
  catalog.machine(id);
});

// Sales, revenue, coin tubes and temperature over the range picked (charts.ts, uPlot).
const charts = chartPanel({ api: (path) => api(path), $, el, serial, money, selected: () => selected, moneyOfSelected, fleetMoney: () => summary?.currencies ?? [] });
const refreshChart = charts.refresh;

const refreshAlerts = serial(async () => {
  const id = selected;
  if (!id) return;
  const r = await api<{ alerts: Alert[] }>(`/machines/${id}/alerts`).catch(() => ({ alerts: [] as Alert[] }));
  const ul = $('#alerts');
  ul.replaceChildren();
  for (const a of r.alerts.filter((x) => !x.closedAt)) ul.append(el('li', { class: a.severity, 'data-kind': a.kind, 'data-subject': a.subject }, `${a.kind}${a.subject ? ` ${a.subject}` : ''}: ${a.message} (since ${ago(a.openedAt)})`));
  if (ul.childElementCount === 0) ul.append(el('li', {}, 'no open alerts'));
});

const refreshCommands = serial(async () => {
  const id = selected;
  if (!id) return;
  const r = await api<{ commands: Command[] }>(`/machines/${id}/commands?limit=8`);
  const ul = $('#commands');
  ul.replaceChildren();
  for (const c of r.commands) {
    // What the machine said, without the event's bookkeeping (numbers, times).
    const o = c.outcome ?? {};
    const said = ['reason', 'value', 'remaining'].filter((k) => o[k] !== undefined).map((k) => `${k} ${typeof o[k] === 'object' && o[k] !== null ? JSON.stringify(o[k]) : String(o[k])}`);
    const outcome = said.length > 0 ? ` · ${said.join(', ')}` : '';
    ul.append(el('li', { 'data-command': c.id, 'data-status': c.status, class: `status-${c.status}` }, `#${c.n} ${c.type}: ${c.status}${outcome}`));
  }
});

const refreshAudits = serial(async () => {
  const id = selected;
  if (!id) return;
  const r = await api<{ audits: Audit[] }>(`/machines/${id}/audits?limit=5`);
  const ul = $('#audits');
  ul.replaceChildren();
  for (const a of r.audits) {
    const li = el('li', { 'data-audit': String(a.id) });
    const link = el('a', { href: '#', 'data-download': String(a.id) }, `read ${a.readNumber ?? '?'} · ${new Date(a.receivedAt).toLocaleString()} · CRC ${a.crc}`);
    link.addEventListener('click', (ev) => {
      ev.preventDefault();
      void download(a.id, `${id}-${a.id}.dex`);
    });
    li.append(link);
    ul.append(li);
  }
  if (r.audits.length === 0) ul.append(el('li', {}, 'no audit files yet'));
});

/** The file needs the token, so it comes through fetch and leaves as a blob. */
async function download(auditId: number, name: string): Promise<void> {
  const res = await fetch(`/audits/${auditId}/dex`, { headers: { authorization: `Bearer ${token}` } });
  const blob = await res.blob();
  const a = el('a', { href: URL.createObjectURL(blob), download: name }) as HTMLAnchorElement;
  document.body.append(a);
  a.click();
  a.remove();
}

async function sendCommand(type: string, args: unknown): Promise<void> {
  if (!selected) return;
  await api<Command>(`/machines/${selected}/commands`, { method: 'POST', body: JSON.stringify({ type, args }) });
  refreshCommands();
}

// ---- the route --------------------------------------------------------------------------------

const route = routePanel({ api: (path) => api(path), $, el, serial, drawRoute: (r) => theMap.route(r) });

// ---- firmware rollouts ------------------------------------------------------------------------

const rollouts = rolloutPanel({ api: (path) => api(path), $, el, serial });
const theMap = fleetMap($('#map'), (id) => select(id), $('#map-legend'));
const heatmap = heatmapPanel({ api: (path) => api(path), $, el, serial, select: (id) => select(id) });
const catalog = catalogPanel({ api: (path, init) => api(path, init), authorization: () => `Bearer ${token}`, $, el, serial });

// ---- live updates -----------------------------------------------------------------------------

let stream: AbortController | undefined;
/** The stream was connected before (a sign-in reads the whole fleet itself). */
let streamedBefore = false;

async function live(): Promise<void> {
  const badge = $('#live');
  for (;;) {
    stream = new AbortController();
    try {
      const res = await fetch('/stream', { headers: { authorization: `Bearer ${token}` }, signal: stream.signal });
      if (res.status === 401) return signOut('the token was refused');
      if (!res.body) throw new Error('no stream');
      badge.classList.add('on');
      // Back after the stream was away: what changed meanwhile was not told, so the whole fleet is read again.
      if (streamedBefore) {
        fullWanted = true;
        syncFleet();
      }
      streamedBefore = true;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let cut: number;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const msg = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const lines = msg.split('\n');
          // The token was revoked while the page was open: the server ends the stream after saying so.
          if (lines.includes('event: revoked')) return signOut('the token was revoked');
          const data = lines.find((l) => l.startsWith('data: '));
          if (data) changed(JSON.parse(data.slice(6)) as Change);
        }
      }
    } catch (e) {
      if (stream.signal.aborted) return;
      console.warn(e);
    }
    badge.classList.remove('on');
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function changed(c: Change): void {
  // The rows of the machines that changed (their state, sales or alerts), and the totals: not the whole list.
  for (const id of [...c.machines, ...c.sales, ...c.alerts]) changedMachines.add(id);
  if (changedMachines.size > 0) syncFleet();
  if ((c.rollouts ?? []).length > 0) rollouts.refresh();
  const me = selected;
  if (!me) return;
  if (c.machines.includes(me)) {
    refreshMachine();
    charts.refreshTelemetry();
  }
  if (c.sales.includes(me)) refreshChart();
  if (c.commands.some((x) => x.machine === me)) refreshCommands();
  if (c.alerts.includes(me)) refreshAlerts();
  if (c.audits.some((x) => x.machine === me)) refreshAudits();
}

// ---- sign in and out --------------------------------------------------------------------------

function signOut(why = ''): void {
  stream?.abort();
  token = '';
  sessionStorage.removeItem('vendfleet-token');
  $('#app').hidden = true;
  $('#login').hidden = false;
  $('#login-error').textContent = why;
}

async function signIn(): Promise<void> {
  // Whose machines the page shows: the token's operator's (the API answers nothing else), or every operator's.
  let me: { name: string; role: string; operator: string | null };
  try {
    me = await api('/me');
  } catch (e) {
    return signOut((e as Error).message);
  }
  $('#who').textContent = me.operator === null ? `${me.name}: platform admin, every operator` : `${me.name}: operator ${me.operator} (${me.role})`;
  sessionStorage.setItem('vendfleet-token', token);
  $('#login').hidden = true;
  $('#app').hidden = false;
  fullWanted = true;
  streamedBefore = false;
  syncFleet();
  rollouts.refresh();
  catalog.setRole(me.role);
  catalog.refresh();
  void live();
}

$('#login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = $<HTMLInputElement>('#token').value.trim();
  void signIn();
});
$('#logout').addEventListener('click', () => signOut());
$('#filter').addEventListener('input', () => redrawMachineList());
$('#state-filter').addEventListener('change', () => redrawMachineList());
for (const th of document.querySelectorAll<HTMLElement>('#machines th[data-sort]')) {
  // Clicking the column sorted by turns the order round.
  th.addEventListener('click', () => {
    const k = th.dataset['sort'] as SortKey;
    sortDown = k === sortBy ? !sortDown : false;
    sortBy = k;
    redrawMachineList();
  });
}
$('#command').addEventListener('submit', (ev) => {
  ev.preventDefault();
  let args: unknown = {};
  const text = $<HTMLTextAreaElement>('#command-args').value.trim();
  try {
    args = text ? JSON.parse(text) : {};
  } catch {
    $('#commands').prepend(el('li', { class: 'error' }, 'the arguments are not JSON'));
    return;
  }
  sendCommand($<HTMLSelectElement>('#command-type').value, args).catch((e: Error) => $('#commands').prepend(el('li', { class: 'error' }, e.message)));
});
$('#read-audit').addEventListener('click', () => {
  sendCommand('audit', {}).catch((e: Error) => $('#audits').prepend(el('li', { class: 'error' }, e.message)));
});
$('#route-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  void route.plan();
});
// Ages on the page ("12 s ago") move on even when nothing changes; every 20th beat (5 minutes) the whole fleet is
// read again, for what no change reports (the forecasts' restockToday as their rates move on).
let beats = 0;
setInterval(() => {
  if (!token || $('#app').hidden) return;
  beats += 1;
  if (beats % 20 === 0) {
    fullWanted = true;
    syncFleet();
  } else drawMachineList();
  rollouts.refresh();
}, 15000);

if (token) void signIn();
else signOut();
