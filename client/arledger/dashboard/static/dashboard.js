// The dashboard's only script: draws the charts with Chart.js (packaged, no CDN) and keeps
// the page live: it polls /api/version and, when the ledger's index changed, swaps in the
// page's content (?partial=1) without a reload.
"use strict";

const COLORS = {accepted: "#1a7f37", rejected: "#cf222e", expired: "#6b7280", pending: "#d29922", report: "#8b949e"};
const LABELS = {accepted: "accepted claim", rejected: "rejected claim (its claimed loss)", expired: "expired claim",
                pending: "pending claim", report: "report"};
const MICRO = 1e6;
let charts = [];

function byOutcome(points, x, y) {
  const groups = {};
  for (const p of points) (groups[p.outcome] = groups[p.outcome] || []).push({x: x(p), y: y(p), claim: p.claim_id});
  return Object.entries(groups).map(([outcome, data]) => ({
    type: "scatter", label: LABELS[outcome] || outcome, data, backgroundColor: COLORS[outcome] || "#444",
    pointStyle: outcome === "rejected" ? "crossRot" : "circle", pointRadius: outcome === "rejected" ? 7 : 4,
    borderColor: COLORS[outcome] || "#444", borderWidth: outcome === "rejected" ? 2 : 1}));
}

function drawCurve(canvas, curve) {
  // "before": from each point, the line holds the previous value and drops AT the point's block
  // (the block the best changed); Chart.js's "after" would drop at the previous point instead.
  const best = {type: "line", label: "verified best (on chain)", stepped: "before", borderColor: "#0969da",
                backgroundColor: "#0969da", pointRadius: 0, borderWidth: 2,
                data: curve.best.map(s => ({x: s.x, y: s.y / MICRO}))};
  const datasets = [best, ...byOutcome(curve.points, p => p.x, p => p.y / MICRO)];
  charts.push(new Chart(canvas, {data: {datasets}, options: {
    animation: false, maintainAspectRatio: false, parsing: false,
    scales: {x: {type: "linear", title: {display: true, text: "block"}, ticks: {precision: 0}},  // blocks are whole
             y: {title: {display: true, text: "loss"}}},
    onClick: (e, els) => { const el = els[0]; if (!el) return; const d = datasets[el.datasetIndex].data[el.index];
                           if (d.claim) location.href = "/claim/" + d.claim; }}}));
}

const SI = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];

function powerOfTen(v) {  // a log axis's label: only at 1, 10, 100, ... and short (10M, not 10000000)
  const l = Math.log10(v);
  if (Math.abs(l - Math.round(l)) > 1e-9) return "";
  const [div, unit] = SI.find(([d]) => v >= d) || [1, ""];
  return `${v / div}${unit}`;
}

function drawPareto(canvas, points, key, label) {
  const shown = points.filter(p => p[key] > 0);  // a log axis has no place for a manifest that reports 0
  const left = canvas.closest("figure").querySelector(".left-off");
  if (left) left.textContent = points.length > shown.length
    ? `${points.length - shown.length} of ${points.length} not shown: their manifests report 0 ${label}` : "";
  charts.push(new Chart(canvas, {data: {datasets: byOutcome(shown, p => p[key], p => p.loss / MICRO)}, options: {
    animation: false, maintainAspectRatio: false, parsing: false, plugins: {legend: {display: false}},
    scales: {x: {type: "logarithmic", title: {display: true, text: label},
                 ticks: {callback: powerOfTen, maxRotation: 0, autoSkip: true}},
             y: {title: {display: true, text: "loss"}}}}}));
}

function init() {
  charts.forEach(c => c.destroy());
  charts = [];
  const curveData = document.getElementById("curve-data");
  const curve = document.getElementById("curve");
  if (curve && curveData) drawCurve(curve, JSON.parse(curveData.textContent));
  const params = document.getElementById("pareto-params");
  if (params) {
    fetch(`/api/task/${params.dataset.task}/pareto`).then(r => r.json()).then(d => {
      drawPareto(params, d.points, "params", "parameters");
      drawPareto(document.getElementById("pareto-work"), d.points, "work", "counted work (FLOPs)");
      document.body.dataset.paretoPoints = d.points.length;
    });
  }
}

async function poll() {
  const live = document.getElementById("live");
  try {
    const v = await (await fetch("/api/version", {cache: "no-store"})).json();
    document.getElementById("head").textContent = v.head;
    live.classList.toggle("stale", !!v.error);
    live.title = v.error ? "cannot read the chain: " + v.error : "new blocks appear without a reload";
    if (String(v.version) !== document.body.dataset.version) {
      const url = new URL(location.href);
      url.searchParams.set("partial", "1");
      const html = await (await fetch(url, {cache: "no-store"})).text();
      document.getElementById("content").innerHTML = html;
      document.body.dataset.version = v.version;
      document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
      init();
    }
  } catch (e) {
    live.classList.add("stale");
  }
}

init();
setInterval(poll, 1500);
