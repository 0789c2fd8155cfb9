(function () {
'use strict';
var D = JSON.parse(document.getElementById('explorer-data').textContent);
var SVG = 'http://www.w3.org/2000/svg';
var byId = {};
D.detectors.forEach(function (d) { byId[d.id] = d; });
var S = {a: null, b: null, color: 'cluster', pinned: null, picked: {}};
function el(tag, attrs, text) {
  var e = tag.indexOf('svg:') === 0 ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
  if (text !== undefined && text !== null) { e.textContent = String(text); }
  return e;
}
function pct(x) { return (100 * x).toFixed(x < 0.1 ? 1 : 0) + ' %'; }
function readHash() {
  var h = decodeURIComponent(location.hash.replace(/^#/, '')), p = {};
  h.split('&').forEach(function (kv) { var i = kv.indexOf('='); if (i > 0) { p[kv.slice(0, i)] = kv.slice(i + 1); } else if (kv) { p.a = kv; } });
  S.a = byId[p.a] ? p.a : (D.detectors[0] ? D.detectors[0].id : null);
  S.b = byId[p.b] && p.b !== S.a ? p.b : null;
  S.color = p.color === 'truth' ? 'truth' : 'cluster';
}
function writeHash() {
  var h = '#a=' + S.a + (S.b ? '&b=' + S.b : '') + (S.color === 'truth' ? '&color=truth' : '');
  if (location.hash !== h) { history.replaceState(null, '', h); }
}
function tile(sheet, i, px, title) {
  // a tile of about px pixels: its sheet's own pixels enlarged a whole number of times (pixelated, no blur)
  var scale = Math.max(1, Math.round(px / sheet.w));
  var d = el('div', {'class': 'tile', 'data-i': i, title: title || ''}), c = i % sheet.cols, r = Math.floor(i / sheet.cols);
  d.style.width = sheet.w * scale + 'px'; d.style.height = sheet.h * scale + 'px';
  d.style.backgroundImage = 'url("../' + encodeURI(sheet.file) + '")';
  d.style.backgroundSize = sheet.cols * sheet.w * scale + 'px auto';
  d.style.backgroundPosition = -c * sheet.w * scale + 'px ' + -r * sheet.h * scale + 'px';
  return d;
}
function clusterOf(d, i) { var l = d.labels[i]; return d.clusters.filter(function (c) { return c.label === l; })[0]; }
function fill(d, i) {
  return S.color === 'truth' ? (D.poisoned[i] ? D.truth_colors.poisoned : D.truth_colors.clean) : clusterOf(d, i).color;
}
function active() { return [S.a, S.b].filter(Boolean).map(function (id) { return byId[id]; }); }
function controls() {
  var box = document.getElementById('controls'); box.textContent = '';
  [['a', 'detector'], ['b', 'compare with']].forEach(function (x) {
    var lab = el('label', {}, x[1] + ' '), sel = el('select', {id: 'pick-' + x[0]});
    if (x[0] === 'b') { sel.appendChild(el('option', {value: ''}, '(none)')); }
    D.detectors.forEach(function (d) { var o = el('option', {value: d.id}, d.source + ' × ' + d.clusterer); if (S[x[0]] === d.id) { o.selected = true; } sel.appendChild(o); });
    sel.addEventListener('change', function () { S[x[0]] = sel.value || null; if (S.b === S.a) { S.b = null; } S.picked = {}; render(); });
    lab.appendChild(sel); box.appendChild(lab);
  });
  var col = el('label', {}, ' colour by ');
  var cs = el('select', {id: 'color-by'});
  [['cluster', 'cluster (what the detector found)'], ['truth', 'ground truth (poisoned vs clean)']].forEach(function (o) {
    var e = el('option', {value: o[0]}, o[1]); if (S.color === o[0]) { e.selected = true; } cs.appendChild(e);
  });
  cs.addEventListener('change', function () { S.color = cs.value; render(); });
  col.appendChild(cs); box.appendChild(col);
}
function highlight(i) {
  // a ring drawn over the point (never a moved node: moving the hovered node cancels the click on it)
  document.querySelectorAll('circle.hl').forEach(function (c) { c.classList.remove('hl'); });
  document.querySelectorAll('circle.ring').forEach(function (r) { r.setAttribute('visibility', 'hidden'); });
  if (i === null) { return; }
  document.querySelectorAll('circle[data-i="' + i + '"]').forEach(function (c) {
    c.classList.add('hl');
    var ring = c.parentNode.querySelector('circle.ring');
    ring.setAttribute('cx', c.getAttribute('cx')); ring.setAttribute('cy', c.getAttribute('cy')); ring.setAttribute('visibility', 'visible');
  });
}
function detail(i) {
  var box = document.getElementById('detail'); box.textContent = '';
  if (i === null) { box.appendChild(el('p', {'class': 'hint'}, 'Hover over a point to see its image and map; click to keep it.')); return; }
  box.appendChild(el('h3', {}, 'training image ' + D.index[i] + ' (' + (D.poisoned[i] ? 'poisoned' : 'clean') + ', ground truth)'));
  var row = el('div', {'class': 'row'}), fig = el('figure', {});
  fig.appendChild(tile(D.images, i, 150)); fig.appendChild(el('figcaption', {}, 'image')); row.appendChild(fig);
  var drawn = {};
  active().forEach(function (d) {
    var src = D.sources[d.source];
    if (src && src.maps && !drawn[d.source]) {
      drawn[d.source] = true;
      var f = el('figure', {}), cap = el('figcaption', {}, d.source + ' map');
      f.appendChild(tile(src.maps, i, 150));
      cap.appendChild(el('br')); cap.appendChild(document.createTextNode(scaleText(src.scales ? src.scales[i] : null)));
      f.appendChild(cap); row.appendChild(f);
    }
  });
  box.appendChild(row);
  if (Object.keys(drawn).length) {
    var w = D.sources[Object.keys(drawn)[0]].maps.w;
    box.appendChild(el('p', {'class': 'hint'}, 'Maps as the clusterer saw them (average-pooled to ' + w + ' px, views summed): red positive relevance, blue negative, each map on its own scale (\u00b1 its largest |value|), as hansbench explain draws them.'));
  }
  active().forEach(function (d) {
    var c = clusterOf(d, i), ul = el('ul', {'class': 'says'});
    box.appendChild(el('p', {'class': 'who'}, d.source + ' × ' + d.clusterer + ': cluster ' + c.label + ' (' + pct(c.share) + ' of the class)'));
    d.rules.forEach(function (r) { ul.appendChild(el('li', {}, r.rule + ': ' + (r.abstained ? 'abstained' : r.flagged.indexOf(i) >= 0 ? 'flagged' : 'not flagged'))); });
    box.appendChild(ul);
  });
}
function scaleText(s) {
  // as hansbench explain states a map's scale: the colours span plus or minus its largest |value|
  return s === null || s === undefined ? '' : s === '0' ? '\u00b10 (all zero)' : '\u00b1' + s;
}
function show(i) { S.shown = i; highlight(i); detail(i); }
function scatter(d) {
  var src = D.sources[d.source], svg = el('svg:svg', {viewBox: '-20 -20 1040 1040', width: 380, height: 380, 'class': 'emb', 'data-detector': d.id});
  var pick = S.picked[d.id];
  for (var i = 0; i < D.n; i++) {
    var c = el('svg:circle', {cx: src.xy[2 * i], cy: src.xy[2 * i + 1], r: 10, fill: fill(d, i), 'data-i': i});
    if (pick !== undefined && d.labels[i] !== pick) { c.setAttribute('class', 'dim'); }
    svg.appendChild(c);
  }
  svg.appendChild(el('svg:circle', {'class': 'ring', r: 24, cx: 0, cy: 0, visibility: 'hidden'}));
  svg.addEventListener('mouseover', function (e) { var i = e.target.getAttribute('data-i'); if (i !== null && +i !== S.shown) { show(+i); } });
  svg.addEventListener('mouseleave', function () { show(S.pinned); });
  svg.addEventListener('click', function (e) { var i = e.target.getAttribute('data-i'); if (i !== null) { S.pinned = +i; show(+i); } });
  return svg;
}
function card(d, c, src) {
  var box = el('div', {'class': 'cluster' + (S.picked[d.id] === c.label ? ' sel' : ''), 'data-label': c.label});
  var head = el('div', {'class': 'head', title: 'click: show only this cluster in the embedding'});
  var sw = el('span', {'class': 'swatch'}); sw.style.background = c.color; head.appendChild(sw);
  head.appendChild(el('span', {}, 'cluster ' + c.label + ': ' + c.size + ' images, ' + pct(c.share) + ' of the class; ' + c.poisoned + ' poisoned (ground truth)' + (c.own_flagged ? '; the clusterer\'s own pick' : '')));
  head.addEventListener('click', function () { S.picked[d.id] = S.picked[d.id] === c.label ? undefined : c.label; render(); });
  box.appendChild(head);
  // the mean beside a grid of the typical images (4 a row), each with its map below it
  var row = el('div', {'class': 'crow'}), mean = el('figure', {'class': 'mean'}), typs = el('div', {'class': 'typs'});
  if (D.means && D.means[src.mean_kind]) { mean.appendChild(tile(D.means[src.mean_kind], c.mean, 96)); }
  mean.appendChild(el('figcaption', {}, 'mean ' + (src.mean_kind || 'map'))); row.appendChild(mean); row.appendChild(typs);
  c.typical.forEach(function (i) {
    var f = el('figure', {'class': 'typ'}); f.appendChild(tile(D.images, i, 56, 'image ' + D.index[i]));
    if (src.maps) { f.appendChild(tile(src.maps, i, 56, 'its map (' + scaleText(src.scales ? src.scales[i] : null) + ')')); }
    f.addEventListener('mouseenter', function () { show(i); });
    f.addEventListener('click', function () { S.pinned = i; show(i); });
    typs.appendChild(f);
  });
  box.appendChild(row);
  var t = el('table', {'class': 'rules'});
  c.rules.forEach(function (r) {
    var tr = el('tr', {}); tr.appendChild(el('td', {}, r.rule)); tr.appendChild(el('td', {'class': 'dec ' + r.decision.replace(/[^a-z]/g, '')}, r.decision));
    tr.appendChild(el('td', {}, (r.against ? r.against + ': ' : '') + r.reason));
    t.appendChild(tr);
  });
  if (c.rules.length) { box.appendChild(t); }
  return box;
}
function panel(d) {
  var src = D.sources[d.source], p = el('section', {'class': 'panel', 'data-detector': d.id});
  p.appendChild(el('h2', {}, d.source + ' × ' + d.clusterer));
  p.appendChild(el('p', {'class': 'note'}, '2-D embedding of what the clusterer saw: ' + src.note + (d.silhouette !== null && d.silhouette !== undefined ? '; silhouette ' + Number(d.silhouette).toFixed(3) : '')));
  // one detector: its cluster cards beside the embedding (the page's width used); two: below each embedding
  var body = el('div', {'class': 'pbody'}), cards = el('div', {'class': 'cards'});
  body.appendChild(scatter(d)); body.appendChild(cards); p.appendChild(body);
  d.clusters.forEach(function (c) { cards.appendChild(card(d, c, src)); });
  return p;
}
function render() {
  writeHash(); controls();
  var box = document.getElementById('panels'); box.textContent = ''; box.className = S.b ? 'two' : 'one';
  var leg = document.getElementById('legend'); leg.textContent = S.color === 'truth' ? 'colour: ground truth (red poisoned, blue clean)' : 'colour: the detector\'s clusters (orange: the cluster the clusterer itself flags)';
  if (!active().length) { box.appendChild(el('p', {}, D.missing || 'no detector of this page is in the cache')); }
  active().forEach(function (d) { box.appendChild(panel(d)); });
  show(S.pinned);
}
readHash(); render();
window.addEventListener('hashchange', function () { readHash(); render(); });
}());
