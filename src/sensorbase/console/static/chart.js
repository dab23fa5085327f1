// The time range controls and the uPlot chart shared by the series and compare pages. Data come
// downsampled by the server to the chart's width (mode=m4: first, last, min and max of each
// pixel column), so a one-second spike in a year still shows.
import { get, iso, query, seconds } from "./api.js";
import { field, h } from "./dom.js";

export const PRESETS = [
  ["1h", 3600],
  ["24h", 86400],
  ["7d", 7 * 86400],
  ["30d", 30 * 86400],
  ["1y", 365 * 86400],
];
const COLORS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7f8f", "#57606a"];
const LIVE_MS = 5000;

export function newRange(preset = 86400) {
  const end = Date.now() / 1000;
  return { start: end - preset, end, preset, tz: "local", live: false };
}

function zoneNames() {
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  return ["local", "UTC", ...zones.filter((z) => z !== "UTC")];
}

function localInput(secondsSince1970) {
  const d = new Date(secondsSince1970 * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// Presets, a custom range, earlier/later, time zone, live: each change calls onChange().
export function rangeControls(range, onChange) {
  const presetButtons = PRESETS.map(([label, span]) =>
    h("button", { type: "button", class: "preset", "data-preset": label, "aria-pressed": String(range.preset === span), onclick: () => setPreset(span) }, label),
  );
  const from = h("input", { type: "datetime-local", name: "from", required: true });
  const to = h("input", { type: "datetime-local", name: "to", required: true });
  const zone = h("select", { name: "tz" }, zoneNames().map((z) => h("option", { value: z, selected: z === range.tz }, z === "local" ? "Browser's zone" : z)));
  const live = h("input", { type: "checkbox", name: "live" });
  function sync() {
    from.value = localInput(range.start);
    to.value = localInput(range.end);
    for (const b of presetButtons) b.setAttribute("aria-pressed", String(PRESETS.find(([l]) => l === b.dataset.preset)[1] === range.preset));
  }
  function setPreset(span) {
    range.preset = span;
    range.end = Date.now() / 1000;
    range.start = range.end - span;
    sync();
    onChange();
  }
  function pan(direction) {
    const span = range.end - range.start;
    range.start += (direction * span) / 2;
    range.end += (direction * span) / 2;
    range.preset = null;
    sync();
    onChange();
  }
  function custom(event) {
    event.preventDefault();
    const start = Date.parse(from.value) / 1000;
    const end = Date.parse(to.value) / 1000;
    if (!(end > start)) {
      to.setCustomValidity("The end must come after the start");
      to.reportValidity();
      return;
    }
    to.setCustomValidity("");
    Object.assign(range, { start, end, preset: null });
    sync();
    onChange();
  }
  zone.addEventListener("change", () => {
    range.tz = zone.value;
    onChange({ redraw: true });
  });
  live.addEventListener("change", () => {
    range.live = live.checked;
    onChange({ live: true });
  });
  range.sync = sync;
  sync();
  return h(
    "div",
    { class: "controls" },
    h("div", { class: "presets", role: "group", "aria-label": "Time range presets" }, presetButtons),
    h("div", { class: "pan", role: "group", "aria-label": "Move the range" },
      h("button", { type: "button", id: "pan-earlier", onclick: () => pan(-1) }, "◀ Earlier"),
      h("button", { type: "button", id: "pan-later", onclick: () => pan(1) }, "Later ▶"),
    ),
    h("form", { class: "custom", id: "custom-range", onsubmit: custom }, field("From (browser's time)", from), field("To", to), h("button", { type: "submit" }, "Apply")),
    field("Time zone", zone),
    h("label", { class: "check" }, live, ` Live (every ${LIVE_MS / 1000} s)`),
  );
}

// Polls while `range.live`: a preset slides to now; a custom range keeps still.
export function poller(range, refresh) {
  const timer = setInterval(() => {
    if (!range.live || document.hidden) return;
    if (range.preset) {
      range.end = Date.now() / 1000;
      range.start = range.end - range.preset;
      range.sync();
    }
    refresh();
  }, LIVE_MS);
  return () => clearInterval(timer);
}

// One series' M4 points for the range at `width` pixel columns, as [times, values].
export async function m4(ref, range, width) {
  const reply = await get(
    query({ bucket: ref.bucket, source: ref.source, field: ref.field, start: iso(range.start), end: iso(range.end), mode: "m4", width: Math.max(1, Math.round(width)) }),
  );
  const found = reply.series[0];
  if (!found) return { unit: null, data: [[], []] };
  return { unit: found.unit, data: [found.m4.time.map(seconds), found.m4.value] };
}

// A chart in `holder` for `refs` ([{bucket, source, field, label}]); calls onZoom(start, end)
// when a range is dragged. Returns {width(), draw(tables, range)}.
export function timeChart(holder, refs, range, onZoom) {
  let plot = null;
  let shownTz = null;
  // The plot's own width once drawn (the axes take the rest): one M4 column a pixel.
  // (uPlot's bbox counts device pixels, devicePixelRatio to a CSS pixel.)
  const width = () => Math.max(100, plot ? Math.round(plot.bbox.width / (window.devicePixelRatio || 1)) : holder.clientWidth - 80);
  const outer = () => Math.max(280, holder.clientWidth);
  function options(units) {
    const tz = range.tz;
    return {
      width: outer(),
      height: Math.min(420, Math.max(240, Math.round(window.innerHeight * 0.45))),
      tzDate: tz === "local" ? (ts) => new Date(ts * 1e3) : (ts) => uPlot.tzDate(new Date(ts * 1e3), tz),
      scales: { x: { time: true } },
      // Fixed (uPlot sizes them from the tick labels otherwise): the plot keeps one width,
      // which the M4 request names before the data arrive.
      padding: [16, 28, 0, 8],
      cursor: { drag: { x: true, y: false, setScale: false } },
      legend: { live: true },
      series: [
        { label: "Time" },
        ...refs.map((ref, i) => ({ label: ref.label, stroke: COLORS[i % COLORS.length], width: 1.5, points: { show: false }, scale: units.length > 1 && i > 0 && units[i] !== units[0] ? "y2" : "y" })),
      ],
      axes: [{}, { label: units[0] || "", size: 60 }, ...(new Set(units).size > 1 ? [{ scale: "y2", side: 1, grid: { show: false }, label: units.find((u) => u !== units[0]) || "", size: 60 }] : [])],
      hooks: {
        setSelect: [
          (u) => {
            if (u.select.width < 3) return;
            const a = u.posToVal(u.select.left, "x");
            const b = u.posToVal(u.select.left + u.select.width, "x");
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            onZoom(a, b);
          },
        ],
      },
    };
  }
  function draw(tables, units) {
    const data = tables.length === 1 ? tables[0] : uPlot.join(tables);
    if (plot && shownTz === range.tz && plot.series.length === data.length) {
      plot.setData(data, false);
    } else {
      if (plot) plot.destroy();
      plot = new uPlot(options(units), data, holder);
      shownTz = range.tz;
      holder.uplot = plot; // read back by the browser tests
    }
    plot.setScale("x", { min: range.start, max: range.end });
    holder.dataset.points = String(data[0].length);
    holder.dataset.start = iso(range.start);
    holder.dataset.end = iso(range.end);
  }
  // An empty plot first, so that the first request already knows the plot's width.
  function ensure(units) {
    if (!plot) draw(refs.map(() => [[], []]), units);
  }
  function resize() {
    if (plot) plot.setSize({ width: outer(), height: plot.height });
  }
  return { width, draw, ensure, resize, redraw: () => { if (plot) plot.destroy(); plot = null; } };
}
