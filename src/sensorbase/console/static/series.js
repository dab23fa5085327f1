// One series: the chart of the visible range, its latest value, its statistics, CSV download.
import { get, iso, query, request } from "./api.js";
import { m4, newRange, poller, rangeControls, timeChart } from "./chart.js";
import { ago, h, say, show } from "./dom.js";

const enc = encodeURIComponent;
const STATS = ["min", "max", "avg", "count", "first", "last"];
const CSV_PAGE = 100000; // SENSORBASE_MAX_RESULT_POINTS' default: the most one query returns
const TIME = /,(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z),/g;

// The range's points as CSV (format=csv), in pages of CSV_PAGE rows: the next page starts a
// microsecond after the last row's time (a series holds one point per time).
async function csvOf(ref, range) {
  const parts = [];
  let start = iso(range.start);
  for (;;) {
    const reply = await request("GET", query({ ...ref, start, end: iso(range.end), format: "csv", limit: CSV_PAGE }), undefined, "text/csv");
    const text = await reply.text();
    const lines = text.endsWith("\n") ? text.slice(0, -1).split("\n") : text.split("\n");
    parts.push(`${(parts.length ? lines.slice(1) : lines).join("\n")}\n`);
    if (lines.length - 1 < CSV_PAGE) return parts;
    const times = [...lines[lines.length - 1].matchAll(TIME)];
    const last = times[times.length - 1][1];
    let ms = Date.parse(`${last.slice(0, 23)}Z`);
    let us = Number(last.slice(23, 26)) + 1;
    if (us === 1000) [ms, us] = [ms + 1, 0];
    start = `${new Date(ms).toISOString().slice(0, 23)}${String(us).padStart(3, "0")}Z`;
  }
}

function number(value) {
  if (value === null || value === undefined) return "–";
  return typeof value === "number" ? value.toLocaleString(undefined, { maximumFractionDigits: 6 }) : String(value);
}

export async function seriesPage(who, bucket, source, fieldName) {
  const ref = { bucket, source, field: fieldName, label: `${source} ${fieldName}` };
  const latestRef = await get(query({ bucket, source, field: fieldName, mode: "latest" }));
  const latestPoint = latestRef.series[0] && latestRef.series[0].points[0];
  const unit = latestRef.series[0] ? latestRef.series[0].unit : null;
  const range = newRange(86400);
  if (latestPoint && Date.parse(latestPoint.time) / 1000 < range.start) {
    // Old data only: open on the day that ends with the latest point rather than an empty day.
    range.end = Date.parse(latestPoint.time) / 1000 + 1;
    range.start = range.end - 86400;
    range.preset = null;
  }
  const holder = h("div", { class: "chart", id: "chart", role: "img", "aria-label": `Chart of ${source} ${fieldName}` });
  const latest = h("p", { class: "latest", id: "latest" });
  const stats = h("dl", { class: "stats", id: "stats" });
  const chart = timeChart(holder, [ref], range, (a, b) => {
    Object.assign(range, { start: a, end: b, preset: null });
    range.sync();
    refresh();
  });

  function showLatest(point) {
    latest.replaceChildren(
      ...(point
        ? [h("span", { class: "value" }, number(point.value), unit ? ` ${unit}` : ""), " at ", h("time", { datetime: point.time }, new Date(Date.parse(point.time)).toLocaleString()), ` (${ago(point.time)})`]
        : ["No point yet."]),
    );
  }

  let asked = 0;
  async function refresh(again = false) {
    const ticket = ++asked; // only the newest answer is drawn
    try {
      const window_ = { bucket, source, field: fieldName, start: iso(range.start), end: iso(range.end) };
      chart.ensure([unit]);
      const columns = chart.width();
      const [drawn, summary, now] = await Promise.all([
        m4(ref, range, columns),
        get(query({ ...window_, mode: "aggregate", aggregate: STATS.join(",") })),
        get(query({ bucket, source, field: fieldName, mode: "latest" })),
      ]);
      if (ticket !== asked) return;
      chart.draw([drawn.data], [unit]);
      // Drawn, the axes may take another width (their labels): ask again for the plot's own.
      requestAnimationFrame(() => {
        if (!again && ticket === asked && Math.abs(chart.width() - columns) > 1) refresh(true);
      });
      const values = (summary.series[0] && summary.series[0].aggregates) || {};
      stats.replaceChildren(...STATS.flatMap((name) => [h("dt", {}, name), h("dd", { "data-stat": name }, number(values[name]))]));
      showLatest(now.series[0] && now.series[0].points[0]);
    } catch (error) {
      say(error.message, "error");
    }
  }

  async function download() {
    try {
      const parts = await csvOf({ bucket, source, field: fieldName }, range);
      const link = h("a", { href: URL.createObjectURL(new Blob(parts, { type: "text/csv" })), download: `${bucket}-${source}-${fieldName}.csv` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
      say("CSV of the visible range downloaded.");
    } catch (error) {
      say(error.message, "error");
    }
  }

  const controls = rangeControls(range, (change = {}) => {
    if (change.redraw) chart.redraw();
    if (!change.live) refresh();
  });
  show(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/" }, who.organisation), " › ", h("a", { href: `#/b/${enc(bucket)}` }, bucket), " › ", source),
    h("h1", {}, `${source} · ${fieldName}`, unit ? h("span", { class: "unit" }, ` (${unit})`) : ""),
    latest,
    controls,
    holder,
    h("p", { class: "hint" }, "Drag across the chart to zoom in; Earlier and Later move the range."),
    h("section", { "aria-labelledby": "stats-title" }, h("h2", { id: "stats-title" }, "Statistics of the visible range"), stats),
    h(
      "p",
      { class: "actions" },
      h("button", { type: "button", id: "download-csv", onclick: download }, "Download CSV of the visible range"),
      h("a", { class: "button", href: `#/compare?s=${enc(`${bucket}/${source}/${fieldName}`)}` }, "Compare with other series"),
    ),
  );
  showLatest(latestPoint);
  await refresh();
  let resizing = null;
  const onResize = () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => {
      chart.resize();
      refresh();
    }, 200);
  };
  window.addEventListener("resize", onResize);
  const stop = poller(range, refresh);
  return () => {
    stop();
    window.removeEventListener("resize", onResize);
  };
}
