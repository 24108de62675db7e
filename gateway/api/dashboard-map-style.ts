/**
 * The style of the dashboard's fleet map (gateway/dashboard/map.ts) and
 * inventory heatmap (gateway/dashboard/heatmap.ts), part of
 * /dashboard/style.css. Leaflet's own sheet comes from its package
 * (/dashboard/vendor/leaflet.css). The state colours are map.ts's COLOURS.
 */
export const MAP_CSS = `.card.heat { align-self: start; }
#map { height: 22rem; background: #dbeafe; border: 1px solid var(--line); border-radius: .4rem; }
#map .atlas.country { fill: #f8fafc; fill-opacity: 1; stroke: #94a3b8; stroke-width: .8; }
#map .atlas.state { fill: none; stroke: #cbd5e1; stroke-width: .7; }
#map .machine { cursor: pointer; }
#map .cluster { display: flex; align-items: center; justify-content: center; border-radius: 50%; color: #fff; font: 600 .8rem system-ui, sans-serif; border: 2px solid #fff; box-shadow: 0 0 0 2px rgba(17,24,39,.25); }
#map .cluster.state-online { background: #2e7d32; } #map .cluster.state-restock { background: #ed6c02; } #map .cluster.state-errors { background: #c62828; } #map .cluster.state-offline { background: #6b7280; }
#map .depot { display: flex; align-items: center; justify-content: center; background: #111827; color: #fff; font: 700 .7rem system-ui, sans-serif; border-radius: .2rem; }
.map-legend, .heat-legend { display: flex; flex-wrap: wrap; gap: .3rem .9rem; font-size: .8rem; margin: .4rem 0; }
.map-legend .key::before { content: ""; display: inline-block; width: .7rem; height: .7rem; border-radius: 50%; margin-right: .3rem; vertical-align: -.05rem; border: 1px solid #fff; box-shadow: 0 0 0 1px var(--line); }
.map-legend .key-online::before { background: #2e7d32; } .map-legend .key-restock::before { background: #ed6c02; } .map-legend .key-errors::before { background: #c62828; } .map-legend .key-offline::before { background: #6b7280; }
.heat-legend .what { color: var(--muted); }
.heat-legend .swatch { display: inline-block; width: .9rem; height: .9rem; border-radius: .15rem; margin-right: .3rem; vertical-align: -.15rem; }
#heatmap { width: auto; font-size: .75rem; }
#heatmap th, #heatmap td { padding: .15rem .3rem; white-space: nowrap; }
#heatmap .slot-code { text-align: center; font-weight: 500; color: #374151; }
#heatmap td.cell { min-width: 1.6rem; text-align: center; font-variant-numeric: tabular-nums; border: 1px solid #fff; }
#heatmap td.total { color: var(--muted); }
.fill-0 { background: #7f1d1d; color: #fff; } .fill-1 { background: #dc2626; color: #fff; } .fill-2 { background: #fb923c; color: #111827; }
.fill-3 { background: #fde68a; color: #111827; } .fill-4 { background: #86efac; color: #111827; }
#heatmap td.none { background: #f3f4f6; }
#heatmap td.fault, .heat-legend .swatch.fault { outline: 2px solid #111827; outline-offset: -3px; }
.heat-legend .swatch.fault { background: #fff; }
@media (max-width: 760px) { #map { height: 18rem; } }
`;
