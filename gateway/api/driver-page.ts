/**
 * The route driver's page and style sheet, for a phone held in one hand:
 * one column, big buttons. Served by the gateway itself, like the dashboard.
 */

export const DRIVER_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>vendfleet driver</title>
<link rel="stylesheet" href="/driver/style.css">
<script type="module" src="/driver/driver.js"></script>
</head>
<body>
<header><h1 id="title">Today's route</h1><span id="net" class="net"></span></header>
<p id="message" class="message" role="alert" hidden></p>
<main id="app" hidden>
  <section class="card"><h2>Load the van</h2><ul id="load" class="load"></ul></section>
  <ol id="stops" class="stops"></ol>
</main>
</body>
</html>
`;

export const DRIVER_CSS = `[hidden] { display: none !important; }
:root { --ok: #2e7d32; --bad: #c62828; --wait: #ed6c02; --muted: #6b7280; --line: #e5e7eb; font-family: system-ui, sans-serif; color: #111827; background: #f3f4f6; }
body { margin: 0; font-size: 16px; }
header { display: flex; justify-content: space-between; align-items: center; padding: .6rem .9rem; background: #111827; color: #f9fafb; position: sticky; top: 0; }
header h1 { font-size: 1.1rem; margin: 0; }
.net { font-size: .8rem; padding: .1rem .5rem; border-radius: 1rem; background: var(--ok); } .net.off { background: var(--bad); }
.message { margin: 1rem; padding: 1rem; background: #fee2e2; color: var(--bad); border-radius: .5rem; font-weight: 600; }
main { padding: .6rem; display: grid; gap: .6rem; }
.card, .stop { background: #fff; border-radius: .5rem; padding: .6rem .8rem; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
h2 { font-size: 1rem; margin: .2rem 0 .5rem; }
ul, ol { list-style: none; padding: 0; margin: 0; }
.load li { display: flex; justify-content: space-between; gap: .5rem; padding: .3rem 0; border-bottom: 1px solid var(--line); }
.load .what { min-width: 0; } .load .sku { display: block; color: var(--muted); font-size: .8rem; } .load b { white-space: nowrap; }
.name { font-weight: 600; } .sku { color: var(--muted); }
/* Product names come from the catalog (up to 100 characters, any script): long ones wrap inside the column. */
.what, .load .what, .stop h2 { overflow-wrap: anywhere; }
.stops { display: grid; gap: .6rem; }
.stop .where { color: var(--muted); font-size: .85rem; margin-bottom: .4rem; }
.line { display: grid; grid-template-columns: 3rem minmax(0, 1fr) auto; gap: .4rem; align-items: center; padding: .45rem 0; border-bottom: 1px solid var(--line); }
.line .slot { font-weight: 700; } .line .what { font-size: .9rem; } .line .fault { color: var(--bad); font-size: .8rem; }
.line button { min-height: 2.75rem; min-width: 7rem; font-size: .95rem; border: 0; border-radius: .4rem; background: #1d4ed8; color: #fff; }
.line button:disabled { background: var(--line); color: var(--muted); }
.state { grid-column: 2 / -1; font-size: .85rem; }
.state-applied, .state-stale { color: var(--ok); } .state-waiting, .state-queued, .state-delivered, .state-sending { color: var(--wait); }
.state-refused, .state-failed, .state-rejected, .state-expired, .state-unsupported, .state-interrupted, .state-cancelled, .state-error { color: var(--bad); }
`;
