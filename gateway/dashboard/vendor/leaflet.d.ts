/**
 * What the page imports as ./vendor/leaflet.js: Leaflet's ES build, served by the gateway from the
 * installed package (/dashboard/vendor/leaflet.js, VENDOR in gateway/api/dashboard-routes.ts). Its types
 * are @types/leaflet's.
 */
export * from 'leaflet';
