/**
 * The dashboard's rollout panel (browser side): the firmware rollouts,
 * newest first, each with its state and a bar of its machines; for the one
 * selected (the newest, until another is clicked), its waves with a bar
 * each, its counts per state, and the machines that rolled back or failed
 * with the reason. Drawn with the page's own helpers (app.ts hands them
 * over), from GET /rollouts and GET /rollouts/{id}.
 */

const STATES = ['pending', 'downloading', 'waiting', 'rebooting', 'confirmed', 'rolled-back', 'failed'] as const;
type Counts = Record<(typeof STATES)[number], number>;

interface Summary {
  id: string;
  image: { sha256: string; version: string };
  target: { kind: string; machines?: string[]; tag?: string; percent?: number };
  state: string;
  wave: number;
  waveCount: number;
  total: number;
  counts: Counts;
  reason: string | null;
  createdAt: string;
}
interface Detail extends Summary {
  waves: { wave: number; percent: number; size: number; counts: Counts; haltAt: number; state: string }[];
  problems: { machine: string; wave: number; state: string; reason: string | null }[];
  active: { machine: string; state: string; percent: number | null }[];
}

export interface PanelTools {
  api<T>(path: string): Promise<T>;
  $(selector: string): HTMLElement;
  el(tag: string, attrs?: Record<string, string>, text?: string): HTMLElement;
  serial(fn: () => Promise<void>): () => void;
}

function target(t: Summary['target']): string {
  if (t.kind === 'machines') return `${t.machines?.length ?? 0} machines`;
  if (t.kind === 'tag') return `tag ${t.tag ?? ''}`;
  if (t.kind === 'percent') return `${t.percent ?? 0} % of the fleet`;
  return 'every machine';
}

export function rolloutPanel(t: PanelTools): { refresh: () => void } {
  let chosen: string | undefined;

  /** A bar of the machines: confirmed, failed or rolled back, under way; the rest is not started. */
  const bar = (c: Counts, size: number): HTMLElement => {
    const b = t.el('div', { class: 'progress' });
    const part = (cls: string, n: number): void => {
      if (n <= 0 || size <= 0) return;
      const s = t.el('span', { class: cls });
      s.style.width = `${((100 * n) / size).toFixed(2)}%`;
      b.append(s);
    };
    part('good', c.confirmed);
    part('bad', c.failed + c['rolled-back']);
    part('busy', c.downloading + c.waiting + c.rebooting);
    return b;
  };
  const counted = (c: Counts): string => STATES.filter((s) => c[s] > 0).map((s) => `${s} ${c[s]}`).join(' · ') || 'no machines';

  const drawDetail = async (id: string): Promise<void> => {
    const r = await t.api<Detail>(`/rollouts/${id}`);
    if (id !== chosen) return;
    t.$('#rollout').hidden = false;
    t.$('#rollout-title').textContent = `${r.id} · ${r.image.version} to ${target(r.target)} · ${r.state}, wave ${r.wave} of ${r.waveCount}${r.reason ? ` · ${r.reason}` : ''}`;
    const waves = t.$('#rollout-waves');
    waves.replaceChildren();
    for (const w of r.waves) {
      const row = t.el('div', { class: `wave wave-${w.state}`, 'data-wave': String(w.wave), 'data-size': String(w.size) });
      row.append(t.el('span', { class: 'label' }, `wave ${w.wave} · ${w.percent} % · ${w.size} machines · ${w.state}`), bar(w.counts, w.size), t.el('span', { class: 'counts' }, counted(w.counts)));
      waves.append(row);
    }
    const counts = t.$('#rollout-counts');
    counts.replaceChildren();
    for (const s of STATES) counts.append(t.el('span', { class: `count state-${s}`, 'data-state': s, 'data-count': String(r.counts[s]) }, `${s} ${r.counts[s]}`));
    const ul = t.$('#rollout-problems');
    ul.replaceChildren();
    for (const p of r.problems) ul.append(t.el('li', { 'data-machine': p.machine, 'data-state': p.state }, `${p.machine} (wave ${p.wave}): ${p.state}${p.reason ? ` · ${p.reason}` : ''}`));
    if (r.problems.length === 0) ul.append(t.el('li', {}, 'none'));
  };

  const refresh = t.serial(async () => {
    const r = await t.api<{ rollouts: Summary[] }>('/rollouts?limit=20');
    const body = t.$('#rollouts tbody');
    body.replaceChildren();
    chosen ??= r.rollouts[0]?.id;
    for (const x of r.rollouts) {
      const tr = t.el('tr', { 'data-rollout': x.id, 'data-state': x.state });
      if (x.id === chosen) tr.classList.add('selected');
      const progress = t.el('td');
      progress.append(bar(x.counts, x.total));
      tr.append(t.el('td', {}, x.id), t.el('td', {}, x.image.version), t.el('td', {}, target(x.target)), t.el('td', { class: `rollout-${x.state}` }, `${x.state} · wave ${x.wave}/${x.waveCount}`), progress, t.el('td', {}, `${x.counts.confirmed}/${x.total}`));
      tr.addEventListener('click', () => {
        chosen = x.id;
        refresh();
      });
      body.append(tr);
    }
    if (r.rollouts.length === 0) {
      const tr = t.el('tr');
      tr.append(t.el('td', { colspan: '6' }, 'no rollouts yet: vendctl rollout create --version V'));
      body.append(tr);
    }
    if (chosen) await drawDetail(chosen);
  });
  return { refresh };
}
