import { MAP_CSS } from './dashboard-map-style.js';

/**
 * The dashboard's page and style sheet. Everything is served by the gateway
 * itself (no CDN, no map tiles): it works on a closed network and in CI.
 */

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vendfleet</title>
<link rel="stylesheet" href="/dashboard/vendor/leaflet.css">
<link rel="stylesheet" href="/dashboard/style.css">
<script type="module" src="/dashboard/app.js"></script>
</head>
<body>
<form id="login" class="card login" hidden>
  <h1>vendfleet</h1>
  <p>Sign in with an API token (<code>vendctl token create NAME viewer</code>; <code>npm start</code> prints an admin token).</p>
  <input id="token" type="password" placeholder="vf_..." autocomplete="off" required>
  <button type="submit">Sign in</button>
  <p id="login-error" class="error" role="alert"></p>
</form>
<div id="app" hidden>
  <header>
    <h1>vendfleet</h1>
    <div id="totals" class="totals"></div>
    <span id="who" class="who" title="whose machines this page shows"></span>
    <span id="live" class="live" title="live updates">live</span>
    <button id="logout" type="button">Sign out</button>
  </header>
  <main>
    <section class="card kpis" id="kpis" aria-label="fleet figures"></section>
    <section class="card fleet">
      <h2>Fleet</h2>
      <div id="map" role="region" aria-label="fleet map"></div>
      <p id="map-legend" class="map-legend"></p>
      <p id="map-empty" class="shown" hidden>No machine has a location yet: vendctl locate MACHINE LAT LON</p>
      <div class="filters">
        <input id="filter" type="search" placeholder="filter: machine, operator, firmware, currency" aria-label="filter the machines">
        <select id="state-filter" aria-label="machines in this state"><option value="all">all</option><option value="online">online</option><option value="offline">offline</option><option value="errors">with errors</option><option value="restock">need restocking</option></select>
        <span id="machines-shown" class="shown"></span>
      </div>
      <div class="scroll">
      <table id="machines"><thead><tr><th data-sort="machine">machine</th><th data-sort="operator">operator</th><th data-sort="state">state</th><th data-sort="seen">last seen</th><th data-sort="stock">stock</th><th data-sort="firmware">firmware</th><th data-sort="alerts">alerts</th></tr></thead><tbody></tbody></table>
      </div>
    </section>
    <section class="card heat">
      <h2>Inventory heatmap</h2>
      <p id="heatmap-legend" class="heat-legend"></p>
      <div class="scroll"><table id="heatmap" aria-label="slot fill per machine"></table></div>
      <p id="heatmap-rest" class="shown"></p>
    </section>
    <section class="card machine" id="machine" hidden>
      <h2 id="machine-title"></h2>
      <div class="grid">
        <div><h3>Planogram</h3><div id="planogram" class="planogram"></div>
          <table id="planogram-catalog" class="catalog-slots"><thead><tr><th>slot</th><th>product</th><th>price</th><th>machine</th></tr></thead><tbody></tbody></table>
          <form id="assign-form" class="assign" hidden><select id="assign-slot" aria-label="slot"></select><select id="assign-sku" aria-label="product"></select><input id="assign-price" placeholder="this machine's price" aria-label="this machine's price (empty: the default)"><button type="submit">Assign</button></form>
          <p id="assign-result"></p><p id="assign-error" class="error" role="alert"></p>
        </div>
        <div><h3>Coin tubes</h3><div id="tubes" class="tubes"></div></div>
        <div class="wide"><h3>Sales <select id="range" aria-label="time range of the charts"><option value="24h">last 24 hours</option><option value="1h">last hour</option><option value="6h">last 6 hours</option><option value="7d">last 7 days</option><option value="30d">last 30 days</option><option value="90d">last 90 days</option><option value="1y">last year</option><option value="custom">custom range</option></select></h3><div id="chart" class="chart" role="img" aria-label="sales and revenue chart"></div></div>
        <div class="wide"><h3>Coin tubes over time</h3><div id="tube-chart" class="chart" role="img" aria-label="coin tube levels chart"></div></div>
        <div class="wide"><h3>Temperature</h3><div id="temperature-chart" class="chart" role="img" aria-label="temperature chart"></div></div>
        <div><h3>Alerts</h3><ul id="alerts" class="alerts"></ul></div>
        <div><h3>Send a command</h3>
          <form id="command">
            <select id="command-type">
              <option>set-prices</option><option>restock</option><option>lock</option><option>unlock</option><option>set-config</option><option>report</option><option>audit</option><option>vend</option><option>reboot</option>
            </select>
            <textarea id="command-args" rows="3" spellcheck="false">{"prices":{"A1":135}}</textarea>
            <button type="submit">Send</button>
          </form>
          <ul id="commands" class="commands"></ul>
        </div>
        <div><h3>Audit data (EVA-DTS)</h3><button id="read-audit" type="button">Read the audit data now</button><ul id="audits" class="audits"></ul></div>
      </div>
    </section>
    <section class="card fleet-sales"><h2>Fleet sales <select id="fleet-range" aria-label="time range of the fleet chart"></select></h2><div id="fleet-chart" class="chart" role="img" aria-label="fleet sales and revenue chart"></div></section>
    <section class="card rollouts">
      <h2>Firmware rollouts</h2>
      <div class="scroll"><table id="rollouts"><thead><tr><th>rollout</th><th>image</th><th>target</th><th>state</th><th>machines</th><th>confirmed</th></tr></thead><tbody></tbody></table></div>
      <div id="rollout" hidden>
        <h3 id="rollout-title"></h3>
        <div id="rollout-waves" class="waves"></div>
        <div id="rollout-counts" class="counts"></div>
        <h3>Rolled back or failed</h3>
        <ul id="rollout-problems" class="problems"></ul>
      </div>
    </section>
    <section class="card catalog">
      <h2>Product catalog</h2>
      <div class="scroll"><table id="catalog"><thead><tr><th>SKU</th><th>name</th><th>category</th><th>default price</th><th>image</th></tr></thead><tbody></tbody></table></div>
      <form id="product-form" class="product-form" hidden>
        <input name="sku" placeholder="SKU" required aria-label="SKU">
        <input name="name" placeholder="name" required aria-label="name">
        <input name="category" placeholder="category" aria-label="category">
        <input name="price" placeholder="price, e.g. 1.50" required aria-label="default price">
        <input name="currency" value="USD" size="4" aria-label="currency">
        <input name="image" type="file" accept="image/png,image/jpeg,image/gif,image/webp" aria-label="image">
        <button id="product-save" type="submit">Add product</button><button id="product-new" type="button">New</button>
      </form>
      <p id="catalog-error" class="error" role="alert"></p>
    </section>
    <section class="card route">
      <h2>Restocking route</h2>
      <form id="route-form">
        <label>depot <input id="depot" placeholder="lat,lon"></label>
        <label>next visit in <input id="days" type="number" min="0" max="60" value="2"> days</label>
        <label>vans <input id="vans" type="number" min="1" max="50" value="1"></label>
        <button type="submit">Plan</button>
      </form>
      <div id="route"></div>
    </section>
  </main>
</div>
</body>
</html>
`;

export const DASHBOARD_CSS = `[hidden] { display: none !important; }
:root { --ok: #2e7d32; --warn: #ed6c02; --bad: #c62828; --muted: #6b7280; --line: #e5e7eb; font-family: system-ui, sans-serif; color: #111827; background: #f3f4f6; }
body { margin: 0; }
header { display: flex; gap: 1.5rem; align-items: center; padding: .6rem 1.2rem; background: #111827; color: #f9fafb; }
header h1 { font-size: 1.2rem; margin: 0; }
.totals { display: flex; gap: 1.2rem; flex: 1; font-size: .95rem; }
.totals b { font-size: 1.1rem; }
.who { font-size: .8rem; color: var(--muted); }
.live { font-size: .8rem; padding: .1rem .5rem; border-radius: 1rem; background: var(--muted); }
.live.on { background: var(--ok); }
main { display: grid; grid-template-columns: minmax(37rem, 1fr) minmax(0, 1.3fr); gap: 1rem; padding: 1rem; }
.card { background: #fff; border-radius: .5rem; padding: .8rem 1rem; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.card.route, .card.rollouts { grid-column: 1 / -1; }
.login { max-width: 26rem; margin: 10vh auto; display: grid; gap: .6rem; }
h2 { font-size: 1.05rem; margin: .2rem 0 .6rem; } h3 { font-size: .9rem; margin: .4rem 0; color: #374151; }
table { width: 100%; border-collapse: collapse; font-size: .85rem; }
th, td { text-align: left; padding: .3rem .4rem; border-bottom: 1px solid var(--line); }
tbody tr { cursor: pointer; } tbody tr:hover, tbody tr.selected { background: #eef2ff; }
.state-online { color: var(--ok); } .state-offline { color: var(--bad); }
.badge { display: inline-block; min-width: 1.2rem; text-align: center; border-radius: .6rem; padding: 0 .35rem; background: var(--line); }
.badge.bad { background: var(--bad); color: #fff; } .badge.warn { background: var(--warn); color: #fff; }
${MAP_CSS}
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: .8rem 1.4rem; } .grid > * { min-width: 0; } .wide { grid-column: 1 / -1; }
.planogram { display: grid; grid-template-columns: repeat(auto-fill, minmax(5.2rem, 1fr)); gap: .4rem; }
.slot { border: 1px solid var(--line); border-radius: .3rem; padding: .3rem; font-size: .75rem; }
.slot .code { font-weight: 600; } .slot .bar { height: .4rem; background: var(--line); border-radius: .2rem; overflow: hidden; margin-top: .2rem; }
.slot .bar span { display: block; height: 100%; background: var(--ok); }
.slot.low .bar span { background: var(--warn); } .slot.empty { border-color: var(--bad); } .slot.fault { background: #fee2e2; }
.tubes .tube { display: flex; align-items: center; gap: .4rem; font-size: .8rem; margin: .2rem 0; }
.tubes .tube .bar { flex: 1; height: .5rem; background: var(--line); border-radius: .2rem; overflow: hidden; } .tubes .tube .bar span { display: block; height: 100%; background: #1d4ed8; }
.chart { width: 100%; min-width: 0; overflow: hidden; } .chart .u-legend { font-size: .78rem; } .chart-note { margin: .2rem 0; font-size: .8rem; color: var(--muted); }
/* Beside the fleet while no machine is open, then a row of its own under both. */
.card.fleet-sales { grid-column: 1 / -1; }
/* The fleet holds the left column; the heatmap and an open machine stack on the right (dense: no hole under the heatmap). */
main { grid-auto-flow: row dense; } .card.fleet { grid-row: span 2; align-self: start; } .card.heat, .card.machine { grid-column: 2; }
.range-custom { display: inline-flex; flex-wrap: wrap; gap: .3rem; align-items: center; font-size: .8rem; font-weight: normal; margin-left: .5rem; }
ul { list-style: none; padding: 0; margin: 0; font-size: .82rem; } li { padding: .2rem 0; border-bottom: 1px solid var(--line); }
.alerts .critical { color: var(--bad); } .alerts .warning { color: var(--warn); }
#command { display: grid; gap: .3rem; } textarea { font-family: ui-monospace, monospace; font-size: .8rem; }
.status-applied { color: var(--ok); } .status-refused, .status-rejected, .status-failed, .status-expired { color: var(--bad); }
.error { color: var(--bad); }
.progress { display: flex; height: .6rem; min-width: 8rem; background: var(--line); border-radius: .3rem; overflow: hidden; }
.progress span { display: block; height: 100%; } .progress .good { background: var(--ok); } .progress .bad { background: var(--bad); } .progress .busy { background: #1d4ed8; }
.waves .wave { display: grid; grid-template-columns: 18rem 1fr 22rem; gap: .6rem; align-items: center; font-size: .82rem; margin: .25rem 0; }
.waves .wave-waiting { color: var(--muted); }
.counts { display: flex; flex-wrap: wrap; gap: .4rem; margin: .5rem 0; font-size: .8rem; } .counts .count { padding: .05rem .45rem; border-radius: .6rem; background: var(--line); }
.count.state-confirmed { background: #dcfce7; } .count.state-failed, .count.state-rolled-back { background: #fee2e2; }
.rollout-halted, .rollout-cancelled { color: var(--bad); } .rollout-done { color: var(--ok); }
.problems li { color: var(--bad); }
.card.kpis { grid-column: 1 / -1; display: flex; flex-wrap: wrap; gap: .8rem; padding: .6rem 1rem; }
.kpi { display: grid; gap: .1rem; text-align: left; font: inherit; background: #f9fafb; border: 1px solid var(--line); border-radius: .4rem; padding: .4rem .8rem; cursor: pointer; }
.kpi b { font-size: 1.3rem; } .kpi span { font-size: .8rem; color: var(--muted); } .kpi.bad b { color: var(--bad); }
.kpi.revenue { cursor: default; } .kpi.revenue a { color: inherit; }
.filters { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin: .6rem 0 .3rem; font-size: .85rem; } .filters input { flex: 1; min-width: 10rem; }
.shown { color: var(--muted); font-size: .8rem; }
.scroll { overflow-x: auto; }
th[data-sort] { cursor: pointer; user-select: none; white-space: nowrap; }
th[aria-sort="ascending"]::after { content: " ▲"; } th[aria-sort="descending"]::after { content: " ▼"; }
#machines td { white-space: nowrap; } #machines th, #machines td { padding: .3rem .3rem; }
td.low { color: var(--warn); font-weight: 600; }
@media (max-width: 760px) {
  header { flex-wrap: wrap; gap: .5rem 1rem; } .totals { flex-wrap: wrap; }
  main { grid-template-columns: 1fr; padding: .5rem; } main > * { min-width: 0; } .grid { grid-template-columns: 1fr; }
  .card.heat, .card.machine { grid-column: auto; } .card.fleet { grid-row: auto; }
  .waves .wave { grid-template-columns: minmax(0, 1fr); } .waves .wave > * { min-width: 0; overflow-wrap: anywhere; } #route-form { flex-wrap: wrap; }
}
#route-form { display: flex; gap: 1rem; align-items: center; font-size: .85rem; margin-bottom: .6rem; }
.card.catalog { grid-column: 1 / -1; } .thumb { width: 2rem; height: 2rem; object-fit: contain; vertical-align: middle; }
.product-form, .assign { display: flex; flex-wrap: wrap; gap: .4rem; align-items: center; margin: .5rem 0; font-size: .85rem; }
.catalog-name { color: #1d4ed8; font-weight: 600; } td.num { text-align: right; } td.pending { color: var(--warn); }
.catalog-slots { margin-top: .5rem; }
`;
