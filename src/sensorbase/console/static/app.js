// The console: a hash router over a few views. State kept here: who is signed in.
import { resume, signIn, signOut } from "./api.js";
import { browse, bucketPage } from "./browse.js";
import { comparePage } from "./compare.js";
import { h, field, say, show } from "./dom.js";
import { keysPage, usersPage } from "./manage.js";
import { seriesPage } from "./series.js";

let who = null;
let leaving = null; // the current view's clean-up (timers)

const routes = [
  [/^#?\/?$/, () => browse(who)],
  [/^#\/b\/([^/]+)$/, (m) => bucketPage(who, decodeURIComponent(m[1]))],
  [/^#\/s\/([^/]+)\/([^/]+)\/([^/]+)$/, (m) => seriesPage(who, ...m.slice(1, 4).map(decodeURIComponent))],
  [/^#\/compare(?:\?(.*))?$/, (m) => comparePage(who, new URLSearchParams(m[1] || ""))],
  [/^#\/keys$/, () => keysPage(who)],
  [/^#\/users$/, () => usersPage(who)],
];

async function route() {
  if (leaving) leaving();
  leaving = null;
  say("");
  if (!who) {
    signInPage();
    return;
  }
  const hash = location.hash || "#/";
  for (const [pattern, view] of routes) {
    const match = hash.match(pattern);
    if (match) {
      try {
        leaving = (await view(match)) || null;
      } catch (error) {
        show(h("h1", {}, "Something went wrong"), h("p", { class: "error" }, error.message));
      }
      document.getElementById("main").focus({ preventScroll: true });
      return;
    }
  }
  show(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to your data")));
}

function signedIn(found) {
  who = found;
  const top = document.getElementById("top");
  top.hidden = !who;
  if (who) {
    const label = who.email ? `${who.email} · ${who.organisation}` : `key ${who.key} · ${who.organisation}`;
    document.getElementById("who").textContent = label;
    const admin = who.scopes.includes("admin");
    for (const link of top.querySelectorAll("[data-admin]")) link.hidden = !admin;
  }
}

function signInPage() {
  const error = h("p", { class: "error", role: "alert", id: "sign-in-error" });
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const key = h("input", { type: "password", name: "key", autocomplete: "off", required: true, spellcheck: "false" });
  async function attempt(event, credentials) {
    event.preventDefault();
    error.textContent = "";
    try {
      signedIn(await signIn(credentials()));
      if (!location.hash || location.hash === "#/signin") location.hash = "#/";
      else route();
    } catch (failure) {
      error.textContent = failure.status === 401 ? "Those credentials were not accepted." : failure.message;
    }
  }
  show(
    h("h1", {}, "Sign in to Sensorbase"),
    h(
      "div",
      { class: "sign-in" },
      h(
        "form",
        { id: "sign-in-user", method: "post", action: "/console/api/session", onsubmit: (e) => attempt(e, () => ({ email: email.value, password: password.value })) },
        h("h2", {}, "With your email"),
        field("Email", email),
        field("Password", password),
        h("button", { type: "submit" }, "Sign in"),
      ),
      h(
        "form",
        { id: "sign-in-key", method: "post", action: "/console/api/session", onsubmit: (e) => attempt(e, () => ({ key: key.value.trim() })) },
        h("h2", {}, "With an API key"),
        field("API key", key, "sb_… as it was shown once; it stays in this tab's memory only."),
        h("button", { type: "submit" }, "Sign in with the key"),
      ),
    ),
    error,
  );
}

document.getElementById("sign-out").addEventListener("click", async () => {
  try {
    await signOut();
  } finally {
    signedIn(null);
    location.hash = "#/";
    route();
  }
});

window.addEventListener("sensorbase:signed-out", () => {
  if (!who) return;
  signedIn(null);
  route();
});
window.addEventListener("hashchange", route);
resume()
  .then((found) => {
    signedIn(found);
    route();
  })
  .catch((error) => {
    show(h("h1", {}, "The server did not answer"), h("p", { class: "error" }, error.message));
  });
