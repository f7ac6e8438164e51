/* The memscope dashboard: reads the report embedded in #ms-data (the JSON
 * document of docs/json-format.md, with the long lists capped) and draws every
 * panel with its own small SVG code. Text from the program only ever reaches
 * the page through textContent, never as markup. */
'use strict';
(function () {
  const D = JSON.parse(document.getElementById('ms-data').textContent);
  const NS = document.getElementById('ms-svg-ns').namespaceURI;
  const report = D.report || {};
  const stats = D.stats || {};
  const estimate = !!(D.sampling && D.sampling.is_estimate);
  const t0 = D.started_at_ns || 0;
  const omitted = D.omitted || {};
  // Under sampling the report's figures are scaled to estimates; the timeline
  // and the per-thread figures are the sampled blocks' own, so the page scales
  // them the same way (and says so).
  const factor = estimate && report.sample_rate > 0 ? 1 / report.sample_rate : 1;
  const estNote = estimate ? ' (estimated)' : '';

  /* ------------------------------------------------------------ helpers */

  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    if (props) {
      for (const k in props) {
        const v = props[k];
        if (v === undefined || v === null || v === false) continue;
        if (k === 'text') e.textContent = v;
        else if (k === 'cls') e.className = v;
        else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const c of kids) if (c !== null && c !== undefined) e.append(c);
    return e;
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    if (attrs) for (const k in attrs) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  function bytes(n) {
    n = Number(n) || 0;
    if (Math.abs(n) < 1024) return Math.round(n) + ' B';
    let u = 0;
    while (Math.abs(n) >= 1024 && u < UNITS.length - 1) { n /= 1024; u++; }
    return n.toFixed(Math.abs(n) < 10 ? 2 : 1) + ' ' + UNITS[u];
  }
  function int(n) { return Math.round(Number(n) || 0).toLocaleString('en-US'); }
  // A count short enough for a card: 987,654 then 1.23 M, 45.6 G.
  function compact(n) {
    n = Number(n) || 0;
    if (n < 1e6) return int(n);
    if (n >= 1e15) return n.toExponential(2);
    const [d, u] = n < 1e9 ? [1e6, ' M'] : n < 1e12 ? [1e9, ' G'] : [1e12, ' T'];
    const v = n / d;
    return v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0) + u;
  }
  function rate(n) { return bytes(n) + '/s'; }
  function pct(n) { return (Number(n) || 0).toFixed(1) + ' %'; }
  function secs(s) {
    if (!isFinite(s)) return '—';
    if (s === 0) return '0 s';
    if (s < 1e-3) return (s * 1e6).toFixed(0) + ' µs';
    if (s < 1) return (s * 1e3).toFixed(s < 0.01 ? 2 : 1) + ' ms';
    if (s < 120) return s.toFixed(s < 10 ? 2 : 1) + ' s';
    if (s < 7200) return (s / 60).toFixed(1) + ' min';
    return (s / 3600).toFixed(1) + ' h';
  }
  function rel(ns) { return (Number(ns) - t0) / 1e9; }
  function where(o) {
    if (o.location) return o.location;
    if (o.file) return o.line ? o.file + ':' + o.line : o.file;
    return '';
  }
  // A source path as a cell: its last two parts, the whole path on hover.
  function shortPath(p) {
    if (!p) return '';
    const parts = p.split('/');
    const short = parts.length > 2 ? '…/' + parts.slice(-2).join('/') : p;
    return short === p ? p : el('span', { text: short, title: p });
  }
  function tipShow(ev, text) {
    const tip = document.getElementById('tip');
    tip.textContent = text;
    tip.hidden = false;
    const w = tip.offsetWidth, h = tip.offsetHeight;
    let x = ev.clientX + 14, y = ev.clientY + 14;
    if (x + w > window.innerWidth - 4) x = Math.max(4, ev.clientX - w - 14);
    if (y + h > window.innerHeight - 4) y = Math.max(4, ev.clientY - h - 14);
    tip.style.left = x + 'px';
    tip.style.top = y + 'px';
  }
  function tipHide() { document.getElementById('tip').hidden = true; }
  function empty(host, text) { host.append(el('p', { cls: 'empty', text })); }
  function stackList(frames, note) {
    const ol = el('ol');
    for (const f of frames) ol.append(el('li', { text: f }));
    return el('details', null, el('summary', { text: frames.length + ' frame' + (frames.length === 1 ? '' : 's') + (note || '') }), ol);
  }
  /* Nice round steps for an axis from lo to hi, about n of them. */
  function ticks(lo, hi, n, unit) {
    if (!(hi > lo)) return [lo];
    const raw = (hi - lo) / n;
    let step;
    if (unit === 1024 && raw >= 1024) {
      step = Math.pow(2, Math.ceil(Math.log2(raw)));
    } else {
      const p = Math.pow(10, Math.floor(Math.log10(raw)));
      step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) || 10 * p;
      if (unit && step < 1) step = 1; // whole bytes, whole threads
    }
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(v);
    return out;
  }

  /* --------------------------------------------------------- time charts */

  // All time charts share one visible range [lo, hi] in seconds since start.
  const timeCharts = [];
  const span = { full: [0, Math.max(1e-3, (Number(D.generated_at_ns) - t0) / 1e9)], view: null };
  function setView(v) {
    span.view = v;
    for (const c of timeCharts) c.draw();
    for (const n of document.querySelectorAll('.zoomnote')) {
      n.textContent = v ? 'Showing ' + secs(v[0]) + ' – ' + secs(v[1]) + '. ' : 'Drag across a chart to zoom in; click a legend entry to hide its line. ';
      const b = n.querySelector('button');
      if (b) b.remove();
      if (v) n.append(el('button', { text: 'Reset zoom', onclick: () => setView(null) }));
    }
  }
  function zoomNote() { return el('p', { cls: 'zoomnote', text: 'Drag across a chart to zoom in; click a legend entry to hide its line. ' }); }

  /* A line chart over time. series: [{label, color, pts: [[sec, value]], band?}]
   * (a band series fills from 0 to its value). */
  function timeChart(host, opt) {
    const box = el('div', { cls: 'chart' });
    const hidden = new Set();
    host.append(legend(opt.series, (s) => {
      if (hidden.has(s)) hidden.delete(s); else hidden.add(s);
      draw();
    }), box);
    const H = opt.height || 220, M = { l: 64, r: 12, t: 10, b: 24 };
    const chart = { draw };
    timeCharts.push(chart);
    let drag = null;
    function draw() {
      box.textContent = '';
      const W = Math.max(240, box.clientWidth || host.clientWidth || 600);
      const [x0, x1] = span.view || span.full;
      const shown = opt.series.filter((s) => !hidden.has(s));
      // A scale per side: series with `right` (RSS beside the heap) get their own.
      const scale = (list, floor) => {
        let ymax = 0;
        for (const s of list)
          for (const [x, y] of s.pts) if (x >= x0 && x <= x1 && y > ymax) ymax = y;
        if (floor && ymax < floor) ymax = floor;
        if (!(ymax > 0)) ymax = 1;
        const yt = ticks(0, ymax, 4, opt.unit);
        const ystep = yt.length > 1 ? yt[1] - yt[0] : ymax;
        while (yt[yt.length - 1] < ymax) yt.push(yt[yt.length - 1] + ystep); // a labelled top
        return { yt, top: yt[yt.length - 1] || ymax };
      };
      const rightList = shown.filter((s) => s.right);
      const L = scale(shown.filter((s) => !s.right), opt.ymax);
      const R = rightList.length ? scale(rightList, 0) : null;
      if (R) M.r = 64; else M.r = 12;
      const sx = (x) => M.l + ((x - x0) / (x1 - x0 || 1)) * (W - M.l - M.r);
      const syOf = (top) => (y) => M.t + (1 - y / top) * (H - M.t - M.b);
      const sy = syOf(L.top);
      const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, height: H, role: 'img' });
      root.append(svg('title', null, opt.title || ''));
      const ax = svg('g', { class: 'axis' });
      for (const v of L.yt) {
        ax.append(svg('line', { class: 'gridline', x1: M.l, x2: W - M.r, y1: sy(v), y2: sy(v) }));
        ax.append(svg('text', { x: M.l - 6, y: sy(v) + 4, 'text-anchor': 'end' }, opt.fmt(v)));
      }
      if (R) {
        const syR = syOf(R.top);
        for (const v of R.yt) {
          const t = svg('text', { x: W - M.r + 6, y: syR(v) + 4, 'text-anchor': 'start' }, opt.fmt(v));
          t.style.fill = rightList[0].color;
          ax.append(t);
        }
      }
      for (const v of ticks(x0, x1, Math.max(2, Math.floor(W / 110)))) {
        if (v < x0 || v > x1) continue;
        ax.append(svg('line', { x1: sx(v), x2: sx(v), y1: H - M.b, y2: H - M.b + 4 }));
        ax.append(svg('text', { x: sx(v), y: H - 6, 'text-anchor': 'middle' }, secs(v)));
      }
      ax.append(svg('line', { x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b }));
      root.append(ax);
      const clipId = 'clip' + Math.random().toString(36).slice(2);
      const clip = svg('clipPath', { id: clipId });
      clip.append(svg('rect', { x: M.l, y: 0, width: W - M.l - M.r, height: H - M.b }));
      root.append(clip);
      const plot = svg('g', { 'clip-path': `url(#${clipId})` });
      for (const s of shown) {
        const vis = visible(s.pts, x0, x1);
        if (!vis.length) continue;
        const y_ = s.right ? syOf(R.top) : sy;
        let d = '';
        vis.forEach(([x, y], i) => { d += (i ? 'L' : 'M') + sx(x).toFixed(1) + ',' + y_(y).toFixed(1); });
        if (s.band) { // the largest value of each span [x_i, x_i+1): steps
          d = '';
          vis.forEach(([x, y], i) => {
            d += (i ? 'H' + sx(x).toFixed(1) + 'V' : 'M' + sx(x).toFixed(1) + ',') + y_(y).toFixed(1);
          });
          d += `L${sx(vis[vis.length - 1][0]).toFixed(1)},${sy(0)}L${sx(vis[0][0]).toFixed(1)},${sy(0)}Z`;
          plot.append(svg('path', { d, class: 'band', fill: s.color }));
        } else {
          if (vis.length === 1) d += 'h2';
          plot.append(svg('path', { d, class: 'series', stroke: s.color }));
        }
      }
      root.append(plot);
      const rule = svg('line', { class: 'hover-rule', y1: M.t, y2: H - M.b, visibility: 'hidden' });
      const sel = svg('rect', { class: 'selection', y: M.t, height: H - M.t - M.b, width: 0, visibility: 'hidden' });
      root.append(rule, sel);
      box.append(root);
      const toX = (ev) => {
        const r = root.getBoundingClientRect();
        const px = ((ev.clientX - r.left) / r.width) * W;
        return { px, x: x0 + ((px - M.l) / (W - M.l - M.r)) * (x1 - x0) };
      };
      root.addEventListener('pointerdown', (ev) => {
        const p = toX(ev);
        if (p.px < M.l) return;
        drag = { from: p.px, x: p.x };
        root.setPointerCapture(ev.pointerId);
      });
      root.addEventListener('pointermove', (ev) => {
        const p = toX(ev);
        if (drag) {
          const a = Math.max(M.l, Math.min(drag.from, p.px)), b = Math.min(W - M.r, Math.max(drag.from, p.px));
          sel.setAttribute('x', a);
          sel.setAttribute('width', Math.max(0, b - a));
          sel.setAttribute('visibility', 'visible');
        }
        if (p.px < M.l || p.px > W - M.r) { rule.setAttribute('visibility', 'hidden'); tipHide(); return; }
        rule.setAttribute('x1', p.px);
        rule.setAttribute('x2', p.px);
        rule.setAttribute('visibility', 'visible');
        const lines = [secs(p.x)];
        for (const s of shown) {
          const q = nearest(s.pts, p.x);
          if (q) lines.push(s.label + ': ' + opt.fmt(q[1]));
        }
        tipShow(ev, lines.join('\n'));
      });
      root.addEventListener('pointerleave', () => { rule.setAttribute('visibility', 'hidden'); tipHide(); });
      root.addEventListener('pointerup', (ev) => {
        if (!drag) return;
        const p = toX(ev), d = drag;
        drag = null;
        sel.setAttribute('visibility', 'hidden');
        if (Math.abs(p.px - d.from) > 6) {
          const a = Math.max(x0, Math.min(d.x, p.x)), b = Math.min(x1, Math.max(d.x, p.x));
          if (b > a) setView([a, b]);
        }
      });
      root.addEventListener('dblclick', () => setView(null));
    }
    return chart;
  }
  // The points inside [x0, x1], with one neighbour each side so lines reach the edges.
  function visible(pts, x0, x1) {
    let i = 0, j = pts.length;
    while (i < pts.length && pts[i][0] < x0) i++;
    while (j > 0 && pts[j - 1][0] > x1) j--;
    return pts.slice(Math.max(0, i - 1), Math.min(pts.length, j + 1));
  }
  function nearest(pts, x) {
    if (!pts.length) return null;
    let lo = 0, hi = pts.length - 1;
    while (hi - lo > 1) {
      const m = (lo + hi) >> 1;
      if (pts[m][0] < x) lo = m; else hi = m;
    }
    return Math.abs(pts[lo][0] - x) <= Math.abs(pts[hi][0] - x) ? pts[lo] : pts[hi];
  }
  // A chart's legend; with `toggle`, each entry is a button that hides or shows its series.
  function legend(series, toggle) {
    const l = el('div', { cls: 'legend' });
    for (const s of series) {
      const i = el('i');
      i.style.background = s.color;
      if (!toggle) { l.append(el('span', null, i, s.label)); continue; }
      const b = el('button', { type: 'button', 'aria-pressed': 'true', title: 'Show or hide ' + s.label }, i, s.label);
      b.addEventListener('click', () => {
        b.setAttribute('aria-pressed', b.getAttribute('aria-pressed') === 'true' ? 'false' : 'true');
        toggle(s);
      });
      l.append(b);
    }
    return l;
  }

  /* --------------------------------------------------------- data tables */

  /* A sortable table. cols: [{label, get(row), fmt?(v, row), num?, cls?}];
   * opts: {sort: column index, desc, page: rows per page, extra(row): node}. */
  function dataTable(host, cols, opts) {
    const wrap = el('div', { cls: 'scroll' });
    const more = el('div', { cls: 'more' });
    host.append(wrap, more);
    let rows = [], sortCol = opts.sort || 0, desc = opts.desc !== false, shown = opts.page || 200;
    function render() {
      const c = cols[sortCol];
      const sorted = rows.slice().sort((a, b) => {
        const x = c.get(a), y = c.get(b);
        const r = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
        return desc ? -r : r;
      });
      const table = el('table');
      const tr = el('tr');
      cols.forEach((col, i) => {
        const th = el('th', { cls: col.num ? 'n' : null, scope: 'col' });
        if (i === sortCol) th.setAttribute('aria-sort', desc ? 'descending' : 'ascending');
        th.append(el('button', {
          text: col.label, type: 'button',
          onclick: () => {
            if (sortCol === i) desc = !desc;
            else { sortCol = i; desc = !!col.num; }
            render();
          },
        }));
        tr.append(th);
      });
      table.append(el('thead', null, tr));
      const tb = el('tbody');
      for (const row of sorted.slice(0, shown)) {
        const r = el('tr');
        for (const col of cols) {
          const v = col.get(row);
          const td = el('td', { cls: [col.num ? 'n' : '', col.cls || ''].join(' ').trim() || null });
          const out = col.fmt ? col.fmt(v, row) : v;
          td.append(out instanceof Node ? out : document.createTextNode(out === undefined || out === null ? '' : String(out)));
          r.append(td);
        }
        tb.append(r);
      }
      table.append(tb);
      wrap.textContent = '';
      wrap.append(table);
      more.textContent = '';
      if (!rows.length) { more.append(el('span', { text: opts.none || 'Nothing to show.' })); return; }
      more.append(el('span', { text: 'Showing ' + int(Math.min(shown, rows.length)) + ' of ' + int(rows.length) + (opts.what ? ' ' + opts.what : '') + '.' }));
      if (rows.length > shown)
        more.append(el('button', { text: 'Show ' + int(Math.min(opts.page || 200, rows.length - shown)) + ' more', onclick: () => { shown += opts.page || 200; render(); } }));
      if (opts.after) more.append(opts.after());
    }
    return { set(r) { rows = r; shown = opts.page || 200; render(); } };
  }

  /* Horizontal bars: items [{label, value, title}] largest first. */
  function bars(host, items, fmt, color) {
    const max = items.reduce((m, i) => Math.max(m, i.value), 0) || 1;
    for (const it of items) {
      const bar = el('div', { cls: 'bar' });
      bar.style.width = ((100 * it.value) / max).toFixed(2) + '%';
      if (color) bar.style.background = color;
      const row = el('div', { cls: 'barrow' }, el('span', { cls: 'lbl', text: it.label, title: it.title || it.label }),
        el('div', { cls: 'track' }, bar), el('span', { cls: 'val', text: fmt(it.value) }));
      host.append(row);
    }
  }

  /* ------------------------------------------------------------- panels */

  function header() {
    const prog = (D.process && D.process.program) || 'program';
    document.title = prog + ' — memscope report';
    document.getElementById('program').textContent = prog;
    const gen = new Date(Number(D.generated_at_ns) / 1e6);
    const parts = ['pid ' + ((D.process && D.process.pid) || '?'),
      'report written ' + (isNaN(gen) ? '?' : gen.toLocaleString()),
      'ran ' + secs(report.duration_sec),
      D.capture ? 'every malloc and free captured' : 'blocks named with TRACK'];
    if (D.sampling && D.sampling.capture_call_stack) parts.push('call stacks up to ' + D.sampling.max_stack_depth + ' frames');
    document.getElementById('meta').textContent = parts.join(' · ');
    document.getElementById('libver').textContent = 'memscope ' + (D.library_version || '');
    const toc = document.getElementById('toc');
    for (const s of document.querySelectorAll('main > section.panel')) {
      const h = s.querySelector('h2');
      toc.append(el('a', { href: '#' + s.id, text: h.textContent.replace(/ \(.*\)$/, '') }));
    }
  }

  function cards() {
    const host = document.getElementById('cards');
    const est = estimate ? 'estimated' : null;
    const rate = D.sampling ? D.sampling.sample_rate : 1;
    const dropped = Number(stats.dropped_events || 0);
    const list = [
      ['current', 'Current memory', bytes(report.current_memory_bytes), int(report.current_memory_bytes) + ' B', est, report.current_memory_bytes],
      ['peak', 'Peak memory', bytes(report.peak_memory_bytes), int(report.peak_memory_bytes) + ' B', est, report.peak_memory_bytes],
      ['allocated', 'Total allocated', bytes(report.total_allocated_bytes), int(report.total_allocated_bytes) + ' B', est, report.total_allocated_bytes],
      ['allocations', 'Allocations', compact(report.total_allocations), compact(report.total_deallocations) + ' freed', est, report.total_allocations],
      ['active', 'Active blocks', compact(report.active_allocations), 'alive at export', est, report.active_allocations],
      ['leaks', 'Leaks at export', bytes(report.leaked_bytes), compact(report.leaked_blocks) + ' block' + (report.leaked_blocks == 1 ? '' : 's'), est, report.leaked_bytes],
      ['dropped', 'Dropped events', int(dropped), dropped ? 'figures may be incomplete' : 'nothing lost', null, dropped],
      ['sampling', 'Sampling rate', rate >= 1 ? '100 %' : (rate * 100).toPrecision(3) + ' %', estimate ? 'figures are scaled estimates' : 'exact figures', null, rate],
      ['duration', 'Run duration', secs(report.duration_sec), int(report.thread_count) + ' thread' + (report.thread_count === 1 ? '' : 's'), null, report.duration_sec],
    ];
    for (const [key, k, v, s, badge, raw] of list) {
      const c = el('div', { cls: 'card' + ((key === 'dropped' && dropped) || (key === 'leaks' && report.leaked_blocks > 0) ? ' bad' : ''), 'data-key': key, 'data-value': raw });
      const label = el('div', { cls: 'k', text: k });
      if (badge) label.append(el('span', { cls: 'badge', text: badge }));
      c.append(label, el('div', { cls: 'v', text: v, title: v }), el('div', { cls: 's', text: s, title: s }));
      host.append(c);
    }
    const notes = [];
    if (D.trace && !D.trace.complete) notes.push('Rebuilt from a TRUNCATED trace (it has no trailer): these are the figures of its whole blocks, not of the whole run.');
    const said = {
      unmatched_deallocations: 'frees of blocks that were never recorded',
      unseen_deallocations: 'frees of blocks allocated before capture started',
      ignored_deallocations: 'frees of blocks sampling left out',
      replaced_allocations: 'blocks reallocated at an address still live (their free was not seen)',
      track_errors: 'TRACK calls refused (see ms_last_error)',
      failed_allocations: 'allocations that failed',
      null_deallocations: 'free(NULL) calls',
      stream_lost_events: 'events the streamed trace lacks (the disk did not keep up)',
      evicted_events: 'oldest events evicted from the retained log (every figure still counts them)',
    };
    const other = Object.keys(said).filter((k) => Number(stats[k]) > 0).map((k) => int(stats[k]) + ' ' + said[k]);
    if (other.length) notes.push(other.join(' · ') + '.');
    if (report.system_snapshots_overwritten > 0) notes.push(int(report.system_snapshots_overwritten) + ' older system samples were overwritten.');
    document.getElementById('notes').textContent = notes.join('  ');
  }

  function memoryPanel(body) {
    const tl = (D.memory_timeline || []).map((p) => [rel(p.timestamp_ns), factor * Number(p.current_bytes), factor * Number(p.max_bytes)]);
    // Nothing changed between the last event and the export: carry the line on.
    const end = rel(D.generated_at_ns);
    if (tl.length && end > tl[tl.length - 1][0]) tl.push([end, tl[tl.length - 1][1], tl[tl.length - 1][1]]);
    const sys = (D.system_snapshots || []).filter((x) => Number(x.memory_usage_bytes) > 0);
    if (!tl.length && !sys.length) return empty(body, 'No allocation was recorded.');
    const series = [];
    if (tl.length) {
      series.push({ label: 'heap, largest in span' + estNote, color: 'var(--band)', band: true, pts: tl.map((p) => [p[0], p[2]]) });
      series.push({ label: 'heap (current)' + estNote, color: 'var(--c1)', pts: tl.map((p) => [p[0], p[1]]) });
    }
    if (sys.length) series.push({ label: 'process RSS (right axis)', color: 'var(--c2)', right: tl.length > 0, pts: sys.map((x) => [rel(x.timestamp_ns), Number(x.memory_usage_bytes)]) });
    body.append(zoomNote());
    timeChart(body, { series, fmt: bytes, unit: 1024, height: 260, title: 'Heap memory and RSS over time' });
  }

  function systemPanel(body) {
    const xs = D.system_snapshots || [];
    if (!xs.length) return empty(body, 'The system monitor was not running (ms_tracker_with_system_monitoring).');
    const t = (x) => rel(x.timestamp_ns);
    const pts = (f) => xs.map((x) => [t(x), Number(f(x)) || 0]);
    const grid = el('div', { cls: 'small-multiples' });
    body.append(zoomNote(), grid);
    const multiples = [
      ['CPU', pct, [['process', 'var(--c1)', (x) => x.cpu_usage_percent], ['machine', 'var(--c3)', (x) => x.machine_cpu_percent]], 100],
      ['Resident memory', bytes, [['process RSS', 'var(--c2)', (x) => x.memory_usage_bytes]], 0, 1024],
      ['Disk', rate, [['read', 'var(--c1)', (x) => x.disk_read_bps], ['write', 'var(--c2)', (x) => x.disk_write_bps]], 0, 1024],
      ['Network', rate, [['received', 'var(--c3)', (x) => x.network_rx_bps], ['sent', 'var(--c4)', (x) => x.network_tx_bps]], 0, 1024],
      ['Threads', int, [['threads', 'var(--c4)', (x) => x.thread_count]], 1, 1],
    ];
    if (xs.some((x) => x.gpu_available)) {
      multiples.push(['GPU', pct, [['utilisation', 'var(--c3)', (x) => x.gpu_usage_percent]], 100]);
      multiples.push(['GPU memory', bytes, [['used', 'var(--c4)', (x) => x.gpu_memory_used]], 0, 1024]);
    }
    for (const [name, fmt, defs, ymax, unit] of multiples) {
      const cell = el('div', null, el('h3', { text: name }));
      const series = defs.map(([label, color, f]) => ({ label, color, pts: pts(f) }));
      grid.append(cell);
      timeChart(cell, { series, fmt, ymax, unit, height: 150, title: name });
    }
    const miss = new Set();
    for (const x of xs) for (const m of x.missing || []) miss.add(m);
    if (miss.size) body.append(el('p', { cls: 'muted', text: 'Not available on this machine: ' + [...miss].join(', ').replace(/_/g, ' ') + '.' }));
  }

  // A site's key in both lists: hotspots name an unnamed site "?", leaks null.
  const siteKey = (o) => [o.var_name == null ? '?' : o.var_name, o.function || '', o.location || ''].join('\u0000');
  // Per site, the stack of its largest leak group (leaks come largest first)
  // and how many stacks its live blocks have: what a hotspot row shows.
  function siteStacks() {
    const m = new Map();
    for (const l of D.leaks || []) {
      if (!l.stack || !l.stack.length) continue;
      const k = siteKey(l);
      const e = m.get(k);
      if (e) e.n++;
      else m.set(k, { stack: l.stack, n: 1 });
    }
    return m;
  }

  function hotspotsPanel(body) {
    const hs = D.hotspots || [];
    if (!hs.length) return empty(body, 'No allocation was recorded.');
    const stacks = siteStacks();
    const name = (h) => h.var_name || h.function || '(unnamed)';
    let by = 'bytes';
    const barsBox = el('div');
    const seg = el('div', { cls: 'seg', role: 'group', 'aria-label': 'Order the chart by' });
    const bBytes = el('button', { text: 'by bytes', type: 'button', cls: 'on' });
    const bCount = el('button', { text: 'by count', type: 'button' });
    seg.append(bBytes, bCount);
    const drawBars = () => {
      barsBox.textContent = '';
      const key = by === 'bytes' ? 'total_size' : 'allocation_count';
      const top = hs.slice().sort((a, b) => b[key] - a[key]).slice(0, 15);
      bars(barsBox, top.map((h) => ({ label: name(h) + (where(h) ? ' — ' + where(h).split('/').pop() : ''), value: Number(h[key]), title: [name(h), h.type_name, h.function, where(h)].filter(Boolean).join('\n') })),
        by === 'bytes' ? bytes : int, by === 'bytes' ? 'var(--c1)' : 'var(--c4)');
      bBytes.className = by === 'bytes' ? 'on' : '';
      bCount.className = by === 'count' ? 'on' : '';
    };
    bBytes.addEventListener('click', () => { by = 'bytes'; drawBars(); });
    bCount.addEventListener('click', () => { by = 'count'; drawBars(); });
    body.append(el('div', { cls: 'toolbar' }, el('span', { text: 'Top 15 sites' }), seg), barsBox);
    drawBars();
    const note = Number(omitted.hotspots || 0) ? () => el('span', { text: int(omitted.hotspots) + ' smaller sites are not listed.' }) : null;
    const t = dataTable(body, [
      { label: 'Name', get: name, cls: 'wrap' },
      { label: 'Type', get: (h) => h.type_name || '', cls: 'wrap mono' },
      { label: 'Function', get: (h) => h.function || '', cls: 'wrap mono' },
      { label: 'Location', get: where, fmt: shortPath, cls: 'wrap mono' },
      { label: 'Allocations', get: (h) => Number(h.allocation_count), fmt: int, num: true },
      { label: 'Bytes', get: (h) => Number(h.total_size), fmt: bytes, num: true },
      { label: 'Live', get: (h) => Number(h.active_count), fmt: int, num: true },
      { label: 'Live bytes', get: (h) => Number(h.active_size), fmt: bytes, num: true },
      { label: 'Stack', get: (h) => { const e = stacks.get(siteKey(h)); return e ? e.stack.length : 0; },
        fmt: (n, h) => {
          const e = stacks.get(siteKey(h));
          return e ? stackList(e.stack, e.n > 1 ? ' (the largest of ' + e.n + ' stacks of its live blocks)' : '') : '';
        }, num: true },
    ], { sort: 5, page: 25, what: 'sites', after: note });
    t.set(hs);
  }

  function leaksPanel(body) {
    const ls = D.leaks || [];
    if (!ls.length) return empty(body, 'No block was alive when the report was written.');
    const q = el('input', { type: 'search', placeholder: 'name, type, function, file', 'aria-label': 'Filter leaks' });
    body.append(el('div', { cls: 'toolbar' }, el('label', { text: 'Filter' }, q)));
    const note = Number(omitted.leak_groups || 0)
      ? () => el('span', { text: int(omitted.leak_groups) + ' smaller groups (' + int(omitted.leak_blocks) + ' blocks, ' + bytes(omitted.leak_bytes) + ') are not listed.' })
      : null;
    const t = dataTable(body, [
      { label: 'Bytes', get: (l) => Number(l.bytes), fmt: bytes, num: true },
      { label: 'Blocks', get: (l) => Number(l.count), fmt: int, num: true },
      { label: 'Name', get: (l) => l.var_name || '', cls: 'wrap' },
      { label: 'Type', get: (l) => l.type_name || '', cls: 'wrap mono' },
      { label: 'Function', get: (l) => l.function || '', cls: 'wrap mono' },
      { label: 'Location', get: (l) => l.location || '', fmt: shortPath, cls: 'wrap mono' },
      { label: 'Stack', get: (l) => (l.stack || []).length, fmt: (n, l) => (n ? stackList(l.stack) : ''), num: true },
    ], { sort: 0, page: 25, what: 'groups', none: 'No group matches the filter.', after: note });
    const apply = () => {
      const s = q.value.trim().toLowerCase();
      t.set(s ? ls.filter((l) => [l.var_name, l.type_name, l.function, l.location, ...(l.stack || [])].some((v) => v && v.toLowerCase().includes(s))) : ls);
    };
    q.addEventListener('input', apply);
    apply();
  }

  function activePanel(body) {
    const as = D.active_allocations || [];
    if (!as.length) return empty(body, 'No block was alive when the report was written.');
    const stacks = new Map();
    for (const l of D.leaks || []) if (l.stack_id && l.stack && l.stack.length) stacks.set(l.stack_id, l.stack);
    const q = el('input', { type: 'search', placeholder: 'name, type, file, function', 'aria-label': 'Filter by text' });
    const th = el('select', { 'aria-label': 'Thread' }, el('option', { value: '', text: 'all threads' }));
    for (const id of [...new Set(as.map((a) => a.thread_id))].sort((a, b) => a - b)) th.append(el('option', { value: id, text: 'thread ' + id }));
    const lo = el('input', { type: 'number', min: 0, cls: 'num', placeholder: 'min B', 'aria-label': 'Smallest size in bytes' });
    const hi = el('input', { type: 'number', min: 0, cls: 'num', placeholder: 'max B', 'aria-label': 'Largest size in bytes' });
    body.append(el('div', { cls: 'toolbar' }, el('label', { text: 'Filter' }, q), el('label', { text: 'Thread' }, th),
      el('label', { text: 'Size' }, lo, el('span', { text: '–' }), hi)));
    if (estimate)
      body.append(el('p', { cls: 'muted', text: 'Only the blocks sampling recorded are listed (about 1 in ' + int(factor) + '), at their real sizes; the cards and the leak groups above are scaled estimates.' }));
    const note = Number(omitted.active_allocations || 0)
      ? () => el('span', { text: 'The ' + int(omitted.active_allocations) + ' smallest blocks (' + bytes(omitted.active_allocation_bytes) + ') are not listed; the leak groups above count them.' })
      : null;
    const t = dataTable(body, [
      { label: 'Size', get: (a) => Number(a.size), fmt: bytes, num: true },
      { label: 'Name', get: (a) => a.name || '', cls: 'wrap' },
      { label: 'Type', get: (a) => a.type || '', cls: 'wrap mono' },
      { label: 'Location', get: (a) => (a.file ? a.file + (a.line ? ':' + a.line : '') : ''), fmt: shortPath, cls: 'wrap mono' },
      { label: 'Function', get: (a) => a.function || '', cls: 'wrap mono' },
      { label: 'Thread', get: (a) => Number(a.thread_id), num: true },
      { label: 'Age', get: (a) => Number(a.age_ns) / 1e9, fmt: secs, num: true },
      { label: 'Address', get: (a) => parseInt(a.address, 16), fmt: (v, a) => a.address, cls: 'mono' },
      { label: 'Stack', get: (a) => (stacks.get(a.stack_id) || []).length, fmt: (n, a) => (n ? stackList(stacks.get(a.stack_id)) : ''), num: true },
    ], { sort: 0, page: 50, what: 'blocks', none: 'No block matches the filter.', after: note });
    const apply = () => {
      const s = q.value.trim().toLowerCase();
      const tid = th.value, min = lo.value === '' ? -Infinity : Number(lo.value), max = hi.value === '' ? Infinity : Number(hi.value);
      t.set(as.filter((a) => (!tid || String(a.thread_id) === tid) && a.size >= min && a.size <= max &&
        (!s || [a.name, a.type, a.file, a.function].some((v) => v && v.toLowerCase().includes(s)))));
    };
    for (const e of [q, th, lo, hi]) e.addEventListener('input', apply);
    apply();
  }

  function threadsPanel(body) {
    const ts = D.threads || [];
    if (!ts.length) return empty(body, 'No thread recorded an allocation.');
    if (estimate) body.append(el('p', { cls: 'muted', text: 'Figures are estimates: the sampled blocks\u2019 own, scaled by 1 / the sample rate.' }));
    const g = (k) => (x) => factor * Number(x[k]);
    const t = dataTable(body, [
      { label: 'Thread', get: (x) => Number(x.thread_id), num: true },
      { label: 'Allocs', get: g('allocation_count'), fmt: int, num: true },
      { label: 'Frees', get: g('deallocation_count'), fmt: int, num: true },
      { label: 'Allocated', get: g('total_allocated'), fmt: bytes, num: true },
      { label: 'Freed', get: g('total_deallocated'), fmt: bytes, num: true },
      { label: 'Current', get: g('current_memory'), fmt: bytes, num: true },
      { label: 'Peak', get: g('peak_memory'), fmt: bytes, num: true },
    ], { sort: 6, page: 50, what: 'threads' });
    t.set(ts);
  }

  function sizesPanel(body) {
    const hs = (D.size_histogram || []).filter((b) => Number(b.count) > 0);
    if (!hs.length) return empty(body, 'No allocation was recorded.');
    const label = (b) => (Number(b.max_bytes) === 0 ? '0 B' : bytes(b.min_bytes) + ' – ' + bytes(Number(b.max_bytes) + 1));
    let log = false;
    const bLin = el('button', { text: 'linear', type: 'button', cls: 'on' });
    const bLog = el('button', { text: 'log scale', type: 'button' });
    const chart = el('div');
    body.append(el('p', { cls: 'muted', text: 'Every allocation of the run by requested size, in power-of-two buckets (each label is the bucket\u2019s smallest size).' }),
      el('div', { cls: 'toolbar' }, el('div', { cls: 'seg', role: 'group', 'aria-label': 'Scale' }, bLin, bLog)), chart);
    function draw() {
      chart.textContent = '';
      bLin.className = log ? '' : 'on';
      bLog.className = log ? 'on' : '';
      const W = 560, H = 220, M = { l: 56, r: 8, t: 8, b: 58 };
      const max = Math.max(...hs.map((b) => Number(b.count)));
      const f = (v) => (log ? Math.log10(1 + v) / Math.log10(1 + max) : v / max);
      const bw = (W - M.l - M.r) / hs.length;
      const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img' });
      root.append(svg('title', null, 'Allocations by size'));
      const ax = svg('g', { class: 'axis' });
      const yt = log ? [0, ...[1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10].filter((v) => v <= max)] : ticks(0, max, 4, 1);
      for (const v of yt) {
        const y = M.t + (1 - f(v)) * (H - M.t - M.b);
        ax.append(svg('line', { class: 'gridline', x1: M.l, x2: W - M.r, y1: y, y2: y }));
        ax.append(svg('text', { x: M.l - 6, y: y + 4, 'text-anchor': 'end' }, int(v)));
      }
      root.append(ax);
      hs.forEach((b, i) => {
        const h = f(Number(b.count)) * (H - M.t - M.b);
        const x = M.l + i * bw;
        const r = svg('rect', { x: x + 1, y: H - M.b - h, width: Math.max(1, bw - 2), height: Math.max(h, 0.5), fill: 'var(--c3)', rx: 2 });
        r.addEventListener('pointermove', (ev) => tipShow(ev, label(b) + '\n' + int(b.count) + ' allocation' + (b.count == 1 ? '' : 's') + (estimate ? ' (estimated)' : '')));
        r.addEventListener('pointerleave', tipHide);
        root.append(r);
        const cx = x + bw / 2, cy = H - M.b + 10;
        root.append(svg('text', { x: cx, y: cy, 'text-anchor': 'end', transform: `rotate(-45 ${cx} ${cy})`, class: 'tick' }, bytes(b.min_bytes)));
      });
      chart.append(root);
    }
    bLin.addEventListener('click', () => { log = false; draw(); });
    bLog.addEventListener('click', () => { log = true; draw(); });
    draw();
  }

  function flamePanel(body) {
    const groups = (D.leaks || []).filter((l) => l.stack && l.stack.length);
    if (!groups.length) {
      return empty(body, D.sampling && D.sampling.capture_call_stack ? 'No live block has a call stack.' :
        'Call stacks were not captured. Set capture_call_stack in ms_tracker_with_sampling, or run with memscope run --stacks 20.');
    }
    // The tree of live bytes, outermost frame first.
    const root = { name: 'all live blocks with a stack', value: 0, kids: new Map(), depth: 0 };
    let deepest = 0;
    for (const g of groups) {
      const v = Number(g.bytes);
      root.value += v;
      let n = root;
      const fr = g.stack.slice().reverse();
      deepest = Math.max(deepest, fr.length);
      fr.forEach((f, d) => {
        let k = n.kids.get(f);
        if (!k) { k = { name: f, value: 0, kids: new Map(), depth: d + 1, up: n }; n.kids.set(f, k); }
        k.value += v;
        n = k;
      });
    }
    if (!(root.value > 0)) return empty(body, 'The live blocks with a call stack hold 0 bytes.');
    const crumbs = el('div', { cls: 'crumbs' });
    const box = el('div', { cls: 'flame' });
    const intro = deepest <= 1 ? 'Only the allocating call site was recorded (depth 1); with call stacks on, this shows whole stacks. ' : '';
    body.append(el('p', { cls: 'muted', text: intro + 'Width is live bytes; the outermost frame is at the top. Click a frame to zoom in.' }), crumbs, box);
    let focus = root;
    const palette = ['#f4a259', '#f6bd60', '#e9c46a', '#f28482', '#f7a072', '#eddea4', '#ffcb77', '#fe6d73'];
    const hue = (s) => { let h = 0; for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0; return palette[Math.abs(h) % palette.length]; };
    function draw() {
      box.textContent = '';
      crumbs.textContent = '';
      const path = [];
      for (let n = focus; n; n = n.up) path.unshift(n);
      path.forEach((n, i) => {
        if (i < path.length - 1) crumbs.append(el('button', { type: 'button', text: i ? n.name.replace(/ \(.*$/, '') : 'all', onclick: () => { focus = n; draw(); } }));
        else crumbs.append(el('span', { text: (i ? n.name : 'all') + ' — ' + bytes(n.value) }));
      });
      const W = Math.max(300, box.clientWidth || body.clientWidth || 800), RH = 18;
      const levels = [];
      (function walk(n, x, w, d) {
        if (w < 0.5) return;
        (levels[d] = levels[d] || []).push({ n, x, w });
        let off = x;
        const kids = [...n.kids.values()].sort((a, b) => b.value - a.value);
        for (const k of kids) {
          if (!(k.value > 0)) continue; // zero-byte blocks take no width
          const kw = (w * k.value) / n.value;
          walk(k, off, kw, d + 1);
          off += kw;
        }
      })(focus, 0, W, 0);
      const H = levels.length * RH + 2;
      const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, height: H, role: 'img' });
      s.append(svg('title', null, 'Live bytes by call stack'));
      levels.forEach((row, d) => {
        for (const { n, x, w } of row) {
          const r = svg('rect', { x, y: d * RH, width: Math.max(0.5, w), height: RH - 1, fill: d ? hue(n.name) : 'var(--c1)', rx: 2 });
          const tipText = n.name + '\n' + bytes(n.value) + ' (' + ((100 * n.value) / root.value).toFixed(1) + ' % of live bytes with a stack)';
          r.addEventListener('pointermove', (ev) => tipShow(ev, tipText));
          r.addEventListener('pointerleave', tipHide);
          r.addEventListener('click', () => { tipHide(); focus = n === focus && n.up ? n.up : n; draw(); });
          s.append(r);
          if (w > 36) {
            const maxChars = Math.floor((w - 8) / 6.2);
            const t = d ? n.name : 'all — ' + bytes(n.value);
            s.append(svg('text', { x: x + 4, y: d * RH + 12.5 }, t.length > maxChars ? t.slice(0, Math.max(1, maxChars - 1)) + '…' : t));
          }
        }
      });
      box.append(s);
    }
    redraws.push(draw);
    draw();
  }

  /* -------------------------------------------------------------- main */

  const redraws = [];
  function panel(id, fn) {
    const body = document.querySelector('#' + id + ' .body');
    try {
      fn(body);
    } catch (e) {
      body.append(el('p', { cls: 'error', text: 'This panel could not be drawn: ' + e }));
      console.error(e);
    }
  }
  header();
  cards();
  panel('memory', memoryPanel);
  panel('system', systemPanel);
  panel('hotspots', hotspotsPanel);
  panel('leaks', leaksPanel);
  panel('active', activePanel);
  panel('threads', threadsPanel);
  panel('sizes', sizesPanel);
  panel('flame', flamePanel);
  for (const c of timeCharts) c.draw();
  let pending = 0, lastW = window.innerWidth;
  window.addEventListener('resize', () => {
    if (window.innerWidth === lastW) return;
    lastW = window.innerWidth;
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(() => { for (const c of timeCharts) c.draw(); for (const f of redraws) f(); });
  });
  // For tests and benchmarks: when every panel is in the DOM, and when the
  // first frame after that has been painted.
  window.msRenderMs = performance.now();
  requestAnimationFrame(() => setTimeout(() => { window.msPaintMs = performance.now(); }, 0));
  document.documentElement.dataset.ready = '1';
})();
