// Several series on one chart: pick them from every bucket the session may read.
import { get, query } from "./api.js";
import { m4, newRange, poller, rangeControls, timeChart } from "./chart.js";
import { h, say, searchBox, show } from "./dom.js";

const MAX = 8;
const name = (s) => `${s.bucket}/${s.source}/${s.field}`;

export async function comparePage(who, params) {
  const { series: all } = await get(query({ mode: "latest", bucket: params.get("bucket") || undefined }));
  const chosen = new Set(params.getAll("s"));
  if (!chosen.size) all.slice(0, 2).forEach((s) => chosen.add(name(s)));
  const range = newRange(86400);
  const holder = h("div", { class: "chart", id: "chart", role: "img", "aria-label": "Chart comparing the chosen series" });
  let chart = null;

  function refs() {
    return all.filter((s) => chosen.has(name(s))).map((s) => ({ ...s, label: `${s.source} ${s.field}${s.unit ? ` (${s.unit})` : ""}` }));
  }
  let asked = 0;
  async function refresh(again = false) {
    const picked = refs();
    if (!picked.length) {
      holder.replaceChildren(h("p", {}, "Choose series to compare."));
      chart = null;
      return;
    }
    const ticket = ++asked;
    try {
      if (!chart) {
        holder.replaceChildren();
        chart = timeChart(holder, picked, range, (a, b) => {
          Object.assign(range, { start: a, end: b, preset: null });
          range.sync();
          refresh();
        });
      }
      chart.ensure(picked.map((p) => p.unit));
      const columns = chart.width();
      const drawn = await Promise.all(picked.map((ref) => m4(ref, range, columns)));
      if (ticket !== asked) return;
      chart.draw(drawn.map((d) => d.data), picked.map((p) => p.unit));
      requestAnimationFrame(() => {
        if (!again && ticket === asked && Math.abs(chart.width() - columns) > 1) refresh(true);
      });
    } catch (error) {
      say(error.message, "error");
    }
  }
  function toggle(box, s) {
    if (box.checked && chosen.size >= MAX) {
      box.checked = false;
      say(`At most ${MAX} series on one chart.`, "error");
      return;
    }
    if (box.checked) chosen.add(name(s));
    else chosen.delete(name(s));
    history.replaceState(null, "", `#/compare?${new URLSearchParams([...chosen].map((c) => ["s", c]))}`);
    if (chart) chart.redraw();
    chart = null;
    refresh();
  }
  const items = all.map((s) => {
    const box = h("input", { type: "checkbox", checked: chosen.has(name(s)) });
    box.addEventListener("change", () => toggle(box, s));
    return h("li", { "data-search": name(s).toLowerCase() }, h("label", {}, box, ` ${s.bucket} › ${s.source} › ${s.field}${s.unit ? ` (${s.unit})` : ""}`));
  });
  const filter = (text) => items.forEach((item) => (item.hidden = !item.dataset.search.includes(text)));
  const controls = rangeControls(range, (change = {}) => {
    if (change.redraw && chart) {
      chart.redraw();
    }
    if (!change.live) refresh();
  });
  show(
    h("h1", {}, "Compare series"),
    controls,
    holder,
    h("p", { class: "hint" }, "Drag across the chart to zoom in."),
    h(
      "fieldset",
      { class: "pick" },
      h("legend", {}, `Series (up to ${MAX})`),
      all.length ? searchBox("Search series", filter) : h("p", {}, "No series with data yet."),
      h("ul", { class: "picklist" }, items),
    ),
  );
  await refresh();
  return poller(range, refresh);
}
