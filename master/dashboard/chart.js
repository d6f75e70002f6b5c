// Line charts over steps with uPlot (vendor/uPlot.iife.min.js, the global `uPlot`). Each series has
// its own steps (uPlot's mode 2), so a thousand trials reporting at different steps cost only
// their own points. Hovering shows the nearest point's series and value; optional marks (bands
// and labelled lines at given steps) are drawn under and over the lines.

import { h, setAttr, setText } from "./dom.js";
import { metric } from "./format.js";
import { drawBands, drawHighlight, drawMarkLines, nearestPoint } from "./chart-draw.js";

/** Series at most this many get a legend under the chart; more are named on hover only. */
const LEGEND_MAX = 12;

/** Tick spacings of the step axis: whole steps only (1, 2, 5, 10, 20, 50, …). */
const STEP_INCREMENTS = Array.from({ length: 10 }, (_, e) => [1, 2, 5].map((m) => m * 10 ** e)).flat();

/** The registry the page's tests read: `window.baton.charts[name]` is the live uPlot instance. */
function registry() {
  window.baton = window.baton || {};
  window.baton.charts = window.baton.charts || {};
  return window.baton.charts;
}

/**
 * A chart named `name`; `update({series, marks, logScale})` draws
 * series: [{key, label, color, xs, ys}] and marks: [{start, end (null: still open), label}].
 */
export function createChart(name, { height = 320, xLabel = "step", yLabel = "" } = {}) {
  const plot = h("div", { class: "plot" });
  const empty = h("p", { class: "chart-empty", text: "no metrics reported yet" });
  const legend = h("ul", { class: "legend" });
  const el = h("div", { class: "chart", "data-testid": `${name}-chart` }, plot, empty, legend);
  const tip = h("div", { class: "chart-tip", hidden: true });
  const highlight = h("canvas", { class: "chart-highlight" });
  const state = { u: null, shape: "", series: [], marks: [], hover: null, zoomed: false };

  function hooks() {
    return {
      drawClear: [(u) => drawBands(u, state.marks)],
      draw: [(u) => drawMarkLines(u, state.marks), (u) => drawHighlight(u, state.hover, highlight)],
      setCursor: [showHover],
      setSelect: [(u) => (state.zoomed = u.select.width > 0 || state.zoomed)],
    };
  }

  function build(series, logScale) {
    destroyPlot();
    const width = Math.max(plot.clientWidth || el.clientWidth || 0, 300);
    const opts = {
      mode: 2,
      width,
      height,
      legend: { show: false },
      cursor: { dataIdx: () => null, points: { show: false }, drag: { x: true, y: false, setScale: true } },
      scales: { x: { time: false }, y: { distr: logScale ? 3 : 1, log: 10 } },
      axes: [
        { label: xLabel, labelSize: 20, stroke: "#555", grid: { stroke: "#eee" }, incrs: STEP_INCREMENTS },
        { label: yLabel, labelSize: 20, size: 64, stroke: "#555", grid: { stroke: "#eee" } },
      ],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 1.25, points: { show: false } }))],
      hooks: hooks(),
    };
    state.u = new uPlot(opts, dataOf(series, logScale), plot);
    state.u.over.append(highlight, tip);
    state.u.over.addEventListener("dblclick", () => (state.zoomed = false));
    state.u.over.addEventListener("mouseleave", () => setHover(null));
    registry()[name] = state.u;
  }

  function dataOf(series, logScale) {
    const positive = (ys) => ys.map((y) => (y != null && y > 0 ? y : null));
    return [null, ...series.map((s) => [s.xs, logScale ? positive(s.ys) : s.ys])];
  }

  function showHover(u) {
    const { left, top } = u.cursor;
    const found = left >= 0 && top >= 0 ? nearestPoint(u, left, top, 24) : null;
    setHover(found);
  }

  function setHover(found) {
    const before = state.hover;
    state.hover = found;
    if (!found) {
      tip.hidden = true;
    } else {
      const s = state.series[found.series - 1];
      const [xs, ys] = state.u.data[found.series];
      setText(tip, `${s.label} · step ${xs[found.index]} · ${metric(ys[found.index])}`);
      setAttr(tip, "data-series", s.key);
      tip.style.left = `${Math.min(found.left + 10, state.u.over.clientWidth - 200)}px`;
      tip.style.top = `${Math.max(found.top - 28, 0)}px`;
      tip.hidden = false;
    }
    const moved = (before && `${before.series}:${before.index}`) !== (found && `${found.series}:${found.index}`);
    if (moved && state.u) drawHighlight(state.u, found, highlight);
  }

  function renderLegend(series) {
    legend.replaceChildren();
    if (series.length > LEGEND_MAX) {
      legend.append(h("li", { class: "legend-count", text: `${series.length} series; hover a line to name it` }));
      return;
    }
    for (const s of series) {
      const swatch = h("span", { class: "swatch" });
      swatch.style.background = s.color;
      legend.append(h("li", { "data-series": s.key }, swatch, s.label));
    }
  }

  /** Draws new data, keeping the instance (and the zoom) while the set of series is the same. */
  function update({ series, marks = [], logScale = false }) {
    state.series = series;
    state.marks = marks;
    const points = series.reduce((n, s) => n + s.xs.length, 0);
    setAttr(el, "data-series-count", series.length);
    setAttr(el, "data-point-count", points);
    empty.hidden = points > 0;
    plot.hidden = points === 0;
    if (points === 0) {
      destroyPlot();
      state.shape = "";
      legend.replaceChildren();
      return;
    }
    const shape = `${logScale}|${series.map((s) => `${s.key}:${s.label}`).join(",")}`;
    if (shape !== state.shape || !state.u) {
      // A new set of series needs a new instance; a zoom on the steps outlives it.
      const steps = state.zoomed && state.u ? { ...state.u.scales.x } : null;
      state.shape = shape;
      state.zoomed = false;
      build(series, logScale);
      renderLegend(series);
      if (steps && steps.min != null && steps.max != null) {
        state.u.setScale("x", { min: steps.min, max: steps.max });
        state.zoomed = true;
      }
    } else {
      state.u.setData(dataOf(series, logScale), !state.zoomed);
    }
  }

  function destroyPlot() {
    if (!state.u) return;
    state.u.destroy();
    state.u = null;
    state.hover = null;
    tip.hidden = true;
    if (registry()[name]) delete registry()[name];
  }

  const resize = new ResizeObserver(() => {
    if (state.u && plot.clientWidth > 0 && plot.clientWidth !== state.u.width) {
      state.u.setSize({ width: plot.clientWidth, height });
    }
  });
  resize.observe(plot);

  return {
    el,
    update,
    destroy() {
      resize.disconnect();
      destroyPlot();
    },
  };
}
