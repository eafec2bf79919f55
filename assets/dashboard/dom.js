// Building the page's DOM safely. Every value that came from a user or an
// upstream (labels, error texts, model names) becomes a text node or an
// attribute value, never markup: there is no innerHTML anywhere in the page,
// and attributes that run code (on*) or load things (src, href) cannot be
// set through h().

const SVG = "http://www.w3.org/2000/svg";
const REFUSED = /^(on|src$|href$|srcdoc$|formaction$|style$)/i;

function build(element, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.setAttribute("class", value);
    else if (name === "text") element.textContent = String(value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (REFUSED.test(name)) throw new Error(`h(): refusing attribute ${name}`);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

// h("td", {class: "x"}, "text", otherNode)
export const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);

export const s = (tag, attrs, ...children) => build(document.createElementNS(SVG, tag), attrs, children);

export const $ = (selector, root = document) => root.querySelector(selector);

// Writes only on change, so a refresh that changes nothing touches nothing
// (no reflow, no lost selection).
export function setText(element, text) {
  const value = text === undefined || text === null ? "" : String(text);
  if (element.textContent !== value) element.textContent = value;
}

export function setAttr(element, name, value) {
  if (element.getAttribute(name) !== value) element.setAttribute(name, value);
}

export function clear(element) {
  element.replaceChildren();
}

// A transient message for the operator: what an action did, or why not.
let noticeTimer = 0;
export function notify(text, kind = "ok") {
  const box = $("#notice");
  box.replaceChildren(h("span", { class: `toast ${kind}` }, kind === "error" ? "Failed: " : "", text));
  box.dataset.kind = kind;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => box.replaceChildren(), kind === "error" ? 12000 : 6000);
}

// A modal question through the page's one <dialog>. `fields` are inputs to
// show; resolves to their values by name, or null when cancelled.
export function ask({ title, text, ok = "OK", danger = false, fields = [] }) {
  const dialog = $("#dialog");
  setText($("#dialog-title"), title);
  setText($("#dialog-text"), text || "");
  const okButton = $("#dialog-ok");
  setText(okButton, ok);
  okButton.classList.toggle("danger", danger);
  const inputs = fields.map((f) => {
    const input = h("input", { type: f.type || "text", name: f.name, value: f.value ?? "",
      min: f.min, max: f.max, maxlength: f.maxlength, required: f.required });
    return { name: f.name, input, label: h("label", {}, f.label, input) };
  });
  $("#dialog-fields").replaceChildren(...inputs.map((i) => i.label));
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      if (dialog.returnValue !== "ok") return resolve(null);
      resolve(Object.fromEntries(inputs.map((i) => [i.name, i.input.value])));
    }, { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    (inputs[0] ? inputs[0].input : okButton).focus();
  });
}
