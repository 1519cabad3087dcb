// The workflow editor: CodeMirror (vendored) over the definition's textarea, the server's
// validation as you type (each problem marked at its line), and the step graph redrawn beside
// it. Without script the textarea still posts the form and the server answers the same way.

const DEBOUNCE_MS = 350;

function problemItem(p) {
  const li = document.createElement("li");
  li.className = "problem";
  li.dataset.line = p.line;
  li.dataset.column = p.column;
  const jump = document.createElement("button");
  jump.type = "button";
  jump.className = "problem-jump";
  jump.dataset.line = p.line;
  jump.dataset.column = p.column;
  jump.textContent = `Line ${p.line}`;
  const where = document.createElement("code");
  where.textContent = p.location;
  const message = document.createElement("span");
  message.className = "problem-message";
  message.textContent = p.message;
  li.append(jump, " ", where, ": ", message);
  return li;
}

function summary(count) {
  if (!count) return "No problems found.";
  return `${count} problem${count === 1 ? "" : "s"}: fix ${count === 1 ? "it" : "them"} to save.`;
}

function setUp() {
  const form = document.getElementById("editor-form");
  const area = document.getElementById("definition");
  if (!form || !area || !window.CodeMirror) return;
  const list = document.getElementById("problems");
  const said = document.getElementById("problem-summary");
  const panel = document.getElementById("problem-panel");
  const graphBox = document.getElementById("editor-graph-box");
  const graphState = document.getElementById("graph-state");
  let escaped = false;  // Esc, then Tab, leaves the editor (no keyboard trap)

  const save = () => { cm.save(); form.requestSubmit(); };
  const cm = window.CodeMirror.fromTextArea(area, {
    mode: "yaml",
    lineNumbers: true,
    indentUnit: 2,
    tabSize: 2,
    indentWithTabs: false,
    lineWrapping: true,  // no sideways scrolling: every problem line is in view
    inputStyle: "contenteditable",  // focusable inside its scroll box; read by screen readers
    viewportMargin: Infinity,
    screenReaderLabel: "Workflow definition (YAML or JSON)",
    gutters: ["CodeMirror-linenumbers", "problem-gutter"],
    extraKeys: {
      "Ctrl-S": save,
      "Cmd-S": save,
      "Ctrl-Enter": save,
      "Esc": () => { escaped = true; },
      "Tab": (editor) => editor.execCommand(
        editor.somethingSelected() ? "indentMore" : "insertSoftTab"),
      "Shift-Tab": "indentLess",
    },
  });
  cm.on("keydown", (_editor, event) => {
    if (event.key === "Tab" && escaped) event.codemirrorIgnore = true;  // the browser moves on
    else if (!["Escape", "Shift"].includes(event.key)) escaped = false;
  });
  cm.on("focus", () => { escaped = false; });
  const input = cm.getInputField();
  input.setAttribute("aria-describedby", "editor-keys problem-summary");
  window.bendEditor = cm;  // for the browser tests and the console

  let marked = [];
  function mark(problems) {
    for (const line of marked) {
      cm.removeLineClass(line, "background", "cm-problem-line");
      cm.setGutterMarker(line, "problem-gutter", null);
    }
    marked = [];
    for (const p of problems) {
      const line = Math.min(Math.max(p.line - 1, 0), cm.lineCount() - 1);
      const dot = document.createElement("span");
      dot.className = "problem-marker";
      dot.title = p.message;
      dot.textContent = "●";
      dot.setAttribute("aria-hidden", "true");
      cm.setGutterMarker(line, "problem-gutter", dot);
      cm.addLineClass(line, "background", "cm-problem-line");
      marked.push(line);
    }
    cm.getWrapperElement().dataset.problemLines = [...new Set(marked.map((l) => l + 1))].join(",");
  }

  function show(problems) {
    list.replaceChildren(...problems.map(problemItem));
    panel.classList.toggle("has-problems", problems.length > 0);
    said.dataset.count = problems.length;
    if (said.textContent !== summary(problems.length)) said.textContent = summary(problems.length);
    mark(problems);
  }

  // Problems the server rendered (a refused save) are marked too.
  mark([...list.querySelectorAll("li.problem")].map((li) => ({
    line: Number(li.dataset.line), message: li.querySelector(".problem-message")?.textContent,
  })));

  list.addEventListener("click", (event) => {
    const jump = event.target.closest("button.problem-jump");
    if (!jump) return;
    cm.focus();
    cm.setCursor({line: Number(jump.dataset.line) - 1, ch: Number(jump.dataset.column) - 1});
  });

  let timer = null, sent = 0, controller = null;
  async function validate() {
    const seq = ++sent;
    controller?.abort();
    controller = new AbortController();
    const body = new URLSearchParams({
      csrf_token: form.elements.csrf_token.value, definition: cm.getValue()});
    form.dataset.validating = "true";
    try {
      const response = await fetch(form.dataset.validate, {
        method: "POST", body, credentials: "same-origin", signal: controller.signal,
        headers: {"Accept": "application/json"}});
      if (seq !== sent) return;
      if (response.redirected || !response.headers.get("content-type")?.includes("json")) {
        said.textContent = "Your session has ended: sign in again in another tab, then keep " +
          "typing (what you typed stays here).";
        return;
      }
      if (!response.ok) {
        said.textContent = `The server could not check the definition (HTTP ${response.status}); ` +
          "saving still checks it.";
        return;
      }
      const verdict = await response.json();
      if (seq !== sent) return;
      show(verdict.problems);
      if (verdict.graph_html !== null) {
        graphBox.innerHTML = verdict.graph_html;
        graphBox.classList.remove("stale");
        graphState.textContent = `Drawn from the definition as it stands (${verdict.steps} ` +
          `step${verdict.steps === 1 ? "" : "s"}).`;
      } else {
        graphBox.classList.add("stale");
        graphState.textContent = "The graph shows the last definition without problems.";
      }
      form.dataset.checked = String(seq);
    } catch (err) {
      if (err.name !== "AbortError") console.warn("validation failed", err);
    } finally {
      if (seq === sent) delete form.dataset.validating;
    }
  }
  cm.on("changes", () => {
    clearTimeout(timer);
    timer = setTimeout(validate, DEBOUNCE_MS);
  });
  form.addEventListener("submit", () => cm.save());
  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s" && !cm.hasFocus()) {
      event.preventDefault();
      save();
    }
  });
}

setUp();
