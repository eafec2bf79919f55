// Asking for the admin key once per tab. A refused key gets a clear message;
// a keygate without ADMIN_API_KEY gets the steps to enable it instead of a
// form that could never work.

import { api, session } from "./api.js";
import { $, setText } from "./dom.js";

// Resolves once a key is in the session (checked, unless it was there
// already). `message` says why the key is asked for again.
export async function login(message = "") {
  // A key from earlier in this tab is used as it is: the first refresh
  // finds out soon enough if it no longer works (and asks again).
  if (session.get()) return;
  // Asked without a key: a 403 says the admin API is off altogether.
  try {
    await api.check("");
  } catch (e) {
    if (e.adminDisabled) return showDisabled();
  }
  showForm(message);
  return new Promise((resolve) => {
    $("#login-form").addEventListener("submit", async function onSubmit(event) {
      event.preventDefault();
      const input = $("#admin-key");
      const key = input.value.trim();
      setText($("#login-message"), "");
      $("#login-submit").disabled = true;
      try {
        await api.check(key);
        session.set(key);
        input.value = "";
        $("#login-form").removeEventListener("submit", onSubmit);
        $("#login").hidden = true;
        resolve();
      } catch (e) {
        if (e.adminDisabled) return showDisabled();
        setText($("#login-message"), e.unauthorized
          ? "Wrong admin key: keygate refused it (401). Use the value of ADMIN_API_KEY this keygate was started with."
          : e.message);
        input.select();
      } finally {
        $("#login-submit").disabled = false;
      }
    });
  });
}

function showForm(message) {
  $("#login").hidden = false;
  $("#login-form").hidden = false;
  $("#disabled-help").hidden = true;
  setText($("#login-message"), message);
  $("#admin-key").focus();
}

// Never resolves: there is nothing to show until keygate restarts.
function showDisabled() {
  $("#login").hidden = false;
  $("#login-form").hidden = true;
  $("#disabled-help").hidden = false;
  return new Promise(() => {});
}
