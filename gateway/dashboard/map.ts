/**
 * The dashboard's fleet map (browser side): Leaflet on an offline basemap
 * (country outlines from world-atlas and US state outlines from us-atlas,
 * TopoJSON turned into GeoJSON here with topojson-client; no tiles), a dot
 * per machine coloured by its state, machines close together on screen
 * drawn as one numbered cluster (a grid of screen cells, redrawn as the map
 * moves: 10,000 machines stay readable), and the planned restocking route
 * as a line per van. Every library and atlas file comes from the gateway
 * (/dashboard/vendor/NAME), so the page works on a closed network.
 */
import type * as Leaflet from './vendor/leaflet.js';
import { gridClusters, type OnScreen } from './grid-clusters.js';

/** The state a machine is drawn in, worst first: offline, then errors, then needing restock, then fine. */
export type MapState = 'offline' | 'errors' | 'restock' | 'online';
export const MAP_STATES: readonly MapState[] = ['offline', 'errors', 'restock', 'online'];
export const STATE_WORDS: Record<MapState, string> = { offline: 'offline', errors: 'with errors', restock: 'needs restocking', online: 'online' };
/** Also in the style sheet (gateway/api/dashboard-map-style.ts): the legend and the dots agree. */
const COLOURS: Record<MapState, string> = { offline: '#6b7280', errors: '#c62828', restock: '#ed6c02', online: '#2e7d32' };
const VAN_COLOURS = ['#1d4ed8', '#7c3aed', '#0f766e', '#be185d', '#a16207', '#0369a1'];

export interface MapMachine {
  id: string;
  lat: number;
  lon: number;
  state: MapState;
  address?: string | null | undefined;
}
/** A van's (or the one route's) stops in order, by machine id; the depot it leaves from, when given. */
export interface MapRoute {
  depot: { lat: number; lon: number } | null;
  vans: { van: number; machines: string[]; back: boolean }[];
}
export interface FleetMap {
  draw(machines: readonly MapMachine[], selected: string | undefined): void;
  route(r: MapRoute | null): void;
}

/** topojson-client's feature(), as much of it as is used here. */
interface TopoJson {
  feature(topology: unknown, object: unknown): Parameters<typeof Leaflet.geoJSON>[0];
}
type Topology = { objects: Record<string, unknown> };

/** Screen cells this many pixels wide hold one cluster; from this zoom on every machine is its own dot. */
const CELL = 56;
const NO_CLUSTER_ZOOM = 17;

/**
 * Fetched when the map is made, not with the page (the rest of the dashboard need not wait for them):
 * Leaflet's ES build; topojson-client's UMD build puts `topojson` on the global object. Both from
 * /dashboard/vendor/ (./vendor/*.d.ts say what they are to the compiler).
 */
async function libraries(): Promise<{ L: typeof Leaflet; topojson: TopoJson }> {
  const [L] = await Promise.all([import('./vendor/leaflet.js'), import('./vendor/topojson-client.js')]);
  return { L, topojson: (globalThis as unknown as { topojson: TopoJson }).topojson };
}
const vendor = (name: string): string => `/dashboard/vendor/${name}`;

export function fleetMap(host: HTMLElement, select: (id: string) => void, legend: HTMLElement): FleetMap {
  let machines: readonly MapMachine[] = [];
  let selected: string | undefined;
  let planned: MapRoute | null = null;
  let fitted = false;
  // Set once the libraries are in: until then draw() and route() only remember what to show.
  let ready: { L: typeof Leaflet; map: Leaflet.Map; dots: Leaflet.LayerGroup; lines: Leaflet.LayerGroup } | undefined;

  for (const s of MAP_STATES) {
    const item = document.createElement('span');
    item.className = `key key-${s}`;
    item.dataset['state'] = s;
    item.textContent = STATE_WORDS[s];
    legend.append(item);
  }

  const redraw = (): void => {
    if (!ready) return;
    const { L, map, dots } = ready;
    // Nothing to place while the map has no size (the page is still hidden behind the sign-in form).
    if (host.clientWidth === 0 || host.clientHeight === 0) return;
    if (!fitted && machines.length > 0) {
      fitted = true;
      map.fitBounds(L.latLngBounds(machines.map((m) => [m.lat, m.lon] as [number, number])), { padding: [30, 30], maxZoom: 15 });
    }
    dots.clearLayers();
    const zoom = map.getZoom();
    // Said on the page: a test (or a person's tools) can tell when a zoom has come to rest.
    host.dataset['zoom'] = String(zoom);
    const view = map.getPixelBounds().pad(0.1);
    // One cell per CELL x CELL screen pixels at this zoom: its machines become one cluster, placed at their middle.
    const seen: OnScreen<MapMachine>[] = [];
    for (const m of machines) {
      const p = map.project([m.lat, m.lon], zoom);
      if (view.contains(p)) seen.push({ item: m, x: p.x, y: p.y });
    }
    const groups = zoom >= NO_CLUSTER_ZOOM ? seen.map((p) => [p.item]) : gridClusters(seen, CELL);
    for (const group of groups) {
      if (group.length === 1) {
        const m = group[0]!;
        const on = m.id === selected;
        const dot = L.circleMarker([m.lat, m.lon], {
          radius: on ? 9 : 6,
          color: on ? '#111827' : '#ffffff',
          weight: on ? 3 : 1.5,
          fillColor: COLOURS[m.state],
          fillOpacity: 1,
          className: `machine state-${m.state}${on ? ' selected' : ''}`,
          pane: 'machines',
        });
        dot.bindTooltip(`${m.id} · ${STATE_WORDS[m.state]}${m.address ? ` · ${m.address}` : ''}`);
        dot.on('click', () => select(m.id));
        dots.addLayer(dot);
        const path = dot.getElement();
        path?.setAttribute('data-machine', m.id);
        path?.setAttribute('data-state', m.state);
        continue;
      }
      // The cluster is coloured by its worst machine and says how many it holds; a click zooms in on them.
      const worst = MAP_STATES.find((s) => group.some((m) => m.state === s)) ?? 'online';
      const lat = group.reduce((a, m) => a + m.lat, 0) / group.length;
      const lon = group.reduce((a, m) => a + m.lon, 0) / group.length;
      const label = document.createElement('span');
      label.textContent = group.length >= 10000 ? `${Math.round(group.length / 1000)}k` : String(group.length);
      const size = group.length < 10 ? 28 : group.length < 100 ? 34 : group.length < 1000 ? 40 : 46;
      const icon = L.divIcon({ html: label, className: `cluster state-${worst}`, iconSize: [size, size] });
      const counts = MAP_STATES.map((s) => [s, group.filter((m) => m.state === s).length] as const).filter(([, n]) => n > 0);
      const marker = L.marker([lat, lon], { icon, pane: 'clusters', title: `${group.length} machines: ${counts.map(([s, n]) => `${n} ${STATE_WORDS[s]}`).join(', ')}`, keyboard: true });
      marker.on('click', () => map.fitBounds(L.latLngBounds(group.map((m) => [m.lat, m.lon] as [number, number])), { padding: [40, 40], maxZoom: NO_CLUSTER_ZOOM }));
      dots.addLayer(marker);
      const e = marker.getElement();
      e?.setAttribute('data-count', String(group.length));
      e?.setAttribute('data-state', worst);
    }
  };

  const drawRoute = (): void => {
    if (!ready) return;
    const { L, lines } = ready;
    lines.clearLayers();
    if (!planned) return;
    const where = new Map(machines.map((m) => [m.id, [m.lat, m.lon] as [number, number]]));
    const depot = planned.depot ? ([planned.depot.lat, planned.depot.lon] as [number, number]) : null;
    for (const v of planned.vans) {
      const points = v.machines.map((id) => where.get(id)).filter((p): p is [number, number] => p !== undefined);
      const all = depot ? [depot, ...points, ...(v.back ? [depot] : [])] : points;
      if (all.length < 2) continue;
      const colour = VAN_COLOURS[(v.van - 1) % VAN_COLOURS.length]!;
      const line = L.polyline(all, { color: colour, weight: 4, opacity: 0.85, dashArray: '8 6', className: `route van-${v.van}`, pane: 'route', interactive: false });
      lines.addLayer(line);
      line.getElement()?.setAttribute('data-van', String(v.van));
    }
    if (depot) {
      const icon = L.divIcon({ html: 'D', className: 'depot', iconSize: [20, 20] });
      lines.addLayer(L.marker(depot, { icon, pane: 'clusters', title: 'depot' }));
    }
  };

  void (async () => {
    const { L, topojson } = await libraries();
    const map = L.map(host, { zoomSnap: 1, minZoom: 2, maxZoom: 18, worldCopyJump: true, attributionControl: true });
    map.attributionControl.setPrefix('Leaflet');
    L.control.scale({ imperial: false }).addTo(map);
    map.attributionControl.addAttribution('outlines: Natural Earth (world-atlas), US Census (us-atlas)');
    // Below the dots: the land and its borders, never in the way of a click.
    for (const [name, z] of [['land', 300], ['route', 420], ['machines', 450], ['clusters', 620]] as const) map.createPane(name).style.zIndex = String(z);
    map.setView([39.5, -98.35], 4);
    const dots = L.layerGroup().addTo(map);
    const lines = L.layerGroup().addTo(map);
    ready = { L, map, dots, lines };
    map.on('moveend', redraw);
    // The map is made while the page is hidden (sign-in): it learns its size when shown, and on every resize.
    new ResizeObserver(() => {
      map.invalidateSize();
      redraw();
    }).observe(host);
    redraw();
    drawRoute();
    const atlas = async (file: string, object: string, className: string): Promise<void> => {
      const res = await fetch(vendor(file));
      if (!res.ok) throw new Error(`${file}: ${res.status}`);
      const topology = (await res.json()) as Topology;
      const shapes = topojson.feature(topology, topology.objects[object]);
      L.geoJSON(shapes, { pane: 'land', interactive: false, className, style: { className } } as Leaflet.GeoJSONOptions).addTo(map);
    };
    // The countries first (filled land), the states over them (lines only).
    await atlas('countries-50m.json', 'countries', 'atlas country');
    await atlas('states-10m.json', 'states', 'atlas state');
    host.dataset['atlas'] = 'drawn';
  })().catch((e: unknown) => {
    host.dataset['atlas'] = 'failed';
    console.warn(e);
  });

  return {
    draw(list, sel) {
      machines = list;
      selected = sel;
      redraw();
      // A route drawn before the machines' places were known gets its line now.
      if (planned) drawRoute();
    },
    route(r) {
      planned = r;
      drawRoute();
    },
  };
}
