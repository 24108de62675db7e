/**
 * The dashboard's inventory heatmap (browser side): a row per machine, a
 * cell per slot, coloured by how full the slot is (quantity / capacity).
 * The emptiest machines come first, at most ROWS of them, all from one
 * GET /inventory (which orders them by the stock GET /machines gives); a
 * line says how many fuller machines are left out. Clicking a row opens
 * the machine.
 */

interface Levels {
  id: string;
  stock: { units: number; capacity: number; percent: number } | null;
  slots: SlotRow[];
}
interface SlotRow {
  slot: string;
  product: string | null;
  quantity: number;
  capacity: number | null;
  outOfService: boolean;
}
export interface HeatmapTools {
  api<T>(path: string): Promise<T>;
  $(selector: string): HTMLElement;
  el(tag: string, attrs?: Record<string, string>, text?: string): HTMLElement;
  serial(fn: () => Promise<void>): () => void;
  select(id: string): void;
}

/** Rows drawn at most: the emptiest machines are the ones to see. */
export const ROWS = 24;
/** The slots' levels are asked again at most this often (the fleet's list changes with every sale). */
const EVERY_MS = 10000;

/** Fill bands, emptiest first: the cell's class and the legend's words. */
const BANDS = [
  { max: 0, cls: 'fill-0', words: 'empty (0 %)' },
  { max: 24, cls: 'fill-1', words: '1-24 %' },
  { max: 49, cls: 'fill-2', words: '25-49 %' },
  { max: 74, cls: 'fill-3', words: '50-74 %' },
  { max: 100, cls: 'fill-4', words: '75-100 %' },
] as const;

/** A slot's fill in whole percent (no capacity reported: its quantity is all it holds, as the planogram draws it). */
export const fillPercent = (s: Pick<SlotRow, 'quantity' | 'capacity'>): number => {
  const room = s.capacity !== null && s.capacity > 0 ? s.capacity : Math.max(s.quantity, 1);
  return Math.max(0, Math.min(100, Math.round((100 * Math.max(s.quantity, 0)) / room)));
};

/** Slot codes in planogram order: row letter, then number (A2 before A10). */
const slotOrder = (a: string, b: string): number => a.localeCompare(b, 'en', { numeric: true });

export function heatmapPanel(t: HeatmapTools): { refresh(selected: string | undefined): void } {
  let selected: string | undefined;
  let last = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const legend = t.$('#heatmap-legend');
  legend.replaceChildren(t.el('span', { class: 'what' }, 'slot fill:'));
  for (const b of BANDS) {
    const k = t.el('span', { class: 'key', 'data-band': b.cls });
    k.append(t.el('i', { class: `swatch ${b.cls}` }), document.createTextNode(b.words));
    legend.append(k);
  }
  const oos = t.el('span', { class: 'key' });
  oos.append(t.el('i', { class: 'swatch fault' }), document.createTextNode('out of service'));
  legend.append(oos);

  const load = t.serial(async () => {
    last = Date.now();
    // The emptiest first; machines that never reported stock after them (nothing to colour yet).
    const r = await t.api<{ machines: Levels[]; total: number }>(`/inventory?limit=${ROWS}`);
    const shown = r.machines;
    const codes = [...new Set(shown.flatMap((m) => m.slots.map((x) => x.slot)))].sort(slotOrder);
    const table = t.$('#heatmap');
    table.replaceChildren();
    const head = t.el('tr');
    head.append(t.el('th', {}, 'machine'), t.el('th', {}, 'stock'));
    for (const c of codes) head.append(t.el('th', { class: 'slot-code' }, c));
    const thead = t.el('thead');
    thead.append(head);
    const body = t.el('tbody');
    for (const m of shown) {
      const tr = t.el('tr', { 'data-machine': m.id, 'data-percent': m.stock ? String(m.stock.percent) : '' });
      if (m.id === selected) tr.classList.add('selected');
      tr.append(t.el('th', { scope: 'row' }, m.id), t.el('td', { class: 'total' }, m.stock ? `${m.stock.percent} %` : 'not reported'));
      const mine = new Map(m.slots.map((s) => [s.slot, s]));
      for (const c of codes) {
        const s = mine.get(c);
        if (!s) {
          tr.append(t.el('td', { class: 'cell none', title: `${m.id} ${c}: no such slot` }));
          continue;
        }
        const p = fillPercent(s);
        const band = BANDS.find((b) => p <= b.max) ?? BANDS[BANDS.length - 1];
        const room = s.capacity !== null && s.capacity > 0 ? String(s.capacity) : '?';
        const title = `${m.id} ${c}${s.product ? ` ${s.product}` : ''}: ${Math.max(s.quantity, 0)}/${room} (${p} %)${s.outOfService ? ', out of service' : ''}`;
        tr.append(t.el('td', { class: `cell ${band.cls}${s.outOfService ? ' fault' : ''}`, 'data-slot': c, 'data-fill': String(p), title }, String(p)));
      }
      tr.addEventListener('click', () => t.select(m.id));
      body.append(tr);
    }
    table.append(thead, body);
    const rest = r.total - shown.length;
    t.$('#heatmap-rest').textContent =
      r.total === 0 ? 'no machines' : rest > 0 ? `the ${shown.length} emptiest of ${r.total} machines; ${rest} fuller machine${rest === 1 ? '' : 's'} not shown` : `${shown.length} machine${shown.length === 1 ? '' : 's'}, emptiest first`;
  });

  return {
    refresh(sel) {
      const moved = sel !== selected;
      selected = sel;
      if (moved) for (const tr of document.querySelectorAll<HTMLElement>('#heatmap tbody tr')) tr.classList.toggle('selected', tr.dataset['machine'] === sel);
      const wait = last + EVERY_MS - Date.now();
      if (wait <= 0) return load();
      // Asked for again soon after: once, when the interval is up.
      timer ??= setTimeout(() => {
        timer = undefined;
        load();
      }, wait);
    },
  };
}
