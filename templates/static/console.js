// The SQL console, better with JavaScript: runs and cancels through the JSON API (the page's
// session and its CSRF token), shows each result without reloading, and runs on Ctrl+Enter.
// Without this script the same form posts to /console/run and the page comes back.
// Everything the server returns is put on the page as text (textContent), never as HTML.
"use strict";

(function () {
  const form = document.getElementById("console-form");
  if (!form || !window.fetch) {
    return;
  }
  const sql = document.getElementById("console-sql");
  const runButton = document.getElementById("console-run");
  const cancelForm = document.getElementById("console-cancel");
  const results = document.getElementById("console-results");
  const api = form.dataset.api;
  const csrf = form.querySelector("input[name=csrf_token]");
  const headers = {"Content-Type": "application/json", "Accept": "application/json"};
  if (csrf) {
    headers["X-CSRF-Token"] = csrf.value;
  }

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) {
      node.textContent = text;
    }
    if (className) {
      node.className = className;
    }
    return node;
  }

  function message(text, kind) {
    return element("p", text, "message " + kind);
  }

  function table(result) {
    const wrapper = element("div", null, "table-scroll");
    const grid = element("table", null, "data");
    const head = grid.createTHead().insertRow();
    result.columns.forEach(function (name) {
      head.appendChild(element("th", name));
    });
    const body = grid.createTBody();
    result.rows.forEach(function (row) {
      const line = body.insertRow();
      row.forEach(function (value) {
        line.appendChild(value === null ? element("td", "NULL", "null") : element("td", value));
      });
    });
    wrapper.appendChild(grid);
    return wrapper;
  }

  function show(run) {
    results.replaceChildren();
    const said = run.summary + "." + (run.note ? " " + run.note : "");
    results.appendChild(message(said, run.not_run || run.note ? "error" : "ok"));
    run.results.forEach(function (result, index) {
      const article = element("article", null, "result");
      const heading = element("h3", "Statement " + (index + 1) + " ");
      heading.appendChild(element("span", "(line " + result.line + ", " + result.seconds.toFixed(3) + " s)", "note"));
      article.appendChild(heading);
      article.appendChild(element("pre", result.statement, "statement"));
      if (result.error) {
        const at = result.error_line ? " (line " + result.error_line + ", column " + result.error_column + ")" : "";
        article.appendChild(message(result.error + at, "error"));
      } else if (result.columns.length) {
        article.appendChild(table(result));
        article.appendChild(element("p", result.summary, "note"));
      } else {
        article.appendChild(message(result.status || "Done.", "ok"));
      }
      results.appendChild(article);
    });
  }

  function problem(response, body) {
    return (body && (body.detail || body.title)) || ("The server answered " + response.status + ".");
  }

  async function post(path, payload) {
    const response = await fetch(path, {
      method: "POST", headers: headers, body: JSON.stringify(payload), credentials: "same-origin",
    });
    let body = null;
    try {
      body = await response.json();
    } catch (ignored) {
      body = null;
    }
    if (!response.ok) {
      throw new Error(problem(response, body));
    }
    return body;
  }

  async function run() {
    runButton.disabled = true;
    results.replaceChildren(message("Running…", "info"));
    try {
      show(await post(api, {sql: sql.value}));
    } catch (error) {
      results.replaceChildren(message(error.message, "error"));
    } finally {
      runButton.disabled = false;
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    run();
  });
  sql.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      run();
    }
  });
  cancelForm.addEventListener("submit", async function (event) {
    event.preventDefault();
    try {
      const answer = await post(api + "/cancel", {});
      if (!answer.cancelled) {
        results.prepend(message("Nothing was running in this console.", "info"));
      }
    } catch (error) {
      results.prepend(message(error.message, "error"));
    }
  });
}());
