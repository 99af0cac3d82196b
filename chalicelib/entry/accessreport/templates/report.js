// The access report's behaviour: draws the matrix's rows from the page's own data (text nodes only),
// filters and counts them, shows the chain behind a cell, and moves between cells by keyboard.
// No network: it reads nothing but this page.
//
// Up to ALL_AT_ONCE rows are all in the document (the browser's find sees them as they are); above
// that only the rows in view are (plus a margin), between two spacers of the right height, so that
// 5 000 principals draw and filter in milliseconds. aria-rowcount and aria-rowindex give assistive
// technology the whole table. Print shows #print-matrix instead: every row that matches the filters,
// in tables of PRINT_COLUMNS namespaces each (kept current up to ALL_AT_ONCE rows, else drawn when
// printing starts), since paper cannot scroll sideways.
(function () {
  "use strict";
  var table = document.getElementById("m");
  var form = document.getElementById("filters");
  var source = document.getElementById("matrix-data");
  if (!table || !form || !source) {
    return;
  }
  var ALL_AT_ONCE = 400;
  var NAME_MAX = 30; // characters of a principal's name shown whole
  var MARGIN = 30; // rows drawn above and below the view
  var data = JSON.parse(source.textContent);
  var scroller = document.getElementById("scroll");
  var body = table.tBodies[0];
  var headers = table.tHead.rows[1].cells;
  var footerRow = table.tFoot.rows[0];
  var footer = footerRow.cells;
  var panel = document.getElementById("chain");
  var panelBody = document.getElementById("chain-body");
  var shown = document.getElementById("shown");
  var field = {
    q: document.getElementById("f-q"),
    k: document.getElementById("f-k"),
    g: document.getElementById("f-g"),
    n: document.getElementById("f-n"),
    m: document.getElementById("f-m"),
    s: document.getElementById("f-s"),
    c: document.getElementById("f-c"),
    v: document.getElementById("f-v"),
    r: document.getElementById("f-r"),
  };
  var width = headers.length;
  var printHolder = document.getElementById("print-matrix");
  var PRINT_COLUMNS = 8; // namespaces per printed table: an A4 landscape page's width at 7.5 pt
  var clusterOf = [];
  for (var h = 0; h < width; h++) {
    clusterOf.push(headers[h].getAttribute("data-c"));
  }
  var KINDS = { u: "user", r: "role", s: "permission set", o: "other" };
  var MECHANISMS = { a: "aws-auth (eks-iam-sync)", e: "access entry (eks-iam-sync)", f: "not managed by eks-iam-sync" };
  var MARKS = { a: "", p: "+ ", r: "\u2212 ", i: "\u00d7 " };
  var ORDER = "apri";
  var STEPS = ["granted by", "mapped through", "as", "RoleBinding", "ClusterRole"];
  var RISKS = { c: "critical", h: "high", l: "", "": "" };

  // Every principal, as data; a row element only once it is drawn.
  var rows = data.rows.map(function (r, index) {
    var columns = [];
    var statuses = [];
    var allowed = [];
    r[6].forEach(function (cell) {
      columns.push(cell[0]);
      statuses.push(statusOf(cell[1]));
      allowed.push(cell[5]);
    });
    var arn = typeof r[1] === "string" ? r[1] : data.prefix + r[1][0];
    var account = typeof r[1] === "string" ? (arn.split(":")[4] || "") : ""; // not the page's usual account
    return {
      index: index,
      name: r[0],
      arn: arn,
      text: (r[0] + " " + arn).toLowerCase(),
      account: account,
      kind: r[2],
      inIam: r[3],
      groups: " " + r[4].join(" ") + " ",
      mechanisms: r[5],
      cells: r[6],
      risk: r[7] || "",
      everywhere: r[8] === 1,
      lastUsed: r[9] || "",
      dormant: r[10] === 1,
      columns: columns,
      statuses: statuses,
      allowed: allowed,
      tr: null,
    };
  });
  var visible = rows.slice(); // the rows that pass the filters, in order
  var position = new Map(); // row index -> its place in visible
  var rowHeight = 0;
  var printing = false;

  function statusOf(pairs) {
    var status = "i";
    for (var i = 1; i < pairs.length; i += 2) {
      if (ORDER.indexOf(pairs[i]) < ORDER.indexOf(status)) {
        status = pairs[i];
      }
    }
    return status;
  }

  function element(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) {
      node.className = cls;
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function build(row) {
    var tr = document.createElement("tr");
    tr.setAttribute("data-i", String(row.index));
    var head = element("th");
    head.scope = "row";
    head.title = row.arn;
    head.setAttribute("data-name", row.name);
    // Long names (Identity Center's AWSReservedSSO_<set>_<suffix>) differ at the end: the middle goes.
    var shownName = row.name.length > NAME_MAX ? row.name.slice(0, 15) + "\u2026" + row.name.slice(-14) : row.name;
    head.appendChild(document.createTextNode(shownName));
    var notes = KINDS[row.kind] + (row.inIam ? "" : " \u00b7 not in IAM");
    notes += row.account ? " \u00b7 " + row.account : "";
    notes += (row.everywhere ? " \u00b7 every namespace" : "") + (RISKS[row.risk] ? " \u00b7 " + RISKS[row.risk] : "");
    notes += row.dormant ? " \u00b7 dormant" : "";
    head.appendChild(element("small", "", notes));
    if (row.everywhere) {
      tr.className = "cw";
    }
    if (row.risk === "c" || row.risk === "h") {
      head.className = "risk-" + RISKS[row.risk];
    }
    tr.appendChild(head);
    var next = 0;
    for (var c = 0; c < width; c++) {
      var td = document.createElement("td");
      if (next < row.cells.length && row.cells[next][0] === c) {
        fill(td, row.cells[next], row.statuses[next]);
        next++;
      }
      tr.appendChild(td);
    }
    tr.appendChild(element("td", "n", String(row.cells.length)));
    return tr;
  }

  // A cell: its ClusterRoles with their status (+ pending, − removing), and the paths behind it.
  function fill(td, cell, status) {
    var pairs = cell[1];
    td.className = status + (cell[4] ? " x" : "") + (cell[6] ? " n" : "");
    td.setAttribute("data-p", cell[2].map(function (n) { return "p" + n; }).join(" "));
    td.setAttribute("data-v", String(cell[5]));
    var flags = cell[3].map(function (i) { return data.flags[i]; });
    if (flags.length || cell[4]) {
      td.title = (cell[4] ? "granted outside eks-iam-sync. " : "") + (flags.length ? "Risk: " + flags.join(", ") : "");
    }
    if (pairs.length === 2) {
      td.textContent = MARKS[pairs[1]] + data.roles[pairs[0]];
      return;
    }
    for (var j = 0; j < pairs.length; j += 2) {
      td.appendChild(element("span", pairs[j + 1], MARKS[pairs[j + 1]] + data.roles[pairs[j]]));
    }
  }

  function spacer(height) {
    var tr = element("tr", "spacer");
    tr.setAttribute("aria-hidden", "true");
    var td = element("td");
    td.colSpan = width + 2;
    td.style.height = height + "px";
    tr.appendChild(td);
    return tr;
  }

  // Printing: a page cannot scroll sideways, so the matrix is printed as one table per
  // PRINT_COLUMNS namespaces, each with the principal column and the rows that reach them.
  function drawPrint() {
    if (!printHolder) {
      return;
    }
    var fragment = document.createDocumentFragment();
    for (var start = 0; start < width; start += PRINT_COLUMNS) {
      var end = Math.min(width, start + PRINT_COLUMNS);
      var part = element("table", "print-part");
      part.appendChild(element("caption", "", "Namespaces " + (start + 1) + "\u2013" + end + " of " + width +
        " (principals with access in at least one of them)"));
      var headRow = element("tr");
      headRow.appendChild(element("th", "", "Principal"));
      for (var c = start; c < end; c++) {
        headRow.appendChild(element("th", "", headers[c].textContent + " \u00b7 " + clusterOf[c]));
      }
      var head = element("thead");
      head.appendChild(headRow);
      part.appendChild(head);
      var tbody = element("tbody");
      visible.forEach(function (row) {
        var cells = row.cells.filter(function (cell) { return cell[0] >= start && cell[0] < end; });
        if (!cells.length) {
          return;
        }
        var tr = element("tr");
        tr.appendChild(element("th", "", row.name));
        var next = 0;
        for (var col = start; col < end; col++) {
          var td = element("td");
          if (next < cells.length && cells[next][0] === col) {
            fill(td, cells[next], statusOf(cells[next][1]));
            td.removeAttribute("data-p");
            td.removeAttribute("title");
            next++;
          }
          tr.appendChild(td);
        }
        tbody.appendChild(tr);
      });
      part.appendChild(tbody);
      fragment.appendChild(part);
    }
    printHolder.replaceChildren(fragment);
  }

  // Draws the rows in view (or all of them), keeping the focused cell focused.
  function draw() {
    var total = visible.length;
    var start = 0;
    var end = total;
    if (total > ALL_AT_ONCE && !printing && rowHeight) {
      var head = table.tHead.offsetHeight;
      start = Math.max(0, Math.floor((scroller.scrollTop - head) / rowHeight) - MARGIN);
      end = Math.min(total, Math.ceil((scroller.scrollTop + scroller.clientHeight) / rowHeight) + MARGIN);
    } else if (total > ALL_AT_ONCE && !printing) {
      end = Math.min(total, 2 * MARGIN);
    }
    var hadFocus = table.contains(document.activeElement);
    var fragment = document.createDocumentFragment();
    if (start > 0) {
      fragment.appendChild(spacer(start * rowHeight));
    }
    for (var i = start; i < end; i++) {
      var row = visible[i];
      row.tr = row.tr || build(row);
      row.tr.setAttribute("aria-rowindex", String(i + 3));
      fragment.appendChild(row.tr);
    }
    if (end < total) {
      fragment.appendChild(spacer((total - end) * rowHeight));
    }
    body.replaceChildren(fragment);
    table.setAttribute("aria-rowcount", String(total + 3));
    footerRow.setAttribute("aria-rowindex", String(total + 3));
    if (!rowHeight && end > start) {
      rowHeight = visible[start].tr.getBoundingClientRect().height || 0;
      if (rowHeight && total > ALL_AT_ONCE) {
        draw();
        return;
      }
    }
    restoreFocus(hadFocus);
  }

  var scheduled = false;
  scroller.addEventListener("scroll", function () {
    if (visible.length <= ALL_AT_ONCE || scheduled) {
      return;
    }
    scheduled = true;
    window.requestAnimationFrame(function () {
      scheduled = false;
      draw();
    });
  });

  // Filters and counts.
  var dynamic = document.createElement("style");
  document.head.appendChild(dynamic);

  // "Who can VERB RESOURCE": a cell's table of verbs per resource allows it (resource[.group], * for any).
  function split(resource) {
    var dot = resource.indexOf(".");
    return dot < 0 ? [resource, ""] : [resource.slice(0, dot), resource.slice(dot + 1)];
  }
  var canCache = new Map();
  function can(tableIndex, verb, resource) {
    var key = tableIndex + " " + verb + " " + resource;
    if (canCache.has(key)) {
      return canCache.get(key);
    }
    var wanted = split(resource);
    var found = data.allowed[tableIndex].some(function (entry) {
      var target = split(entry[0].split(" ")[0]);
      var verbs = " " + entry[1] + " ";
      var resourceOk = !resource || target[0] + target[1] === "*" || ((target[0] === "*" || target[0] === wanted[0]) &&
        (!wanted[1] || target[1] === wanted[1] || target[1] === "*"));
      return resourceOk && (!verb || verbs.indexOf(" * ") >= 0 || verbs.indexOf(" " + verb + " ") >= 0);
    });
    canCache.set(key, found);
    return found;
  }

  function filter() {
    var started = performance.now();
    var verb = field.v.value.trim().toLowerCase();
    var resource = field.r.value.trim().toLowerCase();
    var asking = Boolean(verb || resource);
    var q = field.q.value.trim().toLowerCase();
    var k = field.k.value;
    var g = field.g.value === "" ? "" : " " + field.g.value + " ";
    var n = field.n.value === "" ? -1 : Number(field.n.value);
    var m = field.m.value;
    var s = field.s.value;
    var cluster = field.c ? field.c.value : "";
    var counts = new Array(width).fill(0);
    visible = [];
    position = new Map();
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      var ok =
        (!k || row.kind === k) &&
        (!g || row.groups.indexOf(g) >= 0) &&
        (!m || row.mechanisms.indexOf(m) >= 0) &&
        (!q || row.text.indexOf(q) >= 0);
      if (ok && (n >= 0 || s || asking || cluster)) {
        ok = false;
        for (var j = 0; j < row.columns.length; j++) {
          var allows = !asking || (row.statuses[j] !== "p" && can(row.allowed[j], verb, resource));
          var inCluster = !cluster || clusterOf[row.columns[j]] === cluster;
          if ((n < 0 || row.columns[j] === n) && (!s || row.statuses[j] === s) && allows && inCluster) {
            ok = true;
            break;
          }
        }
      }
      if (!ok) {
        continue;
      }
      position.set(row.index, visible.length);
      visible.push(row);
      for (var u = 0; u < row.columns.length; u++) {
        var counted = (!asking || (row.statuses[u] !== "p" && can(row.allowed[u], verb, resource))) &&
          (!cluster || clusterOf[row.columns[u]] === cluster);
        if ((!s || row.statuses[u] === s) && counted) {
          counts[row.columns[u]]++;
        }
      }
    }
    for (var f = 0; f < width; f++) {
      footer[f + 1].textContent = String(counts[f]);
    }
    shown.textContent = visible.length + " of " + rows.length + " principals";
    dynamic.textContent =
      n < 0
        ? ""
        : "#m tbody tr:not(.spacer) td:nth-child(" + (n + 2) + "), #m thead tr:nth-child(2) th:nth-child(" + (n + 1) +
          "){box-shadow: inset 0 0 0 2px #1b5fc1}";
    scroller.scrollTop = 0;
    draw();
    // The column asked about comes into view (the principal column stays where it is).
    var target = n >= 0 ? n : cluster ? clusterOf.indexOf(cluster) : -1;
    if (target >= 0) {
      var sticky = table.tHead.rows[0].cells[0].offsetWidth;
      scroller.scrollLeft = Math.max(0, headers[target].offsetLeft - sticky);
    }
    if (rows.length <= ALL_AT_ONCE) {
      drawPrint();
    }
    window.accessReportFilterMs = performance.now() - started;
    return visible.length;
  }

  // The chain panel.
  var pinned = null;
  var current = null;

  function chainOf(id) {
    var path = document.getElementById(id);
    if (!path) {
      return [];
    }
    var title = element("p", "path-title");
    for (var node = path.firstChild; node && node.className !== "c"; node = node.nextSibling) {
      title.appendChild(node.cloneNode(true));
    }
    var list = element("ol", "chain");
    var steps = path.querySelector(".c").children;
    for (var i = 0; i < steps.length; i++) {
      var item = element("li");
      item.appendChild(element("span", "step", steps[i].getAttribute("data-s") || STEPS[i] || ""));
      item.appendChild(element("span", "", steps[i].textContent));
      list.appendChild(item);
    }
    var role = document.getElementById(path.getAttribute("data-r"));
    if (role) {
      var can = element("li");
      can.appendChild(element("span", "step", "can"));
      var rules = Array.prototype.map.call(role.cells[2].children, function (rule) { return rule.textContent; });
      can.appendChild(element("span", "", rules.join("; ")));
      list.appendChild(can);
    }
    return [title, list];
  }

  function rowOf(tr) {
    return rows[Number(tr.getAttribute("data-i"))];
  }

  function show(cell) {
    if (current) {
      current.classList.remove("sel");
    }
    current = cell;
    cell.classList.add("sel");
    var row = rowOf(cell.parentNode);
    var nodes = [element("p", "pname", row.name), element("p", "arn", row.arn)];
    if (cell.cellIndex === 0) {
      var groups = row.groups.trim().split(" ").filter(Boolean).map(function (index) {
        return field.g.options[Number(index) + 1].text;
      });
      var through = row.mechanisms.split("").map(function (code) { return MECHANISMS[code] || ""; }).filter(Boolean);
      nodes.push(element("p", "", KINDS[row.kind] + (row.inIam ? ", in IAM" : ", not in IAM")));
      nodes.push(element("p", "", "Mapped through: " + (through.join(", ") || "nothing")));
      nodes.push(element("p", "", "Groups: " + (groups.join(", ") || "none")));
      nodes.push(element("p", "", "Reaches " + row.columns.length + " namespace(s)."));
      if (row.lastUsed) {
        nodes.push(element("p", row.dormant ? "risk-high" : "", "Last used: " + row.lastUsed + (row.dormant ? " (dormant)" : "") + "."));
      }
      if (RISKS[row.risk]) {
        nodes.push(element("p", "risk-" + RISKS[row.risk], "Risk: " + RISKS[row.risk] + " (see Risky access under Findings)."));
      }
    } else if (cell.cellIndex <= width) {
      var column = headers[cell.cellIndex - 1];
      nodes.push(element("p", "", "Namespace " + column.textContent + ", " + column.title + "."));
      var ids = (cell.getAttribute("data-p") || "").split(" ").filter(Boolean);
      if (!ids.length) {
        nodes.push(element("p", "hint", "No access through eks-iam-sync."));
      }
      ids.forEach(function (id) {
        nodes.push.apply(nodes, chainOf(id));
      });
      var table = data.allowed[Number(cell.getAttribute("data-v"))] || [];
      if (table.length) {
        nodes.push(element("h4", "", "Can, in this namespace"));
        var list = element("ul", "allowed");
        table.forEach(function (entry) {
          var item = element("li");
          item.appendChild(element("code", "", entry[0]));
          item.appendChild(document.createTextNode(": " + entry[1]));
          list.appendChild(item);
        });
        nodes.push(list);
      }
    } else {
      nodes.push(element("p", "", "Reaches " + cell.textContent + " namespace(s)."));
    }
    panelBody.replaceChildren.apply(panelBody, nodes);
  }

  function pin(cell) {
    if (pinned === cell) {
      unpin();
      return;
    }
    pinned = cell;
    panel.classList.add("pinned");
    show(cell);
  }

  function unpin() {
    pinned = null;
    panel.classList.remove("pinned");
  }

  function cellOf(target) {
    var cell = target && target.closest ? target.closest("td, th") : null;
    return cell && cell.parentNode.parentNode === body && !cell.parentNode.classList.contains("spacer") ? cell : null;
  }

  body.addEventListener("mouseover", function (event) {
    var cell = cellOf(event.target);
    if (cell && !pinned && cell !== current) {
      show(cell);
    }
  });
  body.addEventListener("click", function (event) {
    var cell = cellOf(event.target);
    if (cell) {
      focusCell(cell);
      pin(cell);
    }
  });
  body.addEventListener("focusin", function (event) {
    var cell = cellOf(event.target);
    if (cell && !pinned) {
      show(cell);
    }
  });

  // Keyboard: one tab stop for the whole matrix (a roving tabindex), arrows between cells. The
  // focused cell is remembered by row and column, so that it survives the rows being redrawn.
  var focusAt = { row: -1, column: 0 };
  var stop = null;

  function setStop(cell) {
    if (stop && stop !== cell) {
      stop.removeAttribute("tabindex");
    }
    stop = cell;
    cell.tabIndex = 0;
  }

  function focusCell(cell) {
    focusAt = { row: rowOf(cell.parentNode).index, column: cell.cellIndex };
    setStop(cell);
    cell.focus({ preventScroll: false });
  }

  function restoreFocus(hadFocus) {
    var row = focusAt.row >= 0 ? rows[focusAt.row] : null;
    if (row && row.tr && row.tr.parentNode === body) {
      var cell = row.tr.cells[focusAt.column];
      setStop(cell);
      if (hadFocus) {
        cell.focus({ preventScroll: true });
      }
      return;
    }
    var first = body.querySelector("tr:not(.spacer)");
    if (first) {
      setStop(first.cells[0]);
    }
  }

  function focusRow(place, column) {
    var row = visible[place];
    if (!row) {
      return;
    }
    if (!row.tr || row.tr.parentNode !== body) {
      scroller.scrollTop = table.tHead.offsetHeight + place * rowHeight - scroller.clientHeight / 2;
      focusAt = { row: row.index, column: column };
      draw();
    }
    focusCell(row.tr.cells[Math.min(column, row.tr.cells.length - 1)]);
  }

  body.addEventListener("keydown", function (event) {
    var cell = cellOf(event.target);
    if (!cell) {
      return;
    }
    var tr = cell.parentNode;
    var index = cell.cellIndex;
    var place = position.get(rowOf(tr).index);
    switch (event.key) {
      case "ArrowRight":
        focusCell(tr.cells[Math.min(index + 1, tr.cells.length - 1)]);
        break;
      case "ArrowLeft":
        focusCell(tr.cells[Math.max(index - 1, 0)]);
        break;
      case "ArrowDown":
        focusRow(Math.min(place + 1, visible.length - 1), index);
        break;
      case "ArrowUp":
        focusRow(Math.max(place - 1, 0), index);
        break;
      case "PageDown":
        focusRow(Math.min(place + 10, visible.length - 1), index);
        break;
      case "PageUp":
        focusRow(Math.max(place - 10, 0), index);
        break;
      case "Home":
        focusCell(tr.cells[0]);
        break;
      case "End":
        focusCell(tr.cells[tr.cells.length - 1]);
        break;
      case "Enter":
      case " ":
        pin(cell);
        break;
      case "Escape":
        unpin();
        show(cell);
        break;
      default:
        return;
    }
    event.preventDefault();
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && pinned && !cellOf(event.target)) {
      unpin();
    }
  });

  Object.keys(field).forEach(function (key) {
    if (!field[key]) {
      return; // the cluster filter, with one cluster
    }
    field[key].addEventListener(key === "q" || key === "v" || key === "r" ? "input" : "change", filter);
  });
  form.addEventListener("reset", function () {
    window.setTimeout(filter, 0);
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
  });

  // Printing: every row that matches the filters, and every finding.
  function beforePrint() {
    document.querySelectorAll("details").forEach(function (details) {
      details.open = true;
    });
    if (!printing) {
      printing = true;
      drawPrint();
    }
  }
  function afterPrint() {
    if (printing) {
      printing = false;
    }
  }
  window.addEventListener("beforeprint", beforePrint);
  window.addEventListener("afterprint", afterPrint);
  window.matchMedia("print").addEventListener("change", function (query) {
    if (query.matches) {
      beforePrint();
    } else {
      afterPrint();
    }
  });

  for (var p = 0; p < rows.length; p++) {
    position.set(p, p);
  }
  draw();
  if (rows.length <= ALL_AT_ONCE) {
    drawPrint();
  }
  var corner = table.tHead.rows[0].cells[0];
  document.documentElement.style.setProperty("--principal-width", corner.offsetWidth + "px");
  form.hidden = false;
  // "CSV of shown rows": one line per principal and namespace of the rows the filters show, made in
  // the page (no request). A cell that starts like a formula gets a leading ' (as --format csv).
  function csvCell(value) {
    var text = String(value);
    if (/^[=+\-@\t\r]/.test(text)) {
      text = "'" + text;
    }
    return /[",\r\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }
  function shownCsv() {
    var lines = [["cluster", "namespace", "principal", "arn", "kind", "status", "ClusterRoles"].join(",")];
    visible.forEach(function (row) {
      row.cells.forEach(function (cell, j) {
        var roles = [];
        for (var r = 0; r < cell[1].length; r += 2) {
          roles.push(MARKS[cell[1][r + 1]] + data.roles[cell[1][r]]);
        }
        var values = [clusterOf[cell[0]], headers[cell[0]].textContent, row.name, row.arn, KINDS[row.kind],
          { a: "active", p: "pending", r: "removing", i: "ineffective" }[row.statuses[j]], roles.join("; ")];
        lines.push(values.map(csvCell).join(","));
      });
    });
    return lines.join("\r\n") + "\r\n";
  }
  var csvButton = document.getElementById("f-csv");
  if (csvButton) {
    csvButton.addEventListener("click", function () {
      var link = document.createElement("a");
      link.href = URL.createObjectURL(new Blob([shownCsv()], { type: "text/csv" }));
      link.download = "access-shown.csv";
      document.body.appendChild(link);
      link.click();
      link.remove();
    });
  }

  window.accessReport = {
    csv: shownCsv,
    filter: filter,
    rows: rows.length,
    drawn: function () {
      return body.querySelectorAll("tr:not(.spacer)").length;
    },
    ready: true,
  };
})();
