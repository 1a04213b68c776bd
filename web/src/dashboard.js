// The dashboard: an indicator of a unit and its children for a year (table and bar chart,
// from `indicatorTable` with breakdown CHILDREN and granularity YEAR), the unit's months as a
// line (granularity MONTH), statuses, the CSV download; Vietnamese and English labels.
// Plain script and inline SVG: nothing is loaded from outside this server.
(function () {
  'use strict';

  var LABELS = {
    vi: {
      title: 'Chỉ số chuyển đổi số', token: 'Token', apply: 'Dùng', indicator: 'Chỉ số',
      unit: 'Đơn vị', year: 'Năm', show: 'Xem', children: 'Các đơn vị trực thuộc (theo năm)',
      months: 'Theo tháng', csv: 'Tải CSV', code: 'Mã', name: 'Tên', value: 'Giá trị',
      numerator: 'Tử số', denominator: 'Mẫu số', target: 'Chỉ tiêu', status: 'Trạng thái',
      month: 'Tháng', total: 'Toàn đơn vị', other: 'English',
      noToken: 'Nhập token rồi bấm "Dùng" để xem số liệu.', loading: 'Đang tải…',
      refused: 'Token không hợp lệ hoặc đã hết hạn: ',
      withheld: ' giá trị bị ẩn vì nằm ngoài phạm vi của bạn.',
      noChildren: 'Đơn vị này không có đơn vị trực thuộc trong năm đã chọn.',
      csvFailed: 'Không tải được CSV: ',
      status_OK: 'Đủ số liệu', status_NO_DATA: 'Không có số liệu',
      status_PARTIAL: 'Thiếu một phần', status_ESTIMATED: 'Ước tính',
    },
    en: {
      title: 'Digital transformation indicators', token: 'Token', apply: 'Use', indicator: 'Indicator',
      unit: 'Unit', year: 'Year', show: 'Show', children: 'Units below (by year)',
      months: 'By month', csv: 'Download CSV', code: 'Code', name: 'Name', value: 'Value',
      numerator: 'Numerator', denominator: 'Denominator', target: 'Target', status: 'Status',
      month: 'Month', total: 'Whole unit', other: 'Tiếng Việt',
      noToken: 'Enter a token and press "Use" to see the figures.', loading: 'Loading…',
      refused: 'The token was refused: ',
      withheld: ' values withheld: their units lie outside your area.',
      noChildren: 'This unit has no units below it in the chosen year.',
      csvFailed: 'The CSV could not be downloaded: ',
      status_OK: 'Complete', status_NO_DATA: 'No data',
      status_PARTIAL: 'Partial', status_ESTIMATED: 'Estimated',
    },
  };

  var $ = function (id) { return document.getElementById(id); };
  var params = new URLSearchParams(window.location.search);
  var lang = params.get('lang') || localStorageGet('cnscd.lang') || 'vi';
  if (!LABELS[lang]) lang = 'vi';
  var definitions = [];
  var last = null; // the figures on screen, redrawn on a language change

  function localStorageGet(key) {
    try { return window.localStorage.getItem(key); } catch (e) { return null; }
  }

  function t(key) { return LABELS[lang][key] || key; }

  function message(text, isError) {
    var m = $('message');
    m.textContent = text || '';
    m.className = isError ? 'error' : '';
  }

  // A GraphQL request with the token; resolves to `data` or rejects with a readable message.
  function gql(query, variables) {
    return fetch('/graphql', {
      method: 'POST',
      headers: window.cnscdToken.headers({
        'Content-Type': 'application/json',
        Accept: 'application/graphql-response+json, application/json',
      }),
      body: JSON.stringify({ query: query, variables: variables || {} }),
    }).then(function (resp) {
      return resp.json().then(function (body) {
        var errors = (body && body.errors) || [];
        if (resp.status === 401) throw new Error(t('refused') + errors.map(function (e) { return e.message; }).join('; '));
        if (errors.length) throw new Error(errors.map(function (e) { return e.message; }).join('; '));
        return body.data;
      }, function () { throw new Error('HTTP ' + resp.status); });
    });
  }

  function format(v, digits) {
    if (v === null || v === undefined) return '—';
    return new Intl.NumberFormat(lang === 'vi' ? 'vi-VN' : 'en-GB', {
      maximumFractionDigits: digits === undefined ? 2 : digits,
    }).format(v);
  }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }

  var SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function statusBadge(status) {
    return el('span', { class: 'status status-' + status, 'data-status': status }, t('status_' + status));
  }

  function applyLabels() {
    document.documentElement.lang = lang;
    document.querySelectorAll('[data-i18n]').forEach(function (e) { e.textContent = t(e.getAttribute('data-i18n')); });
    $('lang').textContent = t('other');
    $('lang').setAttribute('aria-pressed', String(lang === 'en'));
    document.title = 'cnscd · ' + t('title');
    fillIndicators();
    if (last) draw(last);
  }

  function fillIndicators() {
    var select = $('indicator');
    var chosen = select.value || params.get('indicator') || 'CNS02';
    select.textContent = '';
    definitions.forEach(function (d) {
      select.appendChild(el('option', { value: d.code }, d.code + ' · ' + (lang === 'vi' ? d.nameVi : d.nameEn)));
    });
    if (definitions.some(function (d) { return d.code === chosen; })) select.value = chosen;
  }

  function fillYears() {
    var select = $('year');
    var now = new Date().getFullYear();
    for (var y = now; y >= now - 6; y--) select.appendChild(el('option', { value: String(y) }, String(y)));
    select.value = params.get('year') || String(now - 1);
  }

  // Units to choose from: each unit of the caller's area and the units directly below it
  // (in force at the start of the year), or every province for a caller with no area limit
  // (ADMIN); a unit named in the URL is added, and a child row's code opens that unit.
  function loadUnits() {
    var on = $('year').value + '-01-01';
    return gql('query DashboardMe { me { units } }').then(function (me) {
      var roots = me.me.units.slice(0, 10);
      var q, vars = { on: on };
      if (roots.length) {
        var decl = roots.map(function (c, i) { return '$c' + i + ': String!'; }).join(', ');
        var fields = roots.map(function (c, i) {
          vars['c' + i] = c;
          return 'r' + i + ': adminUnit(code: $c' + i + ', on: $on) { code name } ' +
            'k' + i + ': adminUnits(parentCode: $c' + i + ', on: $on, first: 100) { edges { node { code name } } }';
        }).join(' ');
        q = 'query DashboardUnits($on: Date, ' + decl + ') { ' + fields + ' }';
      } else {
        q = 'query DashboardUnits($on: Date) { k0: adminUnits(level: PROVINCE, on: $on, first: 100) { edges { node { code name } } } }';
      }
      return gql(q, vars);
    }).then(function (data) {
      var units = [];
      for (var i = 0; data['r' + i] !== undefined || data['k' + i] !== undefined; i++) {
        if (data['r' + i]) units.push(data['r' + i]);
        (data['k' + i] ? data['k' + i].edges : []).forEach(function (e) {
          units.push({ code: e.node.code, name: e.node.name, child: !!data['r' + i] });
        });
      }
      var select = $('unit');
      var chosen = select.value || params.get('unit') || '';
      if (chosen && !units.some(function (u) { return u.code === chosen; })) units.push({ code: chosen, name: '' });
      select.textContent = '';
      units.forEach(function (u) {
        select.appendChild(el('option', { value: u.code }, (u.child ? '\u00a0\u00a0' : '') + u.code + (u.name ? ' · ' + u.name : '')));
      });
      if (chosen) select.value = chosen;
    });
  }

  function start() {
    message(t('loading'));
    return gql('query DashboardStart { indicatorDefinitions { code nameVi nameEn description factor } }')
      .then(function (data) {
        definitions = data.indicatorDefinitions;
        fillIndicators();
        return loadUnits();
      })
      .then(function () {
        message('');
        return show();
      })
      .catch(function (e) { message(e.message, true); });
  }

  function csvUrl(code, unit, from, to) {
    var q = new URLSearchParams({ codes: code, unitCodes: unit, from: from, to: to, granularity: 'YEAR', breakdown: 'CHILDREN' });
    return '/exports/indicators.csv?' + q.toString();
  }

  var QUERY = 'query Dashboard($codes: [String!]!, $units: [String!]!, $from: Date!, $to: Date!) {' +
    ' children: indicatorTable(codes: $codes, unitCodes: $units, from: $from, to: $to, granularity: YEAR, breakdown: CHILDREN)' +
    ' { units periods values numerators denominators statuses targets withheld }' +
    ' whole: indicatorTable(codes: $codes, unitCodes: $units, from: $from, to: $to, granularity: YEAR)' +
    ' { values numerators denominators statuses targets }' +
    ' months: indicatorTable(codes: $codes, unitCodes: $units, from: $from, to: $to, granularity: MONTH)' +
    ' { periods values statuses } }';

  function show() {
    var code = $('indicator').value;
    var unit = $('unit').value;
    var year = $('year').value;
    if (!code || !unit || !year) return Promise.resolve();
    var from = year + '-01-01';
    var to = year + '-12-31';
    message(t('loading'));
    var figures;
    return gql(QUERY, { codes: [code], units: [unit], from: from, to: to })
      .then(function (data) {
        figures = { code: code, unit: unit, year: year, from: from, to: to, data: data, names: {} };
        var codes = [unit].concat(data.children.units);
        var vars = codes.map(function (c, i) { return '$c' + i + ': String!'; }).join(', ');
        var fields = codes.map(function (c, i) { return 'u' + i + ': adminUnit(code: $c' + i + ') { code name }'; }).join(' ');
        var values = {};
        codes.forEach(function (c, i) { values['c' + i] = c; });
        return gql('query DashboardNames(' + vars + ') { ' + fields + ' }', values);
      })
      .then(function (names) {
        Object.keys(names).forEach(function (k) { if (names[k]) figures.names[names[k].code] = names[k].name; });
        last = figures;
        message('');
        draw(figures);
        var url = new URL(window.location.href);
        url.search = new URLSearchParams({ indicator: code, unit: unit, year: year, lang: lang }).toString();
        window.history.replaceState(null, '', url.toString());
      })
      .catch(function (e) { message(e.message, true); });
  }

  function draw(f) {
    var d = f.data;
    var def = definitions.filter(function (x) { return x.code === f.code; })[0] || {};
    var unitName = f.names[f.unit] || f.unit;
    $('result').hidden = false;
    $('heading').textContent = f.code + ' · ' + (lang === 'vi' ? def.nameVi : def.nameEn) + ' — ' + unitName + ' — ' + f.year;
    $('definition').textContent = def.description || '';
    $('summary').textContent = '';
    $('summary').appendChild(document.createTextNode(t('total') + ': '));
    $('summary').appendChild(el('strong', { id: 'unit-value', 'data-value': String(d.whole.values[0]) }, format(d.whole.values[0])));
    $('summary').appendChild(document.createTextNode(' '));
    $('summary').appendChild(statusBadge(d.whole.statuses[0]));

    // The children's table: one period (the year), so entry i belongs to units[i].
    var body = $('children-table').querySelector('tbody');
    body.textContent = '';
    var rows = d.children.units.map(function (u, i) {
      return {
        code: u, name: f.names[u] || '', value: d.children.values[i], numerator: d.children.numerators[i],
        denominator: d.children.denominators[i], target: d.children.targets[i], status: d.children.statuses[i],
      };
    });
    rows.forEach(function (r) {
      var tr = el('tr', { 'data-unit': r.code });
      var link = el('a', { href: '?' + new URLSearchParams({ indicator: f.code, unit: r.code, year: f.year, lang: lang }), class: 'drill' }, r.code);
      var codeCell = el('td'); codeCell.appendChild(link); tr.appendChild(codeCell);
      tr.appendChild(el('td', {}, r.name));
      tr.appendChild(el('td', { class: 'num value', 'data-value': String(r.value) }, format(r.value)));
      tr.appendChild(el('td', { class: 'num', 'data-value': String(r.numerator) }, format(r.numerator)));
      tr.appendChild(el('td', { class: 'num', 'data-value': String(r.denominator) }, format(r.denominator)));
      tr.appendChild(el('td', { class: 'num', 'data-value': String(r.target) }, format(r.target)));
      var st = el('td'); st.appendChild(statusBadge(r.status)); tr.appendChild(st);
      body.appendChild(tr);
    });
    if (!rows.length) {
      var empty = el('tr'); empty.appendChild(el('td', { colspan: '7' }, t('noChildren'))); body.appendChild(empty);
    }
    var foot = $('children-table').querySelector('tfoot');
    foot.textContent = '';
    var total = el('tr', { 'data-unit': f.unit });
    total.appendChild(el('td', {}, f.unit));
    total.appendChild(el('td', {}, t('total')));
    [d.whole.values[0], d.whole.numerators[0], d.whole.denominators[0], d.whole.targets[0]].forEach(function (v) {
      total.appendChild(el('td', { class: 'num', 'data-value': String(v) }, format(v)));
    });
    var ts = el('td'); ts.appendChild(statusBadge(d.whole.statuses[0])); total.appendChild(ts);
    foot.appendChild(total);
    if (d.children.withheld > 0) message(d.children.withheld + t('withheld'));

    drawBars(rows);
    drawMonths(d.months);

    var mbody = $('months-table').querySelector('tbody');
    mbody.textContent = '';
    d.months.periods.forEach(function (p, i) {
      var tr = el('tr', { 'data-period': p });
      tr.appendChild(el('td', {}, p));
      tr.appendChild(el('td', { class: 'num value', 'data-value': String(d.months.values[i]) }, format(d.months.values[i])));
      var st = el('td'); st.appendChild(statusBadge(d.months.statuses[i])); tr.appendChild(st);
      mbody.appendChild(tr);
    });

    var csv = $('csv');
    csv.href = csvUrl(f.code, f.unit, f.from, f.to);
    csv.setAttribute('download', 'indicators-' + f.code + '-' + f.unit + '-' + f.year + '.csv');
  }

  // Horizontal bars, one per child; a child without a value gets a dash and no bar.
  function drawBars(rows) {
    var chart = $('bars');
    chart.textContent = '';
    var rowH = 22, left = 170, right = 70, width = 640;
    var height = Math.max(1, rows.length) * rowH + 10;
    chart.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    var max = Math.max.apply(null, rows.map(function (r) { return r.value || 0; }).concat([0]));
    rows.forEach(function (r, i) {
      var y = 5 + i * rowH;
      var label = (r.name || r.code);
      chart.appendChild(svg('text', { x: left - 6, y: y + 15, 'text-anchor': 'end' }, label.length > 26 ? label.slice(0, 25) + '…' : label));
      var w = max > 0 && r.value ? (r.value / max) * (width - left - right) : 0;
      var bar = svg('rect', { class: 'bar-rect', x: left, y: y + 3, width: Math.max(0, w), height: rowH - 6, 'data-unit': r.code, 'data-value': String(r.value) });
      bar.appendChild(svg('title', {}, label + ': ' + format(r.value) + ' (' + t('status_' + r.status) + ')'));
      chart.appendChild(bar);
      chart.appendChild(svg('text', { x: left + w + 4, y: y + 15 }, format(r.value)));
    });
  }

  // The unit's months as a line; months without a value break it.
  function drawMonths(m) {
    var chart = $('months');
    chart.textContent = '';
    var width = 640, height = 260, left = 60, right = 20, top = 15, bottom = 30;
    chart.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    var values = m.values;
    var max = Math.max.apply(null, values.map(function (v) { return v || 0; }).concat([0]));
    var min = Math.min.apply(null, values.map(function (v) { return v === null ? Infinity : v; }).concat([0]));
    if (max === min) max = min + 1;
    var n = Math.max(1, values.length - 1);
    var x = function (i) { return left + (i / n) * (width - left - right); };
    var y = function (v) { return top + (1 - (v - min) / (max - min)) * (height - top - bottom); };
    chart.appendChild(svg('line', { class: 'axis', x1: left, y1: height - bottom, x2: width - right, y2: height - bottom }));
    chart.appendChild(svg('line', { class: 'axis', x1: left, y1: top, x2: left, y2: height - bottom }));
    chart.appendChild(svg('text', { x: left - 6, y: top + 4, 'text-anchor': 'end' }, format(max)));
    chart.appendChild(svg('text', { x: left - 6, y: height - bottom, 'text-anchor': 'end' }, format(min)));
    var segment = [];
    var flush = function () {
      if (segment.length > 1) chart.appendChild(svg('polyline', { class: 'line', points: segment.join(' ') }));
      segment = [];
    };
    values.forEach(function (v, i) {
      chart.appendChild(svg('text', { x: x(i), y: height - bottom + 16, 'text-anchor': 'middle' }, m.periods[i].slice(5) || m.periods[i]));
      if (v === null) { flush(); return; }
      segment.push(x(i) + ',' + y(v));
      var point = svg('circle', { class: 'point', cx: x(i), cy: y(v), r: 3, 'data-period': m.periods[i], 'data-value': String(v) });
      point.appendChild(svg('title', {}, m.periods[i] + ': ' + format(v) + ' (' + t('status_' + m.statuses[i]) + ')'));
      chart.appendChild(point);
    });
    flush();
  }

  // The CSV needs the token too: fetched with it, then handed to the browser as a download.
  $('csv').addEventListener('click', function (ev) {
    ev.preventDefault();
    var a = ev.currentTarget;
    fetch(a.getAttribute('href'), { headers: window.cnscdToken.headers() })
      .then(function (resp) {
        if (!resp.ok) return resp.text().then(function (text) { throw new Error('HTTP ' + resp.status + ' ' + text); });
        return resp.blob();
      })
      .then(function (blob) {
        var link = el('a', { href: URL.createObjectURL(blob), download: a.getAttribute('download') });
        document.body.appendChild(link);
        link.click();
        link.remove();
        setTimeout(function () { URL.revokeObjectURL(link.href); }, 10000);
      })
      .catch(function (e) { message(t('csvFailed') + e.message, true); });
  });

  $('lang').addEventListener('click', function () {
    lang = lang === 'vi' ? 'en' : 'vi';
    try { window.localStorage.setItem('cnscd.lang', lang); } catch (e) { /* not kept */ }
    applyLabels();
  });
  $('pick').addEventListener('submit', function (ev) { ev.preventDefault(); show(); });
  $('year').addEventListener('change', function () { if (window.cnscdToken.get()) loadUnits().catch(function (e) { message(e.message, true); }); });

  fillYears();
  applyLabels();
  window.cnscdToken.bind($('token-form'), function (token) {
    if (token) start();
    else message(t('noToken'));
  });
  if (!window.cnscdToken.get()) message(t('noToken'));
})();
