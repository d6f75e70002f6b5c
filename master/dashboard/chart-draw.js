// Drawing and hit-testing on a uPlot chart in mode 2 (each series `[xs, ys]`): marks at steps
// (allocation bands and labelled lines), the hovered line drawn thicker, and the nearest point.
// The chart's canvas is in device pixels (`valToPos(v, scale, true)`); the hover layer is in CSS
// pixels of the plot area, as the cursor is.

/** A series' stroke colour (uPlot keeps it as a function after init). */
function strokeOf(u, i) {
  const stroke = u.series[i].stroke;
  return typeof stroke === "function" ? stroke(u, i) : stroke;
}

/** Canvas x of a step, or null when the x scale is not set yet. */
function canvasX(u, step) {
  const x = u.valToPos(step, "x", true);
  return Number.isFinite(x) ? x : null;
}

/** Faint alternating bands from each mark's start to its end (or the plot's right edge). */
export function drawBands(u, marks) {
  if (!marks.length) return;
  const { ctx, bbox } = u;
  ctx.save();
  marks.forEach((mark, i) => {
    const x0 = canvasX(u, mark.start);
    const x1 = mark.end == null ? bbox.left + bbox.width : canvasX(u, mark.end);
    if (x0 == null || x1 == null) return;
    const left = Math.max(x0, bbox.left);
    const right = Math.min(x1, bbox.left + bbox.width);
    if (right <= left) return;
    ctx.fillStyle = i % 2 ? "rgba(30, 90, 160, 0.06)" : "rgba(120, 120, 120, 0.05)";
    ctx.fillRect(left, bbox.top, right - left, bbox.height);
  });
  ctx.restore();
}

/**
 * A dashed line at each mark's start with its label ("agent · how it ended") at the top; a mark
 * that starts left of the view is labelled at the left edge.
 */
export function drawMarkLines(u, marks) {
  if (!marks.length) return;
  const { ctx, bbox } = u;
  const ratio = window.devicePixelRatio || 1;
  ctx.save();
  ctx.font = `${11 * ratio}px system-ui, sans-serif`;
  ctx.textBaseline = "top";
  ctx.textAlign = "left";
  const right = bbox.left + bbox.width;
  marks.forEach((mark, i) => {
    let x = canvasX(u, mark.start);
    if (x == null || x > right + 1) return;
    if (x < bbox.left - 1) {
      // Started left of the view: label it at the left edge while its band is still in view.
      const end = mark.end == null ? right : canvasX(u, mark.end);
      if (end == null || end <= bbox.left) return;
      x = bbox.left;
    } else {
      ctx.strokeStyle = "rgba(60, 60, 60, 0.55)";
      ctx.lineWidth = ratio;
      ctx.setLineDash([4 * ratio, 3 * ratio]);
      ctx.beginPath();
      ctx.moveTo(x, bbox.top);
      ctx.lineTo(x, bbox.top + bbox.height);
      ctx.stroke();
    }
    const y = bbox.top + (2 + (i % 3) * 14) * ratio;
    const text = mark.label;
    const width = ctx.measureText(text).width;
    // Right of the line, or left of it where the label would run past the plot's right edge.
    const textLeft = x + width + 8 * ratio > right ? Math.max(x - width - 4 * ratio, bbox.left) : x + 4 * ratio;
    ctx.fillStyle = "rgba(255, 255, 255, 0.85)";
    ctx.fillRect(textLeft - 2 * ratio, y - ratio, width + 4 * ratio, 13 * ratio);
    ctx.fillStyle = "#333";
    ctx.fillText(text, textLeft, y);
  });
  ctx.restore();
}

/**
 * The hovered series drawn thicker on `canvas`, a layer over the plot area (so hovering never
 * redraws the chart itself, which costs ~100 ms with a thousand lines); cleared for no hover.
 */
export function drawHighlight(u, hover, canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = u.over.clientWidth;
  const height = u.over.clientHeight;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  if (!hover || !u.data[hover.series]) return;
  const [xs, ys] = u.data[hover.series];
  ctx.strokeStyle = strokeOf(u, hover.series);
  ctx.lineWidth = 3;
  ctx.lineJoin = "round";
  ctx.beginPath();
  let drawing = false;
  for (let i = 0; i < xs.length; i++) {
    if (ys[i] == null) {
      drawing = false;
      continue;
    }
    const x = u.valToPos(xs[i], "x");
    const y = u.valToPos(ys[i], "y");
    if (drawing) ctx.lineTo(x, y);
    else ctx.moveTo(x, y);
    drawing = true;
  }
  ctx.stroke();
  ctx.fillStyle = ctx.strokeStyle;
  ctx.beginPath();
  ctx.arc(hover.left, hover.top, 4, 0, 2 * Math.PI);
  ctx.fill();
}

/**
 * The point nearest to the cursor (CSS pixels in the plot area) within `radius` pixels:
 * {series, index, left, top}, or null. Linear in the points drawn: 100,000 points take a few ms.
 */
export function nearestPoint(u, left, top, radius) {
  let best = null;
  let bestDistance = radius * radius;
  for (let s = 1; s < u.series.length; s++) {
    if (!u.series[s].show || !u.data[s]) continue;
    const [xs, ys] = u.data[s];
    for (let i = 0; i < xs.length; i++) {
      if (ys[i] == null) continue;
      const dx = u.valToPos(xs[i], "x") - left;
      if (dx * dx > bestDistance) continue;
      const dy = u.valToPos(ys[i], "y") - top;
      const distance = dx * dx + dy * dy;
      if (distance <= bestDistance) {
        bestDistance = distance;
        best = { series: s, index: i, left: left + dx, top: top + dy };
      }
    }
  }
  return best;
}
