// The reports' table component: every table.ent-table can be sorted by a click on a column header,
// filtered by the text of its rows, and is shown PAGE_SIZE rows at a time when it is longer.
// Plain DOM, no library, no network: the page must read the same from a mail attachment.
(function () {
  "use strict";
  var PAGE_SIZE = 25;

  function sortKey(cell) {
    var key = cell.getAttribute("data-sort");
    return key === null ? cell.textContent.trim() : key;
  }

  // "1,234.50", "12.5%", "-3" are numbers; an ISO date or an id is text (compared as text).
  function asNumber(text) {
    var plain = text.replace(/[,\s%]/g, "");
    return /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(plain) ? parseFloat(plain) : null;
  }

  function button(className, text) {
    var made = document.createElement("button");
    made.type = "button";
    made.className = className;
    made.textContent = text;
    return made;
  }

  function enhance(table) {
    var body = table.tBodies[0];
    var head = table.tHead;
    if (!body || !head || !head.rows.length) return;
    var rows = Array.prototype.slice.call(body.rows);
    rows.forEach(function (row, i) { row.setAttribute("data-order", String(i)); });
    var state = { column: -1, direction: 1, page: 0, query: "" };

    var bar = document.createElement("div");
    bar.className = "ent-toolbar";
    var filter = document.createElement("input");
    filter.type = "search";
    filter.placeholder = "Filter rows";
    filter.setAttribute("aria-label", "Filter the rows of this table");
    var count = document.createElement("span");
    count.className = "ent-count";
    var previous = button("ent-previous", "\u2039 Previous");
    var pageInfo = document.createElement("span");
    pageInfo.className = "ent-page";
    var next = button("ent-next", "Next \u203A");
    bar.appendChild(filter);
    bar.appendChild(count);
    if (rows.length > PAGE_SIZE) {
      bar.appendChild(previous);
      bar.appendChild(pageInfo);
      bar.appendChild(next);
    }
    table.parentNode.insertBefore(bar, table);

    var headers = Array.prototype.slice.call(head.rows[head.rows.length - 1].cells);
    headers.forEach(function (th, column) {
      th.classList.add("ent-sortable");
      th.tabIndex = 0;
      th.title = "Sort by this column";
      function sort() {
        state.direction = state.column === column ? -state.direction : 1;
        state.column = column;
        state.page = 0;
        headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", state.direction === 1 ? "ascending" : "descending");
        draw();
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (event) { if (event.key === "Enter") sort(); });
    });
    filter.addEventListener("input", function () {
      state.query = filter.value.trim().toLowerCase();
      state.page = 0;
      draw();
    });
    previous.addEventListener("click", function () { state.page -= 1; draw(); });
    next.addEventListener("click", function () { state.page += 1; draw(); });

    function ordered() {
      var copy = rows.slice();
      if (state.column < 0) return copy;
      var keys = copy.map(function (row) {
        var cell = row.cells[state.column];
        return cell ? sortKey(cell) : "";
      });
      var numeric = keys.every(function (k) { return k === "" || asNumber(k) !== null; });
      var index = copy.map(function (_, i) { return i; });
      index.sort(function (a, b) {
        var x = keys[a], y = keys[b];
        if (x === "" || y === "") {  // empty cells last, whichever the direction
          if (x === y) return a - b;
          return x === "" ? 1 : -1;
        }
        var c = numeric ? asNumber(x) - asNumber(y) : x.localeCompare(y, undefined, { numeric: true });
        return c !== 0 ? c * state.direction : a - b;  // ties keep the page's order
      });
      return index.map(function (i) { return copy[i]; });
    }

    function draw() {
      var matching = ordered().filter(function (row) {
        return !state.query || row.textContent.toLowerCase().indexOf(state.query) >= 0;
      });
      var pages = Math.max(1, Math.ceil(matching.length / PAGE_SIZE));
      state.page = Math.min(Math.max(state.page, 0), pages - 1);
      var first = state.page * PAGE_SIZE;
      rows.forEach(function (row) { row.hidden = true; });
      matching.forEach(function (row, i) {
        body.appendChild(row);
        row.hidden = rows.length > PAGE_SIZE && (i < first || i >= first + PAGE_SIZE);
      });
      count.textContent = matching.length === rows.length
        ? rows.length + (rows.length === 1 ? " row" : " rows")
        : matching.length + " of " + rows.length + " rows";
      pageInfo.textContent = "page " + (state.page + 1) + " of " + pages;
      previous.disabled = state.page === 0;
      next.disabled = state.page >= pages - 1;
    }
    draw();
  }

  function enhanceAll() {
    Array.prototype.forEach.call(document.querySelectorAll("table.ent-table"), enhance);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", enhanceAll);
  } else {
    enhanceAll();
  }
})();
