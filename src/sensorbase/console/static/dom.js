// Elements built from data, never from HTML strings: names and values a user typed are text.
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function show(...children) {
  const main = document.getElementById("main");
  main.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return main;
}

export function say(text, kind = "") {
  const status = document.getElementById("status");
  status.textContent = text;
  status.className = `status ${kind}`;
}

let fieldCount = 0;
// A labelled control: <label for> and the control, with an id made here.
export function field(label, control, hint) {
  const id = control.id || `f${++fieldCount}`;
  control.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hint ? h("small", {}, hint) : null);
}

// A modal confirmation naming what goes; resolves true only on the explicit button.
export function confirmDialog(title, lines, action) {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, title),
      lines.map((line) => h("p", {}, line)),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "danger", id: "confirm-yes", onclick: () => done(true) }, action),
        h("button", { type: "button", id: "confirm-no", onclick: () => done(false) }, "Cancel"),
      ),
    );
    function done(answer) {
      dialog.close();
      dialog.remove();
      resolve(answer);
    }
    dialog.addEventListener("cancel", () => done(false));
    document.body.append(dialog);
    dialog.showModal();
    dialog.querySelector("#confirm-no").focus();
  });
}

export function when(text) {
  if (!text) return "";
  const date = new Date(Date.parse(`${text.slice(0, 23)}Z`));
  return date.toLocaleString();
}

export function ago(text) {
  if (!text) return "never";
  const s = (Date.now() - Date.parse(`${text.slice(0, 23)}Z`)) / 1000;
  if (s < 0) return "in the future";
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function searchBox(label, onInput) {
  const input = h("input", { type: "search", placeholder: "Search", oninput: () => onInput(input.value.trim().toLowerCase()) });
  return field(label, input);
}
