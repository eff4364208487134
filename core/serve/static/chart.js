/* sbts serve: the history chart, drawn as SVG (no library).
 *
 * Every mark carries its styling as attributes (not CSS), so the SVG converts to a PNG on its own.
 * Each observation is a <circle class="obs" data-date="YYYYMMDD" data-value="..."> holding the exact
 * plotted value: what the browser test compares with the file.
 */
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";

  function el(name, attrs, parent, text) {
    var node = document.createElementNS(NS, name);
    for (var k in attrs) { if (attrs[k] !== undefined && attrs[k] !== null) node.setAttribute(k, attrs[k]); }
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function parseDate(s) {  // "YYYYMMDD" -> ms since 1970 (UTC)
    return Date.UTC(+s.slice(0, 4), +s.slice(4, 6) - 1, +s.slice(6, 8));
  }

  function fmtDate(t) {
    var d = new Date(t);
    return d.getUTCFullYear() + "-" + String(d.getUTCMonth() + 1).padStart(2, "0") + "-" +
      String(d.getUTCDate()).padStart(2, "0");
  }

  function niceTicks(lo, hi, count) {
    var raw = (hi - lo) / Math.max(1, count);
    if (!(raw > 0)) return [lo];
    var mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = [1, 2, 2.5, 5, 10], step = mag * 10;
    for (var i = 0; i < steps.length; i++) { if (steps[i] * mag >= raw) { step = steps[i] * mag; break; } }
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  }

  function timeTicks(t0, t1) {
    var d0 = new Date(t0), months = [1, 2, 3, 6, 12, 24, 60, 120], span = (t1 - t0) / (30.44 * 86400e3);
    var step = months[months.length - 1];
    for (var i = 0; i < months.length; i++) { if (span / months[i] <= 7) { step = months[i]; break; } }
    var y = d0.getUTCFullYear(), m = d0.getUTCMonth();
    m = Math.ceil(m / step) * step;  // first multiple of the step
    if (step >= 12) { y = Math.ceil((y + (d0.getUTCMonth() > 0 || d0.getUTCDate() > 1 ? 1 : 0)) / (step / 12)) * (step / 12); m = 0; }
    var out = [];
    for (var k = 0; k < 200; k++) {
      var t = Date.UTC(y + Math.floor(m / 12), m % 12, 1);
      if (t > t1) break;
      if (t >= t0) out.push({ t: t, label: step >= 12 ? String(new Date(t).getUTCFullYear()) : fmtDate(t).slice(0, 7) });
      m += step;
    }
    return out;
  }

  function fmtNum(v) {
    var a = Math.abs(v);
    return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toPrecision(2);
  }

  /* data: {unit, obs: {dates, values, std}, model: {dates, values, sigma} | null,
   *        gnss: {site, dates, values} | null, current: "YYYYMMDD" | null, colour, legend: [lines]} */
  function drawHistory(container, data) {
    container.innerHTML = "";
    var W = Math.max(320, container.clientWidth), H = Math.max(180, container.clientHeight);
    var m = { l: 58, r: 14, t: 8 + 14 * (data.legend || []).length, b: 24 };
    var svg = el("svg", { xmlns: NS, width: W, height: H, viewBox: "0 0 " + W + " " + H, "font-family": "sans-serif",
      "font-size": 11, id: "history-svg" }, container);
    el("rect", { x: 0, y: 0, width: W, height: H, fill: "#ffffff" }, svg);

    var ts = [], vs = [];
    function take(dates, values, spread) {
      for (var i = 0; i < dates.length; i++) {
        var v = values[i];
        if (v === null || !isFinite(v)) continue;
        ts.push(parseDate(dates[i]));
        var s = spread && spread[i] ? spread[i] : 0;
        vs.push(v - s, v + s);
      }
    }
    take(data.obs.dates, data.obs.values, data.obs.std);
    if (data.model) take(data.model.dates, data.model.values, data.model.sigma);
    if (data.gnss) take(data.gnss.dates, data.gnss.values, null);
    if (!ts.length) {
      el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", fill: "#777" }, svg, "no data at this pixel");
      return svg;
    }
    var t0 = Math.min.apply(null, ts), t1 = Math.max.apply(null, ts);
    var pad = Math.max(86400e3 * 5, (t1 - t0) * 0.02);
    t0 -= pad; t1 += pad;
    var v0 = Math.min.apply(null, vs), v1 = Math.max.apply(null, vs);
    if (v1 - v0 < 1e-9) { v0 -= 1; v1 += 1; }
    var vp = (v1 - v0) * 0.06; v0 -= vp; v1 += vp;
    var X = function (t) { return m.l + (t - t0) / (t1 - t0) * (W - m.l - m.r); };
    var Y = function (v) { return H - m.b - (v - v0) / (v1 - v0) * (H - m.t - m.b); };

    // axes and grid
    var axis = el("g", { id: "axes" }, svg);
    niceTicks(v0, v1, 5).forEach(function (v) {
      el("line", { x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v), stroke: v === 0 ? "#999" : "#e3e3e3", "stroke-width": 1 }, axis);
      el("text", { x: m.l - 5, y: Y(v) + 4, "text-anchor": "end", fill: "#444" }, axis, fmtNum(v));
    });
    timeTicks(t0, t1).forEach(function (tk) {
      el("line", { x1: X(tk.t), x2: X(tk.t), y1: m.t, y2: H - m.b, stroke: "#eeeeee", "stroke-width": 1 }, axis);
      el("text", { x: X(tk.t), y: H - m.b + 15, "text-anchor": "middle", fill: "#444" }, axis, tk.label);
    });
    el("rect", { x: m.l, y: m.t, width: W - m.l - m.r, height: H - m.t - m.b, fill: "none", stroke: "#888" }, axis);
    el("text", { x: 12, y: (m.t + H - m.b) / 2, transform: "rotate(-90 12 " + (m.t + H - m.b) / 2 + ")",
      "text-anchor": "middle", fill: "#222" }, axis, "LOS displacement (" + data.unit + ")");

    if (data.current) {
      var tc = parseDate(data.current);
      el("line", { x1: X(tc), x2: X(tc), y1: m.t, y2: H - m.b, stroke: "#888", "stroke-dasharray": "4 3",
        "stroke-width": 1, "class": "current-date" }, svg);
    }

    // model band and line
    if (data.model) {
      var up = [], lo = [], line = [];
      for (var i = 0; i < data.model.dates.length; i++) {
        var v = data.model.values[i], s = data.model.sigma[i] || 0;
        if (v === null) continue;
        var x = X(parseDate(data.model.dates[i]));
        up.push(x.toFixed(2) + "," + Y(v + s).toFixed(2));
        lo.push(x.toFixed(2) + "," + Y(v - s).toFixed(2));
        line.push(x.toFixed(2) + "," + Y(v).toFixed(2));
      }
      if (line.length) {
        el("path", { d: "M" + up.join("L") + "L" + lo.reverse().join("L") + "Z", fill: "#8c8c8c", "fill-opacity": 0.25,
          stroke: "none", "class": "band" }, svg);
        el("path", { d: "M" + line.join("L"), fill: "none", stroke: "#222", "stroke-width": 1.5, "class": "model" }, svg);
      }
    }

    // GNSS daily series
    if (data.gnss) {
      var g = el("g", { "class": "gnss", "data-site": data.gnss.site }, svg);
      for (var j = 0; j < data.gnss.dates.length; j++) {
        var gv = data.gnss.values[j];
        if (gv === null || !isFinite(gv)) continue;
        el("circle", { cx: X(parseDate(data.gnss.dates[j])).toFixed(2), cy: Y(gv).toFixed(2), r: 1.4, fill: "#2ca02c",
          "fill-opacity": 0.55, "data-date": data.gnss.dates[j], "data-value": gv }, g);
      }
    }

    // observations (with error bars when the file has a std)
    var colour = data.colour || "#d62728";
    var obs = el("g", { "class": "observations" }, svg);
    for (var k = 0; k < data.obs.dates.length; k++) {
      var ov = data.obs.values[k];
      if (ov === null || !isFinite(ov)) continue;
      var ox = X(parseDate(data.obs.dates[k])), oy = Y(ov);
      var sd = data.obs.std ? data.obs.std[k] : null;
      if (sd) el("line", { x1: ox, x2: ox, y1: Y(ov - sd), y2: Y(ov + sd), stroke: colour, "stroke-width": 1, "class": "err" }, obs);
      var c = el("circle", { cx: ox.toFixed(2), cy: oy.toFixed(2), r: 3.2, fill: colour, stroke: "#ffffff", "stroke-width": 0.8,
        "class": "obs", "data-date": data.obs.dates[k], "data-value": ov }, obs);
      el("title", {}, c, data.obs.dates[k] + ": " + ov.toFixed(3) + " " + data.unit + (sd ? " ± " + sd.toFixed(3) : ""));
    }

    // legend
    (data.legend || []).forEach(function (text, i) {
      el("text", { x: m.l, y: 12 + 14 * i, fill: i === 0 ? "#111" : "#444", "font-weight": i === 0 ? "bold" : "normal",
        "class": "legend" }, svg, text);
    });
    return svg;
  }

  function svgToPng(svg, scale) {
    scale = scale || 2;
    var text = new XMLSerializer().serializeToString(svg);
    var w = +svg.getAttribute("width"), h = +svg.getAttribute("height");
    return new Promise(function (resolve, reject) {
      var img = new Image();
      img.onload = function () {
        var canvas = document.createElement("canvas");
        canvas.width = w * scale; canvas.height = h * scale;
        var ctx = canvas.getContext("2d");
        ctx.fillStyle = "#ffffff"; ctx.fillRect(0, 0, canvas.width, canvas.height);
        ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
        canvas.toBlob(function (blob) { blob ? resolve(blob) : reject(new Error("PNG encoding failed")); }, "image/png");
      };
      img.onerror = function () { reject(new Error("the chart could not be rasterised")); };
      img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(text);
    });
  }

  window.SbtsChart = { drawHistory: drawHistory, svgToPng: svgToPng, parseDate: parseDate, niceTicks: niceTicks };
})();
