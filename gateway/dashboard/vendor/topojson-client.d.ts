/**
 * What the page imports as ./vendor/topojson-client.js: topojson-client's UMD build, served by the gateway
 * from the installed package. Imported for what it does: it puts `topojson` on the global object (map.ts
 * reads feature() from there).
 */
export {};
