// Real GraphQL clients from npm against cnscd. Run by the Rust test `clients`
// (tests/tests/api/clients.rs) against a server on the demo data:
//
//   CNSCD_URL=http://127.0.0.1:8080 CNSCD_VIEWER_TOKEN=<VIEWER of 169> \
//   CNSCD_REPORTER_TOKEN=<REPORTER of 169> node clients-test.mjs
//
// Apollo Client (HttpLink, InMemoryCache, errorPolicy 'all') runs queries with fields the
// caller may not read: a VIEWER's members' personal data, a REPORTER's member counts. The
// script checks that `data` has each of those keys with null, and that the errors carry their
// paths. A missing key is what typed clients fail on: Apollo's cache then cannot read the
// result back. graphql-ws's client (with the `ws` package) subscribes to `activitySubmitted`
// as the REPORTER, with its token in `connection_init`. It prints "subscribed", and the Rust
// test then submits an activity over HTTP. The script checks the event: the activity, and its
// team's member count null with FORBIDDEN on its path. It prints "client checks passed" and
// exits 0 when every check holds.
//
// Apollo's persisted-query link (over POST, then with useGETForHashedQueries over GET) runs a
// query the server has not seen: the script records what goes out and checks the protocol —
// the hash alone, PersistedQueryNotFound, the text with its hash once, and from then on (a new
// client, so nothing is cached on its side) the hash alone answered.
import { createHash } from 'node:crypto';
import { ApolloClient, CombinedGraphQLErrors, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const base = process.env.CNSCD_URL;
const viewer = process.env.CNSCD_VIEWER_TOKEN;
const reporter = process.env.CNSCD_REPORTER_TOKEN;
if (!base || !viewer || !reporter) {
  console.error('set CNSCD_URL, CNSCD_VIEWER_TOKEN and CNSCD_REPORTER_TOKEN');
  process.exit(2);
}
const failures = [];
const check = (ok, msg) => {
  if (ok) {
    console.log(`ok: ${msg}`);
  } else {
    failures.push(msg);
    console.error(`FAIL: ${msg}`);
  }
};
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const has = (obj, key) => obj !== null && typeof obj === 'object' && Object.hasOwn(obj, key);

function apollo(token) {
  return new ApolloClient({
    link: new HttpLink({ uri: `${base}/graphql`, headers: { Authorization: `Bearer ${token}` } }),
    cache: new InMemoryCache(),
  });
}

// Apollo Client 4 gives the GraphQL errors of a result as one CombinedGraphQLErrors.
function graphqlErrors(result) {
  return CombinedGraphQLErrors.is(result.error) ? result.error.errors : [];
}

// Each withheld field is a key of `data` with null, and an error with FORBIDDEN on its path.
function withheld(result, list, fields, label) {
  const errors = graphqlErrors(result);
  check(Array.isArray(list) && list.length > 0, `${label}: the list has rows (${JSON.stringify(result.data)})`);
  for (const [i, row] of (list || []).entries()) {
    for (const [at, field, path] of fields(row, i)) {
      check(has(at, field) && at[field] === null, `${label}: row ${i} has \`${field}\`: null`);
      check(
        errors.some((e) => e.extensions?.code === 'FORBIDDEN' && same(e.path, path)),
        `${label}: a FORBIDDEN error at ${JSON.stringify(path)}`,
      );
    }
  }
}

async function personalData() {
  const result = await apollo(viewer).query({
    query: gql`
      query Members {
        members(first: 3) {
          nodes { id person { fullName phone email birthYear } }
        }
      }
    `,
    errorPolicy: 'all',
  });
  const nodes = result.data?.members?.nodes;
  withheld(result, nodes, (row, i) =>
    ['phone', 'email', 'birthYear'].map((f) => [row.person, f, ['members', 'nodes', i, 'person', f]]),
  'Apollo, VIEWER, personal data');
  check(nodes?.every((n) => typeof n.person.fullName === 'string'), 'Apollo, VIEWER: names are read');
}

async function memberCounts() {
  const result = await apollo(reporter).query({
    query: gql`
      query Teams {
        teams(first: 3) {
          nodes { id code memberCount members { id } }
        }
      }
    `,
    errorPolicy: 'all',
  });
  const nodes = result.data?.teams?.nodes;
  withheld(result, nodes, (row, i) =>
    ['memberCount', 'members'].map((f) => [row, f, ['teams', 'nodes', i, f]]),
  'Apollo, REPORTER, members');
  check(nodes?.every((n) => typeof n.code === 'string'), 'Apollo, REPORTER: codes are read');
}

// A client whose requests go through Apollo's persisted-query link; `sent` records each
// request (method, whether it carried the text, the hash) and the answer's first error.
function persisted(token, useGET, sent) {
  const recording = async (uri, options) => {
    const url = new URL(uri);
    const body = options.body ? JSON.parse(options.body) : null;
    const extensions = body?.extensions ?? JSON.parse(url.searchParams.get('extensions') || 'null');
    const response = await fetch(uri, options);
    const answer = await response.clone().json().catch(() => null);
    sent.push({
      method: options.method,
      withText: Boolean(body?.query ?? url.searchParams.get('query')),
      hash: extensions?.persistedQuery?.sha256Hash,
      error: answer?.errors?.[0]?.message,
    });
    return response;
  };
  const sha256 = (text) => createHash('sha256').update(text).digest('hex');
  return new ApolloClient({
    link: new PersistedQueryLink({ sha256, useGETForHashedQueries: useGET }).concat(
      new HttpLink({ uri: `${base}/graphql`, headers: { Authorization: `Bearer ${token}` }, fetch: recording }),
    ),
    cache: new InMemoryCache(),
  });
}

async function persistedQueries() {
  for (const useGET of [false, true]) {
    const label = `Apollo persisted queries over ${useGET ? 'GET' : 'POST'}`;
    // A document of its own per run, so the server has not seen it.
    const query = gql`
      query Unit${useGET ? 'Get' : 'Post'}($code: String!) { adminUnit(code: $code) { code name } }
    `;
    const sent = [];
    const first = await persisted(viewer, useGET, sent).query({ query, variables: { code: '169' } });
    check(first.data?.adminUnit?.code === '169', `${label}: answered (${JSON.stringify(first.data)})`);
    check(sent.length === 2 && !sent[0].withText && sent[0].error === 'PersistedQueryNotFound',
      `${label}: the hash alone first, PersistedQueryNotFound (${JSON.stringify(sent)})`);
    check(sent[1]?.withText && sent[1].hash === sent[0].hash && sent[1].method === 'POST',
      `${label}: then the text with the same hash, by POST`);
    const again = [];
    const second = await persisted(viewer, useGET, again).query({ query, variables: { code: '169' } });
    check(same(second.data, first.data), `${label}: a new client's answer by hash is the same`);
    check(again.length === 1 && !again[0].withText && again[0].hash === sent[0].hash
      && again[0].method === (useGET ? 'GET' : 'POST'),
    `${label}: a new client sends the hash alone, once (${JSON.stringify(again)})`);
  }
}

// The live feed: resolves with the first event.
function liveFeed() {
  const client = createClient({
    url: `${base.replace(/^http/, 'ws')}/graphql/ws`,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${reporter}` },
  });
  return new Promise((resolve, reject) => {
    client.on('connected', () => console.log('subscribed'));
    const stop = client.subscribe(
      { query: 'subscription { activitySubmitted { id title team { code memberCount } } }' },
      {
        next: (event) => {
          stop();
          client.dispose();
          resolve(event);
        },
        error: (e) => reject(e instanceof Error ? e : new Error(JSON.stringify(e))),
        complete: () => reject(new Error('the subscription completed before any event')),
      },
    );
  });
}

async function main() {
  await personalData();
  await memberCounts();
  await persistedQueries();
  const event = await liveFeed();
  const activity = event.data?.activitySubmitted;
  check(typeof activity?.id === 'string', `graphql-ws: the event holds the activity (${JSON.stringify(event)})`);
  check(typeof activity?.team?.code === 'string', 'graphql-ws: the event holds its team');
  check(has(activity?.team, 'memberCount') && activity.team.memberCount === null,
    'graphql-ws: the member count the reporter may not read is a key with null');
  check(
    (event.errors || []).some((e) => e.extensions?.code === 'FORBIDDEN'
      && same(e.path, ['activitySubmitted', 'team', 'memberCount'])),
    'graphql-ws: FORBIDDEN at activitySubmitted.team.memberCount',
  );
  if (activity?.id) console.log(`event ${activity.id}`);
  if (failures.length) {
    console.error(`${failures.length} client checks failed`);
    process.exit(1);
  }
  console.log('client checks passed');
  process.exit(0);
}

// A guard against a hang (nothing arrives): the Rust test reads the output.
setTimeout(() => {
  console.error('FAIL: no event within 120 s');
  process.exit(1);
}, 120_000).unref();

main().catch((e) => {
  console.error(`FAIL: ${e?.stack || e}`);
  process.exit(1);
});
