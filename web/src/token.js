// The bearer token the pages send with their requests. The pages themselves need none: the
// token is typed into the page, kept in this tab's sessionStorage (gone when the tab closes,
// shared between GraphiQL and the dashboard in the same tab) and sent as
// `Authorization: Bearer <token>`.
(function () {
  'use strict';
  var KEY = 'cnscd.token';

  function get() {
    try {
      return (window.sessionStorage.getItem(KEY) || '').trim();
    } catch (e) {
      return '';
    }
  }

  function set(token) {
    var t = (token || '').trim().replace(/^bearer\s+/i, '');
    try {
      if (t) window.sessionStorage.setItem(KEY, t);
      else window.sessionStorage.removeItem(KEY);
    } catch (e) {
      /* storage refused (private mode): the token lives as long as the page */
    }
    current = t;
    return t;
  }

  var current = get();

  // Wires a token field: `form` holds an <input name="token">; `onChange(token)` runs when a
  // token is applied (and once at start when one is kept).
  function bind(form, onChange) {
    var input = form.querySelector('input[name="token"]');
    input.value = current;
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      onChange(set(input.value));
    });
    if (current) onChange(current);
  }

  function headers(extra) {
    var h = Object.assign({}, extra || {});
    if (current) h.Authorization = 'Bearer ' + current;
    return h;
  }

  window.cnscdToken = {
    get: function () {
      return current;
    },
    set: set,
    bind: bind,
    headers: headers,
  };
})();
