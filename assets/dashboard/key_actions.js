// What the operator can do to keys: add, edit label and weight, enable and
// disable, delete, test one or all, reset a pool. Each action says what it
// did (or why not) and asks for a refresh, so the table follows at once.

import { api } from "./api.js";
import { $, ask, notify } from "./dom.js";

export function bindKeyActions({ keys, refresh, onAuthLost }) {
  const run = async (work) => {
    try {
      const message = await work();
      if (message) notify(message, "ok");
    } catch (e) {
      if (e.unauthorized) return onAuthLost();
      notify(e.message, "error");
    } finally {
      refresh();
    }
  };

  $("#add-key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const secret = $("#add-secret");
    const provider = $("#add-provider").value;
    const label = $("#add-label").value.trim();
    const weight = Number($("#add-weight").value || 1);
    const button = $("#add-submit");
    button.disabled = true;
    run(async () => {
      try {
        const added = await api.addKey(provider, { key: secret.value.trim(), label: label || undefined, weight });
        // The secret leaves the page as soon as keygate has it.
        secret.value = "";
        $("#add-label").value = "";
        const warning = added.warning ? ` Warning: ${added.warning}` : "";
        return `Added ${added.masked} to ${provider}${label ? ` as “${label}”` : ""}.${warning}`;
      } finally {
        button.disabled = false;
      }
    });
  });

  keys.root.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const tr = button.closest("tr[data-key-id]");
    const provider = button.dataset.provider || (tr && tr.dataset.provider);
    const key = tr ? keys.pools.get(provider).rows.get(tr.dataset.keyId).key : null;
    const name = key ? (key.label || key.masked) : "";
    switch (button.dataset.action) {
      case "edit": return run(async () => {
        const answer = await ask({
          title: `Edit ${name}`, ok: "Save",
          fields: [
            { name: "label", label: "Label", value: key.label === key.masked ? "" : key.label, maxlength: 100 },
            { name: "weight", label: "Weight", type: "number", value: key.weight, min: 1, max: 1000, required: true },
            { name: "scope", label: "Cache scope (blank: its own)", value: key.scope === key.id ? "" : key.scope, maxlength: 100 },
          ],
        });
        if (!answer) return null;
        // An empty scope makes the key its own scope again.
        const change = { weight: Number(answer.weight), scope: answer.scope.trim() };
        if (answer.label.trim()) change.label = answer.label.trim();
        await api.updateKey(provider, key.id, change);
        return `Saved ${change.label || name}: weight ${change.weight}.`;
      });
      case "toggle": return run(async () => {
        await api.updateKey(provider, key.id, { enabled: !key.enabled });
        return `${key.enabled ? "Disabled" : "Enabled"} ${name}.`;
      });
      case "delete": return run(async () => {
        const sure = await ask({
          title: `Delete ${name}?`, ok: "Delete key", danger: true,
          text: `The key is removed from the ${provider} pool and from the database. A request in flight on it still finishes. This cannot be undone: to use the key again, add it again.`,
        });
        if (!sure) return null;
        await api.deleteKey(provider, key.id);
        return `Deleted ${name}.`;
      });
      case "test": return run(async () => describeTests(await api.test(provider, key.id)));
      case "test-all": return run(async () => describeTests(await api.test(provider)));
      case "reset": return run(async () => {
        const sure = await ask({
          title: `Reset the ${provider} pool?`, ok: "Reset", danger: true,
          text: "Every cooldown, ejection and invalid mark of this provider's keys is cleared, and their failure counts and histories start again from zero (request and success totals stay).",
        });
        if (!sure) return null;
        await api.reset(provider);
        return `Reset the ${provider} pool.`;
      });
      default: return undefined;
    }
  });
}

// A key check's result, as KeyCheck serialises: {result: ok|invalid|unreachable, ...}.
function describeTests(results) {
  if (!results.length) return "No keys to test.";
  return results.map((r) => {
    const detail = r.reason;
    return `${r.label}: ${r.result}${detail ? ` (${detail})` : ""}`;
  }).join("; ");
}
