// Keys (create with scopes and a bucket limit, the secret shown once, revoke) and users.
import { api, get } from "./api.js";
import { confirmDialog, field, h, say, show, when } from "./dom.js";

const SCOPES = [
  ["data:read", "Read data"],
  ["data:write", "Write data"],
  ["admin", "Administer the organisation"],
];
const ROLES = ["reader", "writer", "admin"];
const enc = encodeURIComponent;

export async function keysPage(who, created = null) {
  const [{ keys }, { buckets }] = await Promise.all([get("/v1/keys"), get("/v1/buckets?limit=1000")]);
  const name = h("input", { name: "name", required: true, maxlength: 200 });
  const boxes = SCOPES.map(([scope, label]) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "scope", value: scope, checked: scope === "data:read" }), ` ${label} (${scope})`));
  const bucket = h("select", { name: "bucket" }, h("option", { value: "" }, "Every bucket"), buckets.map((b) => h("option", { value: b.key }, b.key)));
  async function create(event) {
    event.preventDefault();
    const scopes = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
    if (!scopes.length) {
      say("Choose at least one scope.", "error");
      return;
    }
    try {
      const body = { name: name.value.trim(), scopes };
      if (bucket.value) body.bucket = bucket.value;
      const made = await api("POST", "/v1/keys", body);
      await keysPage(who, made);
      say(`Key ${made.name} created.`);
    } catch (error) {
      say(error.message, "error");
    }
  }
  const rows = keys.map((k) =>
    h(
      "tr",
      { "data-key": k.id, class: k.revoked ? "revoked" : "" },
      h("td", {}, k.name),
      h("td", {}, h("code", {}, k.id)),
      h("td", {}, k.scopes.join(", ")),
      h("td", {}, k.bucket || "every bucket"),
      h("td", {}, when(k.created)),
      h(
        "td",
        {},
        k.revoked
          ? `revoked ${when(k.revoked)}`
          : k.id === who.key
            ? "this session's key"
            : h("button", { type: "button", class: "small danger", "aria-label": `Revoke key ${k.name}`, onclick: () => revoke(who, k) }, "Revoke"),
      ),
    ),
  );
  show(
    h("h1", {}, "API keys"),
    created ? secretOnce(created) : null,
    h(
      "table",
      { id: "keys" },
      h("caption", {}, `Keys of ${who.organisation}`),
      h("thead", {}, h("tr", {}, ["Name", "Id", "Scopes", "Bucket", "Created", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows),
    ),
    h(
      "form",
      { class: "inline", id: "create-key", onsubmit: create },
      h("h2", {}, "New key"),
      field("Name", name),
      h("fieldset", {}, h("legend", {}, "Scopes"), boxes),
      field("Limited to bucket", bucket),
      h("button", { type: "submit" }, "Create key"),
    ),
  );
}

function secretOnce(made) {
  const secret = h("input", { type: "text", readonly: true, value: made.key, id: "new-key-secret", class: "secret" });
  return h(
    "section",
    { class: "once", role: "alert", "aria-labelledby": "once-title" },
    h("h2", { id: "once-title" }, `Key ${made.name}: copy it now`),
    h("p", {}, "This is the only time the key is shown. Store it where your device or script reads it."),
    field("The new key", secret),
    h(
      "button",
      {
        type: "button",
        onclick: async () => {
          secret.select();
          try {
            await navigator.clipboard.writeText(made.key);
            say("Copied.");
          } catch {
            say("Select the key and copy it.");
          }
        },
      },
      "Copy",
    ),
  );
}

async function revoke(who, k) {
  const yes = await confirmDialog(`Revoke key ${k.name}?`, [`Key ${k.name} (${k.id}, ${k.scopes.join(", ")}) stops working at once, everywhere it is used. This cannot be undone.`], `Revoke ${k.name}`);
  if (!yes) return;
  try {
    await api("DELETE", `/v1/keys/${enc(k.id)}`);
    await keysPage(who);
    say(`Key ${k.name} revoked.`);
  } catch (error) {
    say(error.message, "error");
  }
}

export async function usersPage(who) {
  const { users } = await get("/v1/users");
  const email = h("input", { type: "email", name: "email", required: true, autocomplete: "off" });
  const password = h("input", { type: "password", name: "password", required: true, minlength: 8, autocomplete: "new-password" });
  const role = h("select", { name: "role" }, ROLES.map((r) => h("option", { value: r }, r)));
  async function create(event) {
    event.preventDefault();
    try {
      await api("POST", "/v1/users", { email: email.value.trim(), password: password.value, role: role.value });
      await usersPage(who);
      say(`User ${email.value.trim()} created.`);
    } catch (error) {
      say(error.message, "error");
    }
  }
  const rows = users.map((u) => {
    const change = h("select", { "aria-label": `Role of ${u.email}` }, ROLES.map((r) => h("option", { value: r, selected: r === u.role }, r)));
    change.addEventListener("change", async () => {
      try {
        await api("PATCH", `/v1/users/${enc(u.id)}`, { role: change.value });
        say(`${u.email} is now ${change.value}.`);
      } catch (error) {
        change.value = u.role;
        say(error.message, "error");
      }
    });
    return h(
      "tr",
      { "data-user": u.email },
      h("td", {}, u.email),
      h("td", {}, change),
      h("td", {}, when(u.created)),
      h("td", {}, h("button", { type: "button", class: "small danger", "aria-label": `Delete user ${u.email}`, onclick: () => remove(who, u) }, "Delete")),
    );
  });
  show(
    h("h1", {}, "Users"),
    h(
      "table",
      { id: "users" },
      h("caption", {}, `People who sign in to ${who.organisation}`),
      h("thead", {}, h("tr", {}, ["Email", "Role", "Created", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows),
    ),
    h(
      "form",
      { class: "inline", id: "create-user", onsubmit: create },
      h("h2", {}, "New user"),
      field("Email", email),
      field("Password", password, "At least 8 characters"),
      field("Role", role, "reader: read data; writer: read and write; admin: everything"),
      h("button", { type: "submit" }, "Create user"),
    ),
  );
}

async function remove(who, u) {
  const yes = await confirmDialog(`Delete user ${u.email}?`, [`${u.email} (${u.role}) can no longer sign in; their sessions end. Their organisation's data stays.`], `Delete ${u.email}`);
  if (!yes) return;
  try {
    await api("DELETE", `/v1/users/${enc(u.id)}`);
    await usersPage(who);
    say(`User ${u.email} deleted.`);
  } catch (error) {
    say(error.message, "error");
  }
}
