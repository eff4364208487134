/* sbts serve: the page.  Leaflet shows server-coloured tiles; clicks pick pixels whose histories
 * the chart draws.  Pixel <-> map coordinates follow the server's two placements (tiles.py):
 * "mercator" grids by their X_FIRST/Y_FIRST/X_STEP/Y_STEP, "pixel" grids with lng = column, lat = -row.
 * window.sbts exposes the state for the browser tests. */
(function () {
  "use strict";

  var CMAPS = ["RdBu_r", "RdBu", "coolwarm", "seismic", "jet", "turbo", "viridis", "plasma", "cividis",
    "inferno", "gray", "terrain", "Spectral_r", "twilight_shifted"];

  var S = {
    info: null, grid: null, layer: null, index: null, vmin: null, vmax: null, cmap: null, mask: "",
    A: null, B: null, series: null, history: null, gnss: null, station: null, gnssSeries: null,
    colours: {}, busy: 0, opacity: 0.85
  };
  var M = { map: null, tiles: null, base: null, ref: null, a: null, b: null, stations: null, gridId: null };
  var $ = function (id) { return document.getElementById(id); };

  // ------------------------------------------------------------------ requests
  function busy(delta) {
    S.busy += delta;
    document.body.dataset.busy = String(S.busy);
  }

  function api(path, params) {
    var q = new URLSearchParams();
    for (var k in (params || {})) { if (params[k] !== null && params[k] !== undefined && params[k] !== "") q.set(k, params[k]); }
    var url = path + (q.toString() ? "?" + q.toString() : "");
    return url;
  }

  function getJSON(path, params) {
    busy(1);
    return fetch(api(path, params)).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body.error || ("HTTP " + r.status));
        return body;
      });
    }).finally(function () { busy(-1); });
  }

  function message(text) { $("message").textContent = text || ""; }
  function fail(err) { message(String(err.message || err)); }

  // ------------------------------------------------------------------ coordinates
  function toPixel(latlng) {
    var g = S.grid, y, x;
    if (g.mode === "pixel") { y = Math.floor(-latlng.lat); x = Math.floor(latlng.lng); }
    else { y = Math.floor((latlng.lat - g.geo.y_first) / g.geo.y_step); x = Math.floor((latlng.lng - g.geo.x_first) / g.geo.x_step); }
    if (y < 0 || x < 0 || y >= g.length || x >= g.width) return null;
    return { y: y, x: x };
  }

  function toLatLng(p) {
    var g = S.grid;
    if (g.mode === "pixel") return L.latLng(-(p.y + 0.5), p.x + 0.5);
    return L.latLng(g.geo.y_first + (p.y + 0.5) * g.geo.y_step, g.geo.x_first + (p.x + 0.5) * g.geo.x_step);
  }

  function yx(p) { return p ? p.y + "," + p.x : null; }

  // ------------------------------------------------------------------ map
  function buildMap(grid) {
    if (M.map) { M.map.remove(); M.map = null; }
    // integer zooms: tiles drawn 1:1 (fractional zooms scale them and leave hairline seams)
    var opts = { boxZoom: false, zoomControl: true, attributionControl: true };
    var bounds = L.latLngBounds(grid.bounds);
    if (grid.mode === "pixel") {
      opts.crs = L.CRS.Simple; opts.minZoom = -10; opts.maxZoom = 6;
    } else {
      opts.crs = L.CRS.EPSG3857; opts.minZoom = 1; opts.maxZoom = 22; opts.worldCopyJump = false;
    }
    M.map = L.map("map", opts);
    M.map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
    M.map.fitBounds(bounds);
    if (grid.mode === "mercator" && S.info.basemap) {
      M.base = L.tileLayer(S.info.basemap, { attribution: S.info.basemap_attribution, maxZoom: 22, maxNativeZoom: 19 });
      M.base.addTo(M.map);
    }
    M.tileOptions = { tileSize: 256, minZoom: opts.minZoom, maxZoom: opts.maxZoom, noWrap: true, bounds: bounds,
      updateWhenZooming: false, keepBuffer: 1, className: "data-tiles" };
    M.tiles = null;
    refreshTiles();
    M.map.on("click", onMapClick);
    M.stations = L.layerGroup().addTo(M.map);
    M.gridId = grid.id;
  }

  function tileUrl() {
    var l = S.layer;
    var params = { layer: l.id, index: l.series ? S.index : null, vmin: S.vmin, vmax: S.vmax, cmap: S.cmap, mask: S.mask,
      ref: l.signed && S.B ? yx(S.B) : null };
    // {z}/{x}/{y} are Leaflet's; the query holds no braces (URL-encoded)
    return api("api/tile/{z}/{x}/{y}.png", params);
  }

  function refreshTiles() {
    // A new layer replaces the old one once its tiles are in (no blank map in between).  Not setUrl:
    // Leaflet 1.9's redraw() would ask for tiles at a fractional zoom if the map ever had one.
    if (!M.map || !S.layer) return;
    var old = M.tiles, layer = L.tileLayer(tileUrl(), L.extend({ opacity: S.opacity }, M.tileOptions));
    var drop = function () { if (old && M.map && M.map.hasLayer(old)) M.map.removeLayer(old); old = null; };
    layer.on("loading", function () { document.body.dataset.tiles = "loading"; });
    layer.on("load", function () { if (layer === M.tiles) { drop(); document.body.dataset.tiles = "idle"; } });
    layer.on("tileerror", function (e) { message("a map tile failed: " + e.tile.src.split("?")[0]); });
    M.tiles = layer;
    layer.addTo(M.map);
    setTimeout(drop, 4000);
    updateFigureLink();
  }

  function drawMarkers() {
    [M.ref, M.a, M.b].forEach(function (mk) { if (mk) M.map.removeLayer(mk); });
    M.ref = M.a = M.b = null;
    var ref = S.layer.reference;
    if (ref && $("show-ref").checked) {
      M.ref = L.marker(toLatLng({ y: ref[0], x: ref[1] }), {
        icon: L.divIcon({ className: "ref-marker", iconSize: [9, 9] }), interactive: false, keyboard: false
      }).bindTooltip("reference point " + ref[0] + "," + ref[1]).addTo(M.map);
    }
    if (S.A) M.a = L.circleMarker(toLatLng(S.A), { radius: 6, color: "#000", weight: 1.5, fillColor: "#d62728", fillOpacity: 1, interactive: false }).addTo(M.map);
    if (S.B) M.b = L.circleMarker(toLatLng(S.B), { radius: 6, color: "#000", weight: 1.5, fillColor: "#1f77b4", fillOpacity: 1, interactive: false }).addTo(M.map);
    $("pick-a").textContent = S.A ? "A " + yx(S.A) : "A –";
    $("pick-b").textContent = S.B ? "B " + yx(S.B) : "B –";
    $("clear-b").disabled = !S.B;
  }

  function onMapClick(e) {
    var p = toPixel(e.latlng);
    if (!p) return;
    if (e.originalEvent && e.originalEvent.shiftKey) { setB(p); } else { setA(p, null); }
  }

  // ------------------------------------------------------------------ colours
  function loadColours(name) {
    if (S.colours[name]) return Promise.resolve(S.colours[name]);
    return getJSON("api/colormap", { name: name }).then(function (c) { S.colours[name] = c; return c; });
  }

  function colourOf(value) {
    var table = S.colours[S.cmap];
    if (!table || value === null) return "#ffffff";
    var i = Math.floor((value - S.vmin) / (S.vmax - S.vmin) * 256);
    return table[Math.max(0, Math.min(255, i))];
  }

  function drawColorbar() {
    return loadColours(S.cmap).then(function (table) {
      var ctx = $("colorbar").getContext("2d");
      for (var i = 0; i < 256; i++) { ctx.fillStyle = table[i]; ctx.fillRect(i, 0, 1, 12); }
      $("cb-min").textContent = fmt(S.vmin);
      $("cb-max").textContent = fmt(S.vmax);
      $("cb-unit").textContent = S.layer.unit || "";
      drawStations();
    });
  }

  function fmt(v) { return v === null || v === undefined ? "–" : (Math.abs(v) >= 100 ? v.toFixed(0) : Number(v.toPrecision(3)).toString()); }

  // ------------------------------------------------------------------ layers
  function fillLayerSelect() {
    var sel = $("layer"), groups = {};
    sel.innerHTML = "";
    S.info.layers.forEach(function (l) {
      var key = l.series ? "time series (date slider)" : l.file;
      if (!groups[key]) { groups[key] = document.createElement("optgroup"); groups[key].label = key; sel.appendChild(groups[key]); }
      var o = document.createElement("option");
      o.value = l.id; o.textContent = l.series ? l.file : l.name + (l.unit && l.unit !== "1" ? " (" + l.unit + ")" : "");
      groups[key].appendChild(o);
    });
  }

  function fillGridSelects() {
    var series = $("series"), mask = $("mask");
    series.innerHTML = ""; mask.innerHTML = '<option value="">none</option>';
    S.info.layers.forEach(function (l) {
      if (l.series && l.grid === S.grid.id) {
        var o = document.createElement("option"); o.value = l.id; o.textContent = l.file; series.appendChild(o);
      }
    });
    S.info.masks.forEach(function (m) {
      if (m.grid !== S.grid.id) return;
      var o = document.createElement("option"); o.value = m.id; o.textContent = m.file + ":" + m.name; mask.appendChild(o);
    });
    S.series = S.grid.default_series;
    if (S.series) series.value = S.series;
    S.mask = "";
  }

  function selectLayer(id) {
    return getJSON("api/layer", { layer: id }).then(function (layer) {
      var gridChanged = !S.grid || S.grid.id !== layer.grid;
      S.layer = layer;
      S.cmap = layer.cmap; S.vmin = layer.vlim[0]; S.vmax = layer.vlim[1];
      $("cmap").value = S.cmap; $("vmin").value = +S.vmin.toPrecision(4); $("vmax").value = +S.vmax.toPrecision(4);
      $("layer").value = id;
      if (layer.series) {
        if (S.index === null || S.index >= layer.dates.length) S.index = layer.dates.length - 1;
        $("date").max = layer.dates.length - 1; $("date").value = S.index;
        $("date-box").hidden = false;
        showDate();
        if (S.series !== layer.id) { S.series = layer.id; $("series").value = layer.id; }
      } else {
        $("date-box").hidden = true;
      }
      if (gridChanged) {
        S.grid = S.info.grids.filter(function (g) { return g.id === layer.grid; })[0];
        S.A = S.B = null; S.history = null;
        fillGridSelects();
        buildMap(S.grid);
        $("chart").innerHTML = '<div class="muted hint">Click a pixel of the map.</div>';
      } else {
        refreshTiles();
      }
      drawMarkers();
      updateFigureLink();
      return drawColorbar().then(function () { if (S.A) return Promise.all([loadHistory(), loadPoint()]); });
    }).catch(fail);
  }

  function showDate() {
    var l = S.layer;
    $("date-label").textContent = l.dates[S.index];
    $("date-count").textContent = (S.index + 1) + " / " + l.dates.length + (l.ref_date ? " (ref. " + l.ref_date + ")" : "");
  }

  // ------------------------------------------------------------------ pixels and histories
  function setA(p, station) {
    S.A = p; S.station = station || null;
    S.gnssSeries = null;
    drawMarkers(); highlightStation();
    return Promise.all([loadHistory(), loadPoint()]);
  }

  function setB(p) {
    S.B = p;
    drawMarkers(); refreshTiles();
    if (S.A) return Promise.all([loadHistory(), loadPoint()]);
    return Promise.resolve();
  }

  function loadPoint() {
    if (!S.A) return Promise.resolve();
    return getJSON("api/point", { grid: S.grid.id, yx: yx(S.A), ref: yx(S.B) }).then(function (pt) {
      var rows = ['<tr><th colspan="2">A ' + yx(S.A) + (pt.lat !== undefined ? " · " + pt.lat.toFixed(5) + ", " + pt.lon.toFixed(5) : "") +
        (S.B ? " − B" : "") + "</th></tr>"];
      pt.values.forEach(function (v) {
        if (v.name.slice(-3) === "Std" || v.file.indexOf("inputs/") === 0 && ["height", "incidenceAngle"].indexOf(v.name) < 0) return;
        rows.push("<tr><td>" + v.file + ":" + v.name + "</td><td>" + (v.value === null ? "NaN" : fmt(v.value)) + " " + (v.unit === "1" ? "" : v.unit) + "</td></tr>");
      });
      $("point").innerHTML = rows.join("");
    }).catch(fail);
  }

  function loadHistory() {
    if (!S.A || !S.series) {
      if (S.A && !S.series) $("chart").innerHTML = '<div class="muted hint">No time series on this grid.</div>';
      return Promise.resolve();
    }
    var req = getJSON("api/history", { series: S.series, yx: yx(S.A), ref: yx(S.B) });
    var greq = S.station ? getJSON("api/gnss/series", { site: S.station, series: S.series }) : Promise.resolve(null);
    return Promise.all([req, greq]).then(function (res) {
      S.history = res[0]; S.gnssSeries = res[1];
      message(S.history.model_note || (S.history.no_data ? "no data at this pixel (all zero)" : ""));
      drawChart();
    }).catch(fail);
  }

  function drawChart() {
    var h = S.history;
    if (!h) return;
    var who = "A " + h.y + "," + h.x + (h.lat !== undefined ? " (" + h.lat.toFixed(5) + ", " + h.lon.toFixed(5) + ")" : "");
    if (h.ref) who += " − B " + h.ref[0] + "," + h.ref[1];
    if (S.station) who = S.station + " · " + who;
    var legend = [who + " · " + h.file];
    var second = [];
    if (h.rate) second.push("velocity " + h.rate.value.toFixed(2) + " ± " + h.rate.std.toFixed(2) + " " + h.rate.unit);
    if (h.model) second.push("model (" + h.model.terms + ") ± 1σ from " + h.model.source);
    if (S.gnssSeries) second.push("green: GNSS " + S.gnssSeries.site + " LOS" + (S.gnssSeries.ref_site ? " − " + S.gnssSeries.ref_site : ""));
    if (second.length) legend.push(second.join(" · "));
    SbtsChart.drawHistory($("chart"), {
      unit: h.unit, obs: { dates: h.dates, values: h.values, std: h.std }, model: h.model, gnss: S.gnssSeries,
      current: S.layer && S.layer.series && S.layer.id === S.series ? S.layer.dates[S.index] : null,
      colour: h.ref ? "#7b3294" : "#d62728", legend: legend
    });
    $("chart-title").textContent = "";
    $("csv").href = api("api/history.csv", { series: S.series, yx: yx(S.A), ref: yx(S.B), site: S.station });
    $("csv").classList.remove("disabled");
    $("png-chart").disabled = false;
  }

  function updateFigureLink() {
    if (!S.layer) return;
    $("png-map").href = api("api/figure.png", { layer: S.layer.id, index: S.layer.series ? S.index : null, vmin: S.vmin,
      vmax: S.vmax, cmap: S.cmap, mask: S.mask, ref: S.layer.signed && S.B ? yx(S.B) : null, a: yx(S.A), b: yx(S.B) });
  }

  // ------------------------------------------------------------------ GNSS
  function loadGnss() {
    if (!S.info.gnss) return Promise.resolve();
    return getJSON("api/gnss").then(function (g) {
      S.gnss = g;
      $("gnss-box").hidden = false; $("gnss-label-box").hidden = false;
      var f = function (v) { return v === null ? "–" : v.toFixed(2); };
      $("gnss-stats").innerHTML = "InSAR − GNSS (" + g.unit + ")" + (g.ref_site ? ", relative to <b>" + g.ref_site + "</b>" : "") +
        ":<br>RMSE <b>" + f(g.rmse) + "</b>, bias <b>" + f(g.bias) + "</b> (" + g.num + " stations, " + g.start + "–" + g.end + ")";
      var rows = ["<tr><th>site</th><th>GNSS</th><th>InSAR</th><th>Δ</th></tr>"];
      g.stations.forEach(function (s) {
        rows.push('<tr data-site="' + s.site + '"><td>' + s.site + (s.reference ? " (ref)" : "") + "</td><td>" + f(s.gnss) +
          "</td><td>" + f(s.insar) + "</td><td>" + (s.reference ? "" : f(s.diff)) + "</td></tr>");
      });
      $("gnss-table").innerHTML = rows.join("");
      Array.prototype.forEach.call($("gnss-table").querySelectorAll("tr[data-site]"), function (tr) {
        tr.addEventListener("click", function () { selectStation(tr.dataset.site); });
      });
      if (g.ref_yx && g.grid === S.grid.id) {  // the map and the histories relative to the reference station
        S.B = { y: g.ref_yx[0], x: g.ref_yx[1] };
        drawMarkers(); refreshTiles();
      }
      drawStations();
    }).catch(fail);
  }

  function drawStations() {
    if (!M.stations || !S.gnss || S.gnss.grid !== S.grid.id) return;
    M.stations.clearLayers();
    var coloured = S.layer && S.layer.id === S.gnss.layer;  // markers share the velocity map's colour scale
    S.gnss.stations.forEach(function (s) {
      var mk = L.circleMarker([s.lat, s.lon], {
        radius: s.reference ? 8 : 7, color: "#000", weight: s.reference ? 3 : 1.5,
        fillColor: coloured && s.gnss !== null ? colourOf(s.gnss) : "#ffffff", fillOpacity: 1,
        className: "gnss-station station-" + s.site, bubblingMouseEvents: false
      });
      var tip = s.site + (s.reference ? " (reference)" : "") + "<br>GNSS " + (s.gnss === null ? "–" : s.gnss.toFixed(2)) +
        ", InSAR " + (s.insar === null ? "–" : s.insar.toFixed(2)) + " " + S.gnss.unit;
      // one tooltip per marker (Leaflet keeps the first binding's events): the name, or the values on hover
      if ($("gnss-labels").checked) mk.bindTooltip(s.site, { permanent: true, direction: "right", offset: [9, 0], className: "station-label" });
      else mk.bindTooltip(tip);
      mk.on("click", function (e) { L.DomEvent.stop(e); selectStation(s.site); });
      mk.addTo(M.stations);
    });
  }

  function selectStation(site) {
    // InSAR and GNSS compared alike: both relative to the reference station (B), or both as they are
    var s = S.gnss.stations.filter(function (x) { return x.site === site; })[0];
    if (!s) return Promise.resolve();
    var ref = S.gnss.ref_yx ? { y: S.gnss.ref_yx[0], x: S.gnss.ref_yx[1] } : null;
    if (yx(ref) !== yx(S.B)) { S.B = ref; refreshTiles(); }
    return setA({ y: s.y, x: s.x }, site);
  }

  function highlightStation() {
    Array.prototype.forEach.call(document.querySelectorAll("#gnss-table tr[data-site]"), function (tr) {
      tr.classList.toggle("selected", tr.dataset.site === S.station);
    });
  }

  // ------------------------------------------------------------------ controls
  function wire() {
    CMAPS.forEach(function (n) { var o = document.createElement("option"); o.value = o.textContent = n; $("cmap").appendChild(o); });
    $("layer").addEventListener("change", function () { selectLayer(this.value); });
    var timer = null;
    $("date").addEventListener("input", function () {
      S.index = +this.value; showDate();
      clearTimeout(timer);
      timer = setTimeout(function () { refreshTiles(); drawChart(); }, 60);
    });
    $("cmap").addEventListener("change", function () {
      if (S.colours[this.value] === undefined && CMAPS.indexOf(this.value) < 0) return;
      S.cmap = this.value; refreshTiles(); drawColorbar();
    });
    ["vmin", "vmax"].forEach(function (id) {
      $(id).addEventListener("change", function () {
        var lo = parseFloat($("vmin").value), hi = parseFloat($("vmax").value);
        if (!(hi > lo)) { message("colour limits: the maximum must be larger than the minimum"); return; }
        message(""); S.vmin = lo; S.vmax = hi; refreshTiles(); drawColorbar();
      });
    });
    $("vauto").addEventListener("click", function () { selectLayer(S.layer.id); });
    $("opacity").addEventListener("input", function () { S.opacity = +this.value; if (M.tiles) M.tiles.setOpacity(S.opacity); });
    $("mask").addEventListener("change", function () { S.mask = this.value; refreshTiles(); });
    $("show-ref").addEventListener("change", drawMarkers);
    $("gnss-labels").addEventListener("change", drawStations);
    $("series").addEventListener("change", function () { S.series = this.value; loadHistory(); });
    $("clear-b").addEventListener("click", function () {
      S.B = null; drawMarkers(); refreshTiles(); if (S.A) { loadHistory(); loadPoint(); }
    });
    $("png-chart").addEventListener("click", function () {
      var svg = document.getElementById("history-svg");
      if (!svg) return;
      SbtsChart.svgToPng(svg, 2).then(function (blob) {
        var a = document.createElement("a");
        a.href = URL.createObjectURL(blob);
        a.download = "sbts_history_y" + S.A.y + "_x" + S.A.x + ".png";
        document.body.appendChild(a); a.click(); a.remove();
        setTimeout(function () { URL.revokeObjectURL(a.href); }, 5000);
      }).catch(fail);
    });
    window.addEventListener("resize", function () { if (S.history) drawChart(); });
  }

  function start() {
    wire();
    getJSON("api/info").then(function (info) {
      S.info = info;
      $("root").textContent = info.root;
      document.title = "sbts serve: " + info.root;
      fillLayerSelect();
      return selectLayer(info.default_layer);
    }).then(loadGnss).then(function () { document.body.dataset.ready = "1"; }).catch(fail);
  }

  window.sbts = {
    state: S, maps: M, toLatLng: function (y, x) { return toLatLng({ y: y, x: x }); },
    selectLayer: selectLayer, setA: setA, setB: setB, selectStation: selectStation
  };
  document.addEventListener("DOMContentLoaded", start);
})();
