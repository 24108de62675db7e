/**
 * The route driver's page (served at /driver#dl_...): today's stops in order,
 * what to load into the van, each machine's pick list, and per slot a
 * "Restocked" button. A tap is kept in localStorage until the gateway has it,
 * so taps made with no signal are sent when the phone is back online; the
 * gateway answers a slot tapped twice with its first command, so a resend
 * never restocks twice.
 */

// name and catalogSku are absent from links made before pick lists named catalog products: the machine's label then.
interface PickLine { slot: string; name?: string | null; catalogSku?: string | null; product: string | null; sku: number | null; qty: number; capacity: number | null; load: number; fault: boolean }
interface Stop { stop: number; machine: string; address: string | null; legKm: number; picklist: { lines: PickLine[]; units: number } }
interface Total { name?: string | null; catalogSku?: string | null; sku: number | null; product: string | null; units: number; machines: number }
interface RouteAnswer { name: string; expiresAt: string; route: { generatedAt: string; stops: Stop[]; totals: Total[]; totalKm: number; units: number }; restocks: { machine: string; slot: string; command: string; status: string }[] }
interface Outcome { command: string; machine: string; slot: string; status: string; reason: string | null }
interface SlotState { state: string; command?: string; reason?: string | null }

const FINAL = new Set(['applied', 'stale', 'refused', 'failed', 'interrupted', 'unsupported', 'rejected', 'expired', 'cancelled', 'error']);
const secret = decodeURIComponent(location.hash.slice(1));
// Taps not yet taken by the gateway, per link (named by its route's name, planning time and end: never by the secret).
let queueKey = 'vf-driver-queue';
const states = new Map<string, SlotState>();
const keyOf = (machine: string, slot: string): string => `${machine}/${slot}`;

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function fail(text: string): void {
  const m = $('message');
  m.textContent = text;
  m.hidden = false;
  $('app').hidden = true;
}

function queue(): { machine: string; slot: string }[] {
  try {
    const q = JSON.parse(localStorage.getItem(queueKey) ?? '[]') as unknown;
    return Array.isArray(q) ? (q as { machine: string; slot: string }[]) : [];
  } catch {
    return [];
  }
}
const saveQueue = (q: { machine: string; slot: string }[]): void => localStorage.setItem(queueKey, JSON.stringify(q));

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${secret}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: (await res.json().catch(() => ({}))) as Record<string, unknown> };
}

function stateText(s: SlotState, line: PickLine | undefined): string {
  switch (s.state) {
    case 'waiting': return 'waiting to send (no connection)';
    case 'sending': return 'sending…';
    case 'queued': return 'sent: waiting for the machine to come online';
    case 'delivered': return 'sent: waiting for the machine';
    case 'applied': return `restocked: the machine counts ${line?.capacity ?? 'a full slot'}`;
    case 'stale': return 'already restocked by a newer command';
    case 'error': return `not sent: ${s.reason ?? 'error'}`;
    default: return `${s.state}${s.reason ? `: ${s.reason}` : ''}`;
  }
}

let route: RouteAnswer | undefined;

function paintSlot(machine: string, slot: string): void {
  const row = document.querySelector<HTMLElement>(`.line[data-machine="${CSS.escape(machine)}"][data-slot="${CSS.escape(slot)}"]`);
  if (!row) return;
  const s = states.get(keyOf(machine, slot));
  const line = route?.route.stops.find((x) => x.machine === machine)?.picklist.lines.find((l) => l.slot === slot);
  const out = row.querySelector<HTMLElement>('.state')!;
  const button = row.querySelector<HTMLButtonElement>('button')!;
  out.textContent = s ? stateText(s, line) : '';
  out.className = `state${s ? ` state-${s.state}` : ''}`;
  out.dataset['state'] = s?.state ?? '';
  // Tappable again only when nothing was restocked (a refusal, an error): the gateway would answer the same command anyway.
  button.disabled = s !== undefined && !['refused', 'failed', 'interrupted', 'unsupported', 'rejected', 'expired', 'cancelled', 'error'].includes(s.state);
}

function render(r: RouteAnswer): void {
  $('title').textContent = `${r.name}: ${r.route.stops.length} stop${r.route.stops.length === 1 ? '' : 's'}, ${r.route.totalKm.toFixed(1)} km`;
  const load = $('load');
  load.replaceChildren();
  for (const t of r.route.totals) {
    const li = el('li');
    // One line per catalog product (its SKU is what the shelf at the depot is labelled with), else per machine label.
    const what = el('span', undefined, 'what');
    what.append(el('span', t.name ?? t.product ?? (t.sku !== null ? `item ${t.sku}` : 'unnamed product'), 'name'));
    if (t.catalogSku) what.append(el('span', `SKU ${t.catalogSku}`, 'sku'));
    li.append(what, el('b', `${t.units} × (${t.machines} machine${t.machines === 1 ? '' : 's'})`));
    load.append(li);
  }
  if (r.route.totals.length === 0) load.append(el('li', 'nothing to load'));
  const stops = $('stops');
  stops.replaceChildren();
  for (const s of r.route.stops) {
    const li = el('li', undefined, 'stop');
    li.dataset['machine'] = s.machine;
    li.append(el('h2', `${s.stop}. ${s.machine}`), el('div', `${s.address ?? 'no address'} · ${s.legKm.toFixed(1)} km · ${s.picklist.units} to load`, 'where'));
    const lines = el('ul');
    for (const l of s.picklist.lines) {
      const row = el('li', undefined, 'line');
      row.dataset['machine'] = s.machine;
      row.dataset['slot'] = l.slot;
      // Text nodes only (textContent): a product's name is shown as written, never read as markup.
      const what = el('div', undefined, 'what');
      what.append(el('span', l.name ?? l.product ?? 'unnamed', 'name'));
      if (l.catalogSku) what.append(el('span', ` · SKU ${l.catalogSku}`, 'sku'));
      what.append(`: load ${l.load} (has ${l.qty} of ${l.capacity ?? '?'})`);
      if (l.fault) what.append(el('div', 'out of service: clear the fault', 'fault'));
      const button = el('button', 'Restocked');
      button.type = 'button';
      if (l.capacity === null) button.disabled = true;
      button.addEventListener('click', () => tap(s.machine, l.slot));
      row.append(el('span', l.slot, 'slot'), what, button, el('div', undefined, 'state'));
      lines.append(row);
    }
    li.append(lines);
    stops.append(li);
  }
  $('app').hidden = false;
  for (const s of r.route.stops) for (const l of s.picklist.lines) paintSlot(s.machine, l.slot);
}

function tap(machine: string, slot: string): void {
  const q = queue();
  if (!q.some((x) => x.machine === machine && x.slot === slot)) q.push({ machine, slot });
  saveQueue(q);
  states.set(keyOf(machine, slot), { state: navigator.onLine ? 'sending' : 'waiting' });
  paintSlot(machine, slot);
  void flush();
}

let flushing = false;
/** Send what is queued, oldest first; stop at the first network failure (try again when online or on the next beat). */
async function flush(): Promise<void> {
  if (flushing || !navigator.onLine) return;
  flushing = true;
  try {
    for (const item of queue()) {
      let answer: { status: number; json: Record<string, unknown> };
      try {
        answer = await api('POST', '/driver/restock', item);
      } catch {
        states.set(keyOf(item.machine, item.slot), { state: 'waiting' });
        paintSlot(item.machine, item.slot);
        return;
      }
      saveQueue(queue().filter((x) => !(x.machine === item.machine && x.slot === item.slot)));
      if (answer.status === 401) return fail(String(answer.json['message'] ?? 'this link no longer works'));
      if (answer.status >= 400) states.set(keyOf(item.machine, item.slot), { state: 'error', reason: String(answer.json['message'] ?? answer.status) });
      else {
        const o = answer.json as unknown as Outcome;
        states.set(keyOf(item.machine, item.slot), { state: o.status, command: o.command, reason: o.reason });
      }
      paintSlot(item.machine, item.slot);
    }
  } finally {
    flushing = false;
  }
}

/** Ask after every sent restock not yet final. */
async function poll(): Promise<void> {
  if (!navigator.onLine) return;
  for (const [k, s] of states) {
    if (!s.command || FINAL.has(s.state)) continue;
    try {
      const r = await api('GET', `/driver/restock/${s.command}`);
      if (r.status === 401) return fail(String(r.json['message'] ?? 'this link no longer works'));
      if (r.status !== 200) continue;
      const o = r.json as unknown as Outcome;
      states.set(k, { state: o.status, command: o.command, reason: o.reason });
      paintSlot(o.machine, o.slot);
    } catch {
      return;
    }
  }
}

function showNet(): void {
  const n = $('net');
  n.textContent = navigator.onLine ? 'online' : 'offline';
  n.classList.toggle('off', !navigator.onLine);
}

async function start(): Promise<void> {
  showNet();
  window.addEventListener('online', () => {
    showNet();
    void flush();
  });
  window.addEventListener('offline', showNet);
  if (!/^dl_[\w-]+$/.test(secret)) return fail('This page needs a driver link: open the link the office sent you.');
  let r: { status: number; json: Record<string, unknown> };
  try {
    r = await api('GET', '/driver/route');
  } catch {
    return fail('No connection: the route could not be loaded. Try again when online.');
  }
  if (r.status !== 200) return fail(String(r.json['message'] ?? `the route could not be loaded (${r.status})`));
  route = r.json as unknown as RouteAnswer;
  queueKey = `vf-driver-queue:${route.name}:${route.route.generatedAt}:${route.expiresAt}`;
  for (const d of route.restocks) states.set(keyOf(d.machine, d.slot), { state: d.status, command: d.command });
  for (const q of queue()) states.set(keyOf(q.machine, q.slot), { state: 'waiting' });
  render(route);
  // Beats: resend what waits (navigator.onLine can say online before the network is back) and follow outcomes.
  setInterval(() => void flush(), 3000);
  setInterval(() => void poll(), 1000);
  void flush();
}

void start();
