// Organisation -> buckets -> sources -> series, with units and last-seen times; creating and
// deleting buckets and sources; the empty state that shows how to send a first point.
import { api, get, query } from "./api.js";
import { ago, confirmDialog, field, h, say, searchBox, show } from "./dom.js";

const isAdmin = (who) => who.scopes.includes("admin");
const enc = encodeURIComponent;

const SHOWN = 200; // series listed on the home page at once; the search finds the others

export async function browse(who) {
  const [{ buckets }, latest] = await Promise.all([get("/v1/buckets?limit=1000"), get(query({ mode: "latest" }))]);
  const list = h("ul", { class: "cards", id: "buckets" });
  const rows = buckets.map((b) => {
    const item = h(
      "li",
      { "data-search": `${b.key} ${b.name} ${b.description}`.toLowerCase() },
      h("a", { href: `#/b/${enc(b.key)}` }, h("strong", {}, b.name), b.name !== b.key ? ` (${b.key})` : ""),
      b.description ? h("p", {}, b.description) : null,
    );
    list.append(item);
    return item;
  });
  const filter = (text) => rows.forEach((row) => (row.hidden = !row.dataset.search.includes(text)));
  show(
    h("h1", {}, `Organisation ${who.organisation}`),
    h("h2", {}, "Buckets"),
    buckets.length ? searchBox("Search buckets", filter) : null,
    buckets.length ? list : h("p", { class: "empty" }, "No bucket yet."),
    latest.series.length ? allSeries(latest.series) : null,
    isAdmin(who) ? createBucketForm() : null,
    buckets.length ? null : firstPoint("farm", true, who.organisation),
  );
}

// Every series the session may read, newest first, with a search over bucket, source, field, unit.
function allSeries(series) {
  const seen = (s) => (s.points[0] ? s.points[0].time : "");
  const sorted = [...series].sort((a, b) => seen(b).localeCompare(seen(a)));
  const body = h("tbody");
  const count = h("p", { class: "meta", "aria-live": "polite" });
  function render(text) {
    const found = sorted.filter((s) => `${s.bucket} ${s.source} ${s.field} ${s.unit || ""}`.toLowerCase().includes(text));
    body.replaceChildren(
      ...found.slice(0, SHOWN).map((s) => {
        const point = s.points[0];
        return h(
          "tr",
          {},
          h("td", {}, h("a", { href: `#/s/${enc(s.bucket)}/${enc(s.source)}/${enc(s.field)}` }, `${s.source} › ${s.field}`)),
          h("td", {}, s.bucket),
          h("td", {}, s.unit || ""),
          h("td", { class: "num" }, point ? String(point.value) : ""),
          h("td", {}, point ? h("time", { datetime: point.time, title: point.time }, ago(point.time)) : ""),
        );
      }),
    );
    count.textContent = found.length > SHOWN ? `${SHOWN} of ${found.length} series shown: search to narrow.` : `${found.length} series`;
  }
  render("");
  return h(
    "section",
    { "aria-labelledby": "all-series-title" },
    h("h2", { id: "all-series-title" }, "Series"),
    searchBox("Search series (bucket, source, field, unit)", render),
    count,
    h(
      "table",
      { id: "all-series" },
      h("caption", {}, "Every series, most recently seen first"),
      h("thead", {}, h("tr", {}, ["Series", "Bucket", "Unit", "Latest", "Last seen"].map((t) => h("th", { scope: "col" }, t)))),
      body,
    ),
  );
}

function createBucketForm() {
  const key = h("input", { name: "key", required: true, pattern: "[A-Za-z0-9._-]+", maxlength: 200 });
  const name = h("input", { name: "name" });
  const description = h("input", { name: "description" });
  const retention = h("input", { name: "retention", placeholder: "90d", pattern: "\\s*[0-9]+\\s*(us|ms|s|m|h|d|w)\\s*" });
  const summaries = h("input", { name: "keep_summaries", type: "checkbox" });
  async function create(event) {
    event.preventDefault();
    try {
      const body = { key: key.value.trim(), description: description.value };
      if (name.value.trim()) body.name = name.value.trim();
      if (retention.value.trim()) body.retention = retention.value.trim();
      if (summaries.checked) body.keep_summaries = true;
      await api("POST", "/v1/buckets", body);
      say(`Bucket ${body.key} created.`);
      location.hash = `#/b/${enc(body.key)}`;
    } catch (error) {
      say(error.message, "error");
    }
  }
  return h(
    "form",
    { class: "inline", id: "create-bucket", onsubmit: create },
    h("h2", {}, "New bucket"),
    field("Key", key, "Letters, digits, . _ -"),
    field("Name (optional)", name),
    field("Description (optional)", description),
    field("Retention (optional)", retention, "Points older than this expire: 90d, 12w; empty: kept forever"),
    field("Keep summaries", summaries, "When points expire, keep each chunk's count/min/max/sum"),
    h("button", { type: "submit" }, "Create bucket"),
  );
}

export async function bucketPage(who, bucketKey) {
  const [bucket, sourcePage, latest] = await Promise.all([
    get(`/v1/buckets/${enc(bucketKey)}`),
    get(`/v1/buckets/${enc(bucketKey)}/sources?limit=1000`),
    get(query({ bucket: bucketKey, mode: "latest" })),
  ]);
  const bySource = new Map(sourcePage.sources.map((s) => [s.key, []]));
  for (const series of latest.series) {
    if (!bySource.has(series.source)) bySource.set(series.source, []);
    bySource.get(series.source).push(series);
  }
  const body = h("tbody");
  const rows = [];
  for (const source of sourcePage.sources) {
    const series = bySource.get(source.key) || [];
    const cells = series.length ? series : [null];
    cells.forEach((one, index) => {
      const point = one && one.points[0];
      const href = one ? `#/s/${enc(bucketKey)}/${enc(source.key)}/${enc(one.field)}` : null;
      const row = h(
        "tr",
        { "data-search": `${source.key} ${source.name || ""} ${one ? one.field : ""} ${one && one.unit ? one.unit : ""}`.toLowerCase() },
        h("td", {}, index === 0 ? h("span", {}, source.name && source.name !== source.key ? `${source.name} (${source.key})` : source.key) : ""),
        h("td", {}, one ? h("a", { href }, one.field) : h("em", {}, "no data yet")),
        h("td", {}, one && one.unit ? one.unit : ""),
        h("td", { class: "num" }, point ? String(point.value) : ""),
        h("td", {}, point ? h("time", { datetime: point.time, title: point.time }, ago(point.time)) : ""),
        h(
          "td",
          {},
          index === 0 && isAdmin(who)
            ? h("button", { type: "button", class: "small danger", "aria-label": `Delete source ${source.key}`, onclick: () => deleteSource(who, bucketKey, source, series.length) }, "Delete")
            : "",
        ),
      );
      rows.push(row);
      body.append(row);
    });
  }
  const filter = (text) => rows.forEach((row) => (row.hidden = !row.dataset.search.includes(text)));
  const stats = bucket.stats || {};
  show(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/" }, who.organisation), " › ", bucket.key),
    h("h1", {}, `Bucket ${bucket.name}`),
    bucket.description ? h("p", {}, bucket.description) : null,
    h("p", { class: "meta", id: "bucket-stats" }, `${stats.sources ?? 0} sources · ${stats.points ?? 0} points · ${latest.series.length} series`),
    sourcePage.sources.length
      ? [
          searchBox("Search sources and series", filter),
          h(
            "table",
            { id: "series-table" },
            h("caption", {}, "Sources and their series"),
            h("thead", {}, h("tr", {}, ["Source", "Series", "Unit", "Latest", "Last seen", ""].map((t) => h("th", { scope: "col" }, t)))),
            body,
          ),
          latest.series.length ? h("p", {}, h("a", { href: `#/compare?bucket=${enc(bucketKey)}` }, "Compare series of this bucket")) : null,
        ]
      : null,
    latest.series.length ? null : firstPoint(bucketKey, false, who.organisation),
    isAdmin(who) ? createSourceForm(who, bucketKey) : null,
    isAdmin(who)
      ? h("p", {}, h("button", { type: "button", class: "danger", id: "delete-bucket", onclick: () => deleteBucket(bucket, latest.series.length) }, `Delete bucket ${bucket.key}`))
      : null,
  );
}

function createSourceForm(who, bucketKey) {
  const key = h("input", { name: "key", pattern: "[A-Za-z0-9._-]+", maxlength: 200 });
  const name = h("input", { name: "name" });
  async function create(event) {
    event.preventDefault();
    try {
      const body = {};
      if (key.value.trim()) body.key = key.value.trim();
      if (name.value.trim()) body.name = name.value.trim();
      const made = await api("POST", `/v1/buckets/${enc(bucketKey)}/sources`, body);
      say(`Source ${made.key} created.`);
      await bucketPage(who, bucketKey);
    } catch (error) {
      say(error.message, "error");
    }
  }
  return h(
    "form",
    { class: "inline", id: "create-source", onsubmit: create },
    h("h2", {}, "New source"),
    field("Key (optional: generated)", key),
    field("Name (optional)", name),
    h("button", { type: "submit" }, "Create source"),
  );
}

async function deleteBucket(bucket, seriesCount) {
  const stats = bucket.stats || {};
  const yes = await confirmDialog(
    `Delete bucket ${bucket.key}?`,
    [
      `This deletes bucket ${bucket.key} (${bucket.name}) with its ${stats.sources ?? 0} sources, ${seriesCount} series and ${stats.points ?? 0} points.`,
      `Its ${stats.keys ?? 0} keys limited to it stop working. This cannot be undone.`,
    ],
    `Delete ${bucket.key} and its data`,
  );
  if (!yes) return;
  try {
    await api("DELETE", `/v1/buckets/${enc(bucket.key)}`);
    say(`Bucket ${bucket.key} deleted.`);
    location.hash = "#/";
  } catch (error) {
    say(error.message, "error");
  }
}

async function deleteSource(who, bucketKey, source, seriesCount) {
  const yes = await confirmDialog(
    `Delete source ${source.key}?`,
    [`This deletes source ${source.key} of bucket ${bucketKey} with its ${seriesCount} series and all their points. This cannot be undone.`],
    `Delete ${source.key} and its data`,
  );
  if (!yes) return;
  try {
    await api("DELETE", `/v1/buckets/${enc(bucketKey)}/sources/${enc(source.key)}`);
    say(`Source ${source.key} deleted.`);
    await bucketPage(who, bucketKey);
  } catch (error) {
    say(error.message, "error");
  }
}

// How to send a first point: the native API and each dialect, with this server's own address.
export function firstPoint(bucketKey, needsBucket, org) {
  const host = location.origin;
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const bucket = bucketKey || "farm";
  const create = needsBucket
    ? `curl -s -X POST ${host}/v1/buckets -H "Authorization: Bearer $SB_KEY" \\\n  -H 'Content-Type: application/json' -d '{"key": "${bucket}"}'\n`
    : "";
  const examples = [
    [
      "Native API",
      "Sources and fields appear with their first point.",
      `${create}curl -s -X POST ${host}/v1/write -H "Authorization: Bearer $SB_KEY" \\\n  -H 'Content-Type: application/json' \\\n  -d '{"bucket": "${bucket}", "points": [\n        {"source": "ESP32-001", "field": "temperature", "value": 21.5, "time": "${now}"}]}'`,
    ],
    [
      "dakkio",
      "The source (dataSourceId) must exist first: create ESP32-001 below.",
      `curl -s -X POST ${host}/api/data -H "X-API-Key: $SB_KEY" -H 'Content-Type: application/json' \\\n  -d '{"bucketId": "${bucket}", "dataSourceId": "ESP32-001",\n       "timestamp": "${now}", "values": {"temperature": 21.5}}'`,
    ],
    [
      "Databoom",
      "The device is the source; its signals are the fields.",
      `curl -s -X POST ${host}/v1/signals/push -H "Authorization: Bearer $SB_KEY" -H 'Content-Type: application/json' \\\n  -d '{"device": "ESP32-001", "date": "${now}",\n       "signals": [{"name": "temperature", "value": 21.5}]}'`,
    ],
    [
      "Datacooee",
      "The input is a source that must exist first (create senxxxxxxxxxx below).",
      `curl -s -X POST ${host}/api/external/v1/inputs/senxxxxxxxxxx/inputdata/ \\\n  -H 'content-type: application/vnd.api+json' -H 'organization-id: ${org}' \\\n  -H "organization-api-key: $SB_KEY" \\\n  --data '{"data": {"type": "SensorData", "id": "null",\n    "attributes": {"value": "21.5", "timestamp": "${now}"},\n    "relationships": {"sensor": {"data": {"type": "Sensor", "id": "senxxxxxxxxxx"}}}}}'`,
    ],
    [
      "DiagRAMS",
      "With an access token from POST /v0/oauth2/token (docs/dialects/diagrams.md).",
      `curl -s -X POST ${host}/v0/organisations/${org}/data/${bucket} -H "Authorization: bearer $ACCESS_TOKEN" \\\n  -H 'Content-Type: application/json' -d '[{"sensorId": "1", "date": "${now}", "value": 21.5}]'`,
    ],
    [
      "Madevo",
      "With a token from POST /restapi/login (docs/dialects/madevo.md).",
      `curl -s -X POST ${host}/restapi/datasource/insert -H "Authorization: Bearer $TOKEN" \\\n  -H 'Content-Type: application/json' \\\n  -d '{"datasource_id": "${bucket}",\n       "data": [{"timestamp": "${now}", "metric": "temperature", "value": 21.5}]}'`,
    ],
  ];
  return h(
    "section",
    { class: "first-point", id: "first-point", "aria-labelledby": "first-point-title" },
    h("h2", { id: "first-point-title" }, "Send your first point"),
    h("p", {}, "With a key that may write (create one under Keys; $SB_KEY below), any of these stores a point; then reload this page. The dialects' own pages (docs/dialects/) say what each one maps to."),
    examples.map(([name, note, text]) => h("details", { open: name === "Native API" }, h("summary", {}, name), h("p", {}, note), h("pre", {}, h("code", {}, text)))),
  );
}
