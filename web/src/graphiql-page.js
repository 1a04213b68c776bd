// GraphiQL with the token field: every request GraphiQL sends (introspection included)
// carries `Authorization: Bearer <token>`; applying a new token reloads the schema.
(function () {
  'use strict';
  var container = document.getElementById('graphiql');
  var state = document.getElementById('token-state');
  var root = null;

  function fetcher(params) {
    return fetch('/graphql', {
      method: 'POST',
      headers: window.cnscdToken.headers({
        'Content-Type': 'application/json',
        Accept: 'application/graphql-response+json, application/json',
      }),
      body: JSON.stringify(params),
    }).then(function (resp) {
      return resp.json().catch(function () {
        return { errors: [{ message: 'HTTP ' + resp.status + ': the answer is not JSON' }] };
      });
    });
  }

  function mount(token) {
    state.textContent = token ? 'token set' : 'no token: requests will be refused (401)';
    if (root) root.unmount();
    root = window.ReactDOM.createRoot(container);
    root.render(
      window.React.createElement(window.GraphiQL, {
        fetcher: fetcher,
        defaultEditorToolbarOpen: true,
        defaultQuery:
          '# Indicators of a unit, e.g. Đồng Hỷ (169) in 2023:\n' +
          'query DongHy2023 {\n' +
          '  indicators(codes: ["CNS02", "EG01"], unitCodes: ["169"], from: "2023-01-01", to: "2023-12-31", granularity: YEAR) {\n' +
          '    indicator { code nameVi }\n    unit { code name }\n    period { label }\n    value\n    status\n  }\n}\n',
      })
    );
  }

  window.cnscdToken.bind(document.getElementById('token-form'), mount);
  if (!window.cnscdToken.get()) mount('');
})();
