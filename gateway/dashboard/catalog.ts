/**
 * The dashboard's product catalog (browser side): the operator's products
 * with their default prices and images, a form to add one or change one
 * (admins), and for the selected machine, its planogram as the catalog sees
 * it (each slot's product, this machine's price, whether the machine charges
 * it yet) with a form to assign a product to a slot (operators and admins).
 * From GET/POST/PUT /products, PUT /products/{sku}/image and
 * GET/PUT /machines/{id}/planogram; drawn with the page's helpers.
 */

interface Product {
  sku: string;
  name: string;
  category: string | null;
  price: number;
  currency: string;
  image: string | null;
  imageType: string | null;
}
interface PlanogramSlot {
  slot: string;
  sku: string | null;
  name: string | null;
  price: number | null;
  currency: string | null;
  machinePrice: number | null;
  pending: boolean;
}
interface Planogram {
  machine: string;
  currency: string | null;
  slots: PlanogramSlot[];
  command?: { id: string; prices: Record<string, number> } | null;
  unsent?: string | null;
}

export interface CatalogTools {
  api<T>(path: string, init?: RequestInit): Promise<T>;
  /** The Authorization header's value (images are fetched with it, then shown as data: URLs). */
  authorization(): string;
  $(selector: string): HTMLElement;
  el(tag: string, attrs?: Record<string, string>, text?: string): HTMLElement;
  serial(fn: () => Promise<void>): () => void;
}

/** A currency's minor-unit digits as the browser knows them (JPY 0, USD 2, BHD 3); 2 if it does not. */
function digits(currency: string): number {
  try {
    return new Intl.NumberFormat('en-US', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

/** Minor units as people read them: "USD 1.50". */
export function price(minor: number | null, currency: string | null): string {
  if (minor === null || !Number.isFinite(minor)) return '-';
  if (!currency) return `${minor} (minor units)`;
  const d = digits(currency);
  const unit = 10 ** d;
  const frac = d > 0 ? `.${String(minor % unit).padStart(d, '0')}` : '';
  return `${currency} ${Math.floor(minor / unit).toLocaleString('en-US')}${frac}`;
}

/** A price as typed ("1.5", "1.50", "2") in minor units of `currency`, exactly (no float), or a reason it is not one. */
export function parsePrice(text: string, currency: string): number | string {
  const d = digits(currency);
  const m = /^(\d{1,7})(?:\.(\d*))?$/.exec(text.trim());
  if (!m || (m[2] !== undefined && m[2].length > d)) return `a price in ${currency} is a number with at most ${d} decimals, e.g. ${d > 0 ? `1.${'5'.padEnd(d, '0')}` : '150'}`;
  const minor = Number(m[1]) * 10 ** d + Number((m[2] ?? '').padEnd(d, '0') || '0');
  if (minor < 1 || minor > 1_000_000) return `a price is from ${price(1, currency)} to ${price(1_000_000, currency)}`;
  return minor;
}

export function catalogPanel(t: CatalogTools): { refresh: () => void; machine: (id: string) => void; setRole: (role: string) => void } {
  let products: Product[] = [];
  let editing: string | undefined;
  let role = 'viewer';
  let machineId: string | undefined;
  const images = new Map<string, string>();

  const error = (selector: string, message: string): void => {
    t.$(selector).textContent = message;
  };

  /** An uploaded image, fetched with the token, as a data: URL (the page's CSP takes its own origin and data: only). */
  const thumbnail = async (p: Product, into: HTMLElement): Promise<void> => {
    if (!p.image) return;
    if (!p.image.startsWith('/')) {
      // An image elsewhere is not loaded into the page: a link to it.
      into.append(t.el('a', { href: p.image, rel: 'noopener noreferrer', target: '_blank' }, 'image'));
      return;
    }
    let src = images.get(p.image);
    if (src === undefined) {
      const res = await fetch(p.image, { headers: { authorization: t.authorization() } });
      if (!res.ok) return;
      const blob = await res.blob();
      src = await new Promise<string>((resolve, reject) => {
        const r = new FileReader();
        r.onload = () => resolve(String(r.result));
        r.onerror = () => reject(new Error('the image could not be read'));
        r.readAsDataURL(blob);
      });
      images.set(p.image, src);
    }
    into.append(t.el('img', { src, alt: p.name, class: 'thumb' }));
  };

  const fill = (p: Product | undefined): void => {
    editing = p?.sku;
    const f = t.$('#product-form') as HTMLFormElement;
    (f.elements.namedItem('sku') as HTMLInputElement).value = p?.sku ?? '';
    (f.elements.namedItem('sku') as HTMLInputElement).readOnly = p !== undefined;
    (f.elements.namedItem('name') as HTMLInputElement).value = p?.name ?? '';
    (f.elements.namedItem('category') as HTMLInputElement).value = p?.category ?? '';
    (f.elements.namedItem('currency') as HTMLInputElement).value = p?.currency ?? 'USD';
    (f.elements.namedItem('price') as HTMLInputElement).value = p ? price(p.price, p.currency).replace(/^[A-Z]{3} /, '').replace(/,/g, '') : '';
    (f.elements.namedItem('image') as HTMLInputElement).value = '';
    t.$('#product-save').textContent = p ? `Save ${p.sku}` : 'Add product';
    error('#catalog-error', '');
  };

  const refresh = t.serial(async () => {
    const r = await t.api<{ products: Product[] }>('/products');
    products = r.products;
    const body = t.$('#catalog tbody');
    body.replaceChildren();
    for (const p of products) {
      const tr = t.el('tr', { 'data-sku': p.sku });
      if (p.sku === editing) tr.classList.add('selected');
      const img = t.el('td');
      tr.append(t.el('td', {}, p.sku), t.el('td', {}, p.name), t.el('td', {}, p.category ?? '-'), t.el('td', { class: 'num' }, price(p.price, p.currency)), img);
      void thumbnail(p, img).catch(() => img.append(t.el('span', { class: 'error' }, 'image not loaded')));
      tr.addEventListener('click', () => {
        if (role !== 'admin') return;
        fill(p);
        for (const x of body.querySelectorAll('tr')) x.classList.toggle('selected', x === tr);
      });
      body.append(tr);
    }
    if (products.length === 0) {
      const tr = t.el('tr');
      tr.append(t.el('td', { colspan: '5' }, 'no products yet'));
      body.append(tr);
    }
    t.$('#product-form').hidden = role !== 'admin';
    drawAssignChoices();
  });

  const save = async (): Promise<void> => {
    const f = t.$('#product-form') as HTMLFormElement;
    const value = (n: string): string => (f.elements.namedItem(n) as HTMLInputElement).value.trim();
    const currency = value('currency').toUpperCase();
    if (!/^[A-Z]{3}$/.test(currency)) return error('#catalog-error', 'the currency is a three-letter code, e.g. USD');
    const minor = parsePrice(value('price'), currency);
    if (typeof minor === 'string') return error('#catalog-error', minor);
    const fields = { name: value('name'), category: value('category') === '' ? null : value('category'), price: minor, currency };
    const sku = editing ?? value('sku');
    try {
      if (editing) await t.api(`/products/${encodeURIComponent(sku)}`, { method: 'PUT', body: JSON.stringify(fields) });
      else await t.api('/products', { method: 'POST', body: JSON.stringify({ sku, ...fields }) });
      const file = (f.elements.namedItem('image') as HTMLInputElement).files?.[0];
      if (file) await t.api(`/products/${encodeURIComponent(sku)}/image`, { method: 'PUT', body: file, headers: { 'content-type': 'application/octet-stream' } });
    } catch (e) {
      return error('#catalog-error', (e as Error).message);
    }
    fill(undefined);
    refresh();
    if (machineId) machine(machineId);
  };

  /** The assignment form's product choices: the catalog. */
  const drawAssignChoices = (): void => {
    const sel = t.$('#assign-sku');
    const was = (sel as HTMLSelectElement).value;
    sel.replaceChildren(t.el('option', { value: '' }, '(no product)'));
    for (const p of products) sel.append(t.el('option', { value: p.sku }, `${p.sku} · ${p.name} · ${price(p.price, p.currency)}`));
    (sel as HTMLSelectElement).value = products.some((p) => p.sku === was) ? was : '';
  };

  const drawPlanogram = (g: Planogram): void => {
    const body = t.$('#planogram-catalog tbody');
    body.replaceChildren();
    const slotSel = t.$('#assign-slot') as HTMLSelectElement;
    const was = slotSel.value;
    slotSel.replaceChildren();
    for (const s of g.slots) {
      const tr = t.el('tr', { 'data-slot': s.slot, ...(s.sku ? { 'data-sku': s.sku } : {}) });
      // Pending: the machine charges another price (a set-prices on its way, or one sent by hand since).
      const state = s.price === null ? '' : s.pending ? `machine charges ${price(s.machinePrice, g.currency)}` : 'charged';
      tr.append(t.el('td', {}, s.slot), t.el('td', {}, s.sku ? `${s.name ?? ''} (${s.sku})` : `${s.name ?? '-'} (not in the catalog)`), t.el('td', { class: 'num' }, price(s.price ?? s.machinePrice, g.currency)), t.el('td', { class: s.pending ? 'pending' : '' }, state));
      body.append(tr);
      slotSel.append(t.el('option', { value: s.slot }, s.slot));
      // The tile the machine panel drew for this slot says the catalog's name too.
      const tile = document.querySelector(`#planogram [data-slot="${s.slot}"]`);
      if (tile && s.sku) {
        tile.querySelector('.catalog-name')?.remove();
        tile.append(t.el('div', { class: 'catalog-name', 'data-sku': s.sku }, s.name ?? s.sku));
      }
    }
    if (g.slots.length === 0) {
      const tr = t.el('tr');
      tr.append(t.el('td', { colspan: '4' }, 'the machine has reported no slots yet'));
      body.append(tr);
    }
    slotSel.value = g.slots.some((s) => s.slot === was) ? was : (g.slots[0]?.slot ?? '');
    t.$('#assign-form').hidden = role === 'viewer' || g.slots.length === 0;
  };

  const machine = (id: string): void => {
    machineId = id;
    void t
      .api<Planogram>(`/machines/${encodeURIComponent(id)}/planogram`)
      .then((g) => {
        if (machineId === id) drawPlanogram(g);
      })
      .catch((e: Error) => error('#assign-error', e.message));
  };

  const assign = async (): Promise<void> => {
    const id = machineId;
    if (!id) return;
    const slot = (t.$('#assign-slot') as HTMLSelectElement).value;
    const sku = (t.$('#assign-sku') as HTMLSelectElement).value;
    const typed = (t.$('#assign-price') as HTMLInputElement).value.trim();
    const product = products.find((p) => p.sku === sku);
    const change: Record<string, unknown> = { slot, sku: sku === '' ? null : sku };
    if (typed !== '') {
      const minor = parsePrice(typed, product?.currency ?? 'USD');
      if (typeof minor === 'string') return error('#assign-error', minor);
      change['price'] = minor;
    }
    try {
      const g = await t.api<Planogram>(`/machines/${encodeURIComponent(id)}/planogram`, { method: 'PUT', body: JSON.stringify({ slots: [change] }) });
      const sent = g.command ? `sent ${Object.entries(g.command.prices).map(([s, p]) => `${s} ${price(p, g.currency)}`).join(', ')} to the machine` : g.unsent ? `prices not sent: ${g.unsent}` : 'no price to change';
      error('#assign-error', '');
      t.$('#assign-result').textContent = `${slot}: ${sku === '' ? 'no product' : sku}; ${sent}`;
      if (machineId === id) drawPlanogram(g);
    } catch (e) {
      error('#assign-error', (e as Error).message);
    }
  };

  t.$('#product-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void save();
  });
  t.$('#product-new').addEventListener('click', () => fill(undefined));
  t.$('#assign-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void assign();
  });
  return {
    refresh,
    machine,
    setRole: (r: string) => {
      role = r;
    },
  };
}
