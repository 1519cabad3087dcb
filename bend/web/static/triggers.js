// The cron form's preview: as you type, the next five fire times the scheduler would use
// (POSTed to the preview route, debounced), or the server's problems next to their fields.
const DEBOUNCE_MS = 300;
const form = document.getElementById("cron-form");
if (form) {
  const list = document.getElementById("cron-preview");
  const state = document.getElementById("cron-preview-state");
  let timer = null, sent = 0, controller = null;

  // The preview's verdict replaces every field's error, the last submit's too: both are the
  // server's same checks, and this one is of what is typed now.
  function showErrors(errors) {
    for (const el of form.querySelectorAll(".field-error")) el.remove();
    for (const input of form.querySelectorAll("[aria-invalid]")) {
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
    }
    for (const [name, message] of Object.entries(errors)) {
      const input = form.elements[name];
      const field = input instanceof RadioNodeList ? input[0] : input;
      if (!field) continue;
      const note = document.createElement("p");
      note.className = "text-error small field-error";
      note.id = `${field.id}-error`;
      note.textContent = message;
      field.insertAdjacentElement("afterend", note);
      field.setAttribute("aria-invalid", "true");
      field.setAttribute("aria-describedby", note.id);
    }
  }

  async function preview() {
    const seq = ++sent;
    controller?.abort();
    controller = new AbortController();
    form.dataset.previewing = "true";
    try {
      const response = await fetch(form.dataset.preview, {
        method: "POST", body: new URLSearchParams(new FormData(form)),
        credentials: "same-origin", signal: controller.signal,
        headers: {"Accept": "application/json"}});
      if (seq !== sent) return;
      if (response.redirected || !response.headers.get("content-type")?.includes("json")) {
        state.textContent = "Your session has ended: sign in again to see the preview.";
        return;
      }
      const verdict = await response.json();
      if (seq !== sent) return;
      list.replaceChildren(...verdict.times.map((t) => {
        const item = document.createElement("li");
        item.dataset.at = t.at;
        const time = document.createElement("time");
        time.dateTime = t.at;
        time.textContent = `${t.local} (${t.at})`;
        item.append(time);
        return item;
      }));
      showErrors(verdict.errors);
      if (!Object.keys(verdict.errors).length) document.getElementById("form-errors")?.remove();
      state.textContent = Object.keys(verdict.errors).length
        ? "Fix the fields marked to see when it fires."
        : verdict.times.length ? "As the scheduler will fire it:" : "It never fires.";
      form.dataset.previewed = String(seq);
    } catch (err) {
      if (err.name !== "AbortError") console.warn("preview failed", err);
    } finally {
      if (seq === sent) delete form.dataset.previewing;
    }
  }

  form.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(preview, DEBOUNCE_MS);
  });
  if (form.elements.cron.value) preview();
}
