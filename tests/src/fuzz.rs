//! A schema-driven generator of GraphQL requests, valid and invalid, for fuzzing the service.
//!
//! The schema is read from the service's own introspection, so every new field, argument,
//! input or enum is fuzzed without touching this file. Requests mix: real fields with
//! plausible arguments (codes and ids of the fixture), wrong types, out-of-range numbers,
//! huge strings and lists, random and out-of-range dates, missing required arguments, unknown
//! fields, deep nesting, many aliases, variables (sometimes declared with the wrong type) and
//! plain syntax noise. Some hostile requests nest values, selections or variables thousands of
//! levels deep ([`Generator::deeply_nested`]); [`Generator::frame`] makes WebSocket frames for
//! `/graphql/ws`: protocol messages in and out of order, generated subscriptions, tokens,
//! noise, deep JSON and oversized messages.
//!
//! The random numbers come from SplitMix64, written out here rather than taken from a crate,
//! so that a seed names the same requests on every machine and every version of the tests.
use serde_json::{Value, json};
use std::collections::HashMap;
use std::fmt::Write;

/// SplitMix64: small, fast, and the same sequence everywhere for a seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A type reference as introspection gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeRef {
    Named(String),
    List(Box<TypeRef>),
    NonNull(Box<TypeRef>),
}

impl TypeRef {
    fn from_json(v: &Value) -> Option<Self> {
        match v["kind"].as_str()? {
            "NON_NULL" => Some(Self::NonNull(Box::new(Self::from_json(&v["ofType"])?))),
            "LIST" => Some(Self::List(Box::new(Self::from_json(&v["ofType"])?))),
            _ => Some(Self::Named(v["name"].as_str()?.to_owned())),
        }
    }

    /// The named type at the bottom.
    pub fn named(&self) -> &str {
        match self {
            Self::Named(n) => n,
            Self::List(t) | Self::NonNull(t) => t.named(),
        }
    }

    /// As written in a variable definition: `[String!]!`.
    pub fn sdl(&self) -> String {
        match self {
            Self::Named(n) => n.clone(),
            Self::List(t) => format!("[{}]", t.sdl()),
            Self::NonNull(t) => format!("{}!", t.sdl()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct InputDef {
    pub name: String,
    pub ty: TypeRef,
    /// The default value, as introspection writes it (`false`, `MONTH`).
    pub default_value: Option<String>,
}

#[derive(Clone, Debug)]
pub struct FieldDef {
    pub name: String,
    pub args: Vec<InputDef>,
    pub ty: TypeRef,
}

#[derive(Clone, Debug, Default)]
pub struct TypeDef {
    pub kind: String,
    pub fields: Vec<FieldDef>,
    pub input_fields: Vec<InputDef>,
    pub enum_values: Vec<String>,
    pub possible_types: Vec<String>,
}

/// The parts of a schema the generator needs.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    pub types: HashMap<String, TypeDef>,
    pub query: String,
    pub mutation: Option<String>,
    pub subscription: Option<String>,
}

fn inputs(v: &Value) -> Vec<InputDef> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| {
                    Some(InputDef {
                        name: i["name"].as_str()?.to_owned(),
                        ty: TypeRef::from_json(&i["type"])?,
                        default_value: i["defaultValue"].as_str().map(str::to_owned),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Schema {
    /// From the `data` of the standard introspection query.
    pub fn from_introspection(data: &Value) -> Self {
        let schema = &data["__schema"];
        let mut types = HashMap::new();
        for t in schema["types"].as_array().into_iter().flatten() {
            let Some(name) = t["name"].as_str() else {
                continue;
            };
            let fields = t["fields"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|f| {
                            Some(FieldDef {
                                name: f["name"].as_str()?.to_owned(),
                                args: inputs(&f["args"]),
                                ty: TypeRef::from_json(&f["type"])?,
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            let names = |key: &str| -> Vec<String> {
                t[key]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|e| e["name"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            types.insert(
                name.to_owned(),
                TypeDef {
                    kind: t["kind"].as_str().unwrap_or_default().to_owned(),
                    fields,
                    input_fields: inputs(&t["inputFields"]),
                    enum_values: names("enumValues"),
                    possible_types: names("possibleTypes"),
                },
            );
        }
        Self {
            types,
            query: schema["queryType"]["name"]
                .as_str()
                .unwrap_or("Query")
                .to_owned(),
            mutation: schema["mutationType"]["name"].as_str().map(str::to_owned),
            subscription: schema["subscriptionType"]["name"]
                .as_str()
                .map(str::to_owned),
        }
    }
}

/// Values the generator prefers for strings and ids, so that requests reach past the first
/// "unknown code" check into the services.
#[derive(Clone, Debug, Default)]
pub struct Pools {
    pub strings: Vec<String>,
    pub ids: Vec<String>,
    /// Values for arguments and input fields of a given name (`teamId`, `unitCode`, …), used
    /// by well-formed requests so that mutations get past "no such team" into the services.
    /// Fields without a hint get values by their type.
    pub hints: HashMap<String, Vec<Value>>,
}

impl Pools {
    /// Codes every fixture has, plus the given ids.
    pub fn with_ids(ids: Vec<String>) -> Self {
        let strings = [
            "19",
            "06",
            "169",
            "164",
            "05677",
            "05692",
            "05659",
            "05710",
            "05677-01",
            "05677-02",
            "05692-01",
            "05659-01",
            "CNS01",
            "CNS02",
            "CNS05",
            "CNS10",
            "EG01",
            "EG02",
            "DS01",
            "COMMUNITY_MEETING",
            "DOOR_TO_DOOR",
            "OTHER",
            "VNEID",
            "ONLINE_PUBLIC_SERVICE",
            "YOUTH_UNION",
            "POLICE",
            "HAMLET_HEAD",
            "LEADER",
            "MEMBER",
            "Team",
            "Membership",
            "Activity",
            "tran thi le",
            "Trần Thị Lệ",
            "ca phe",
            "Tổ Cà Phê",
            "0912345678",
            "a@example.vn",
            "2025-03",
            "2024-13",
            "",
            " ",
            "%",
            "_",
            "\\",
            "'",
            "\"",
            "%_\\",
            "'; DROP TABLE team; --",
            "\u{0}",
            "\u{202e}abc",
            "😀",
            "NaN",
            "-1",
            "null",
        ];
        Self {
            strings: strings.iter().map(|s| s.to_string()).collect(),
            ids,
            hints: HashMap::new(),
        }
    }
}

/// One generated request.
#[derive(Clone, Debug)]
pub struct Request {
    pub query: String,
    pub variables: Value,
    /// The whole JSON body to send instead of `query` and `variables`, when they could not be
    /// held as a `Value` (variables nested thousands deep).
    pub raw_body: Option<String>,
}

impl Request {
    /// The JSON body of a POST.
    pub fn body(&self) -> String {
        self.raw_body.clone().unwrap_or_else(|| {
            json!({ "query": self.query, "variables": self.variables }).to_string()
        })
    }
}

/// One WebSocket frame to send.
#[derive(Clone, Debug)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

/// Nesting depths the deep generator draws from: around the service's bound, and the
/// thousands that once overflowed a stack.
const DEPTHS: &[usize] = &[31, 32, 33, 64, 320, 2_000, 6_000];

/// Builds requests from a schema.
pub struct Generator<'a> {
    pub schema: &'a Schema,
    pub pools: &'a Pools,
    pub rng: Rng,
    vars: Vec<(String, String, Value)>,
    depth_budget: usize,
    /// Whether this request may be invalid (wrong types, unknown fields, out-of-range values,
    /// noise); the others are well-formed, to reach the resolvers and services.
    hostile: bool,
}

impl<'a> Generator<'a> {
    pub fn new(schema: &'a Schema, pools: &'a Pools, seed: u64) -> Self {
        Self {
            schema,
            pools,
            rng: Rng::new(seed),
            vars: Vec::new(),
            depth_budget: 4,
            hostile: false,
        }
    }

    /// The next request: mostly queries, some mutations, a few of plain noise.
    /// True with probability `percent` / 100 in a hostile request, never otherwise.
    fn bad(&mut self, percent: u64) -> bool {
        self.hostile && self.rng.chance(percent)
    }

    pub fn request(&mut self) -> Request {
        self.vars.clear();
        self.hostile = self.rng.chance(50);
        if self.hostile && self.rng.chance(6) {
            let root = self.schema.query.clone();
            return self.deeply_nested("query", &root);
        }
        self.depth_budget = if self.rng.chance(5) { 16 } else { 4 };
        let mutation = self.schema.mutation.clone().filter(|_| self.rng.chance(30));
        let (keyword, root) = match &mutation {
            Some(m) => ("mutation", m.clone()),
            None => ("query", self.schema.query.clone()),
        };
        let mut body = String::new();
        let n = if self.rng.chance(5) {
            20 + self.rng.below(60)
        } else {
            1 + self.rng.below(3)
        };
        for _ in 0..n {
            self.field_selection(&root, 0, &mut body);
            body.push(' ');
        }
        let defs = self.variable_definitions();
        let mut query = format!("{keyword} Fuzz{defs} {{ {body}}}");
        let variables = self.variable_values();
        if self.bad(8) {
            query = self.noise(query);
        }
        Request {
            query,
            variables: Value::Object(variables),
            raw_body: None,
        }
    }

    /// A request that nests deeply: a list or object value, a mix of both, selection sets, or
    /// the variables' JSON, on a real field of `root`, to a depth drawn from [`DEPTHS`].
    pub fn deeply_nested(&mut self, keyword: &str, root: &str) -> Request {
        let depth = *self.rng.pick(DEPTHS);
        let field = self
            .schema
            .types
            .get(root)
            .filter(|t| !t.fields.is_empty())
            .map(|t| self.rng.pick(&t.fields).clone());
        let (name, arg) = match &field {
            Some(f) => (
                f.name.clone(),
                f.args
                    .first()
                    .map_or_else(|| "a".to_owned(), |a| a.name.clone()),
            ),
            None => ("a".to_owned(), "a".to_owned()),
        };
        let mut value = String::with_capacity(depth * 4);
        let mut closes = Vec::with_capacity(depth);
        let shape = self.rng.below(5);
        for _ in 0..depth {
            let list = match shape {
                0 => true,
                1 => false,
                _ => self.rng.chance(50),
            };
            if list {
                value.push('[');
                closes.push(']');
            } else {
                value.push_str("{a: ");
                closes.push('}');
            }
        }
        value.push('1');
        value.extend(closes.iter().rev());
        let query = match shape {
            3 => format!(
                "{keyword} Deep {{ {name} {}__typename{} }}",
                "{ a ".repeat(depth),
                " }".repeat(depth)
            ),
            4 => {
                let vars = format!("{}1{}", "{\"a\": ".repeat(depth), "}".repeat(depth));
                let query =
                    format!("{keyword} Deep($v: String) {{ {name}(a: $v) {{ __typename }} }}");
                let body = format!(
                    "{{\"query\": {}, \"variables\": {{\"v\": {vars}}}}}",
                    serde_json::to_string(&query).unwrap_or_default()
                );
                return Request {
                    query,
                    variables: json!({}),
                    raw_body: Some(body),
                };
            }
            _ => format!("{keyword} Deep {{ {name}({arg}: {value}) {{ __typename }} }}"),
        };
        Request {
            query,
            variables: json!({}),
            raw_body: None,
        }
    }

    /// A subscription over the schema's subscription root (a deep one now and then), or
    /// `None` without one.
    pub fn subscription(&mut self) -> Option<Request> {
        let root = self.schema.subscription.clone()?;
        self.vars.clear();
        self.hostile = self.rng.chance(50);
        if self.hostile && self.rng.chance(10) {
            return Some(self.deeply_nested("subscription", &root));
        }
        self.depth_budget = 4;
        let mut body = String::new();
        self.field_selection(&root, 0, &mut body);
        let defs = self.variable_definitions();
        let variables = self.variable_values();
        Some(Request {
            query: format!("subscription Fuzz{defs} {{ {body}}}"),
            variables: Value::Object(variables),
            raw_body: None,
        })
    }

    /// A WebSocket frame for `/graphql/ws`: mostly messages of the protocol (with one of
    /// `tokens` in `connection_init`, or a bad one), in any order, and hostile ones: noise,
    /// JSON nested thousands deep, binary, a message past the size bounds.
    pub fn frame(&mut self, tokens: &[String]) -> Frame {
        let id = format!("{}", self.rng.below(8));
        let text = match self.rng.below(12) {
            0..=2 => {
                let payload = match self.rng.below(6) {
                    0 if !tokens.is_empty() => {
                        json!({ "Authorization": format!("Bearer {}", self.rng.pick(tokens)) })
                    }
                    1 if !tokens.is_empty() => json!({ "token": self.rng.pick(tokens) }),
                    2 => json!({ "token": "not.a.jwt" }),
                    3 => json!({ "token": "x".repeat(self.rng.below(40_000)) }),
                    4 => json!([1, 2, 3]),
                    _ => json!(null),
                };
                json!({ "type": "connection_init", "payload": payload }).to_string()
            }
            3..=5 => match self.subscription() {
                Some(r) => match r.raw_body {
                    Some(body) => format!(
                        "{{\"id\": \"{id}\", \"type\": \"subscribe\", \"payload\": {body}}}"
                    ),
                    None => json!({ "id": id, "type": "subscribe", "payload": { "query": r.query, "variables": r.variables } }).to_string(),
                },
                None => json!({ "type": "ping" }).to_string(),
            },
            6 => json!({ "id": id, "type": *self.rng.pick(&["complete", "next", "error"]) })
                .to_string(),
            7 => json!({ "type": *self.rng.pick(&["ping", "pong", "connection_ack", "start", "stop", "connection_terminate"]), "payload": { "x": 1 } }).to_string(),
            8 => {
                let depth = *self.rng.pick(DEPTHS);
                format!(
                    "{{\"type\": \"connection_init\", \"payload\": {}1{}}}",
                    "{\"a\": [".repeat(depth),
                    "]}".repeat(depth)
                )
            }
            9 => {
                let len = self.rng.below(300);
                (0..len)
                    .map(|_| *self.rng.pick(&['{', '}', '[', ']', '"', ':', ',', 'a', '1', ' ', '\\', 'ệ']))
                    .collect()
            }
            10 => {
                let len = *self.rng.pick(&[10usize, 20_000, 1_100_000]);
                json!({ "type": "ping", "payload": { "pad": "x".repeat(len) } }).to_string()
            }
            _ => {
                let len = self.rng.below(200);
                return Frame::Binary((0..len).map(|_| self.rng.below(256) as u8).collect());
            }
        };
        Frame::Text(text)
    }

    /// `($v0: Int, …)` for the variables the request uses, or nothing.
    fn variable_definitions(&self) -> String {
        if self.vars.is_empty() {
            return String::new();
        }
        let list: Vec<String> = self
            .vars
            .iter()
            .map(|(name, ty, _)| format!("${name}: {ty}"))
            .collect();
        format!("({})", list.join(", "))
    }

    /// The values of the variables the request uses.
    fn variable_values(&self) -> serde_json::Map<String, Value> {
        self.vars
            .iter()
            .map(|(n, _, v)| (n.clone(), v.clone()))
            .collect()
    }

    /// Truncates, duplicates or scrambles part of a query.
    fn noise(&mut self, query: String) -> String {
        let chars: Vec<char> = query.chars().collect();
        let at = self.rng.below(chars.len());
        match self.rng.below(4) {
            0 => chars[..at].iter().collect(),
            1 => {
                let junk = *self
                    .rng
                    .pick(&['{', '}', '(', ')', '$', '@', '!', ':', '"', '[', '…']);
                let mut s: String = chars[..at].iter().collect();
                s.push(junk);
                s.extend(&chars[at..]);
                s
            }
            2 => format!("{query} {}", &query[..query.len().min(50)]),
            _ => format!("{}{}", "{ a ".repeat(self.rng.below(40)), query),
        }
    }

    fn field_selection(&mut self, type_name: &str, depth: usize, out: &mut String) {
        let Some(def) = self.schema.types.get(type_name) else {
            out.push_str("__typename");
            return;
        };
        if self.bad(3) {
            let _ = write!(out, "noSuchField{} ", self.rng.below(10));
        }
        match def.kind.as_str() {
            "INTERFACE" | "UNION" => {
                out.push_str("__typename ");
                if def.kind == "INTERFACE" && !def.fields.is_empty() && self.rng.chance(70) {
                    let f = self.rng.pick(&def.fields).clone();
                    self.field(&f, depth, out);
                }
                if !def.possible_types.is_empty() && self.rng.chance(60) {
                    let t = self.rng.pick(&def.possible_types).clone();
                    let _ = write!(out, "... on {t} {{ ");
                    self.field_selection(&t, depth, out);
                    out.push_str("} ");
                }
            }
            _ if def.fields.is_empty() => out.push_str("__typename "),
            _ => {
                let k = 1 + self.rng.below(3);
                for _ in 0..k {
                    let f = self.rng.pick(&def.fields).clone();
                    self.field(&f, depth, out);
                }
            }
        }
    }

    /// A hinted value for an argument or input field of this name, in well-formed requests.
    fn hint(&mut self, name: &str) -> Option<Value> {
        if self.hostile || !self.rng.chance(85) {
            return None;
        }
        let values = self.pools.hints.get(name)?;
        if values.is_empty() {
            return None;
        }
        let v = self.rng.pick(values).clone();
        // A fresh idempotency key now and then, so that submissions are not all replays.
        Some(match v {
            Value::String(s) if s == "{unique}" => json!(format!("k-{}", self.rng.next_u64())),
            v => v,
        })
    }

    fn field(&mut self, f: &FieldDef, depth: usize, out: &mut String) {
        if self.rng.chance(25) {
            let _ = write!(out, "a{}: ", self.rng.below(1000));
        }
        out.push_str(&f.name);
        let mut args = Vec::new();
        for a in &f.args {
            let required = matches!(a.ty, TypeRef::NonNull(_));
            let include = if required {
                !self.bad(3)
            } else {
                self.rng.chance(40)
            };
            if include {
                let v = match self.hint(&a.name) {
                    Some(h) => to_literal(&h),
                    None => self.argument(&a.ty),
                };
                args.push(format!("{}: {v}", a.name));
            }
        }
        if self.bad(2) {
            args.push("noSuchArgument: 1".to_owned());
        }
        if !args.is_empty() {
            let _ = write!(out, "({})", args.join(", "));
        }
        let named = f.ty.named().to_owned();
        let composite = self
            .schema
            .types
            .get(&named)
            .is_some_and(|t| matches!(t.kind.as_str(), "OBJECT" | "INTERFACE" | "UNION"));
        if composite {
            out.push_str(" { ");
            if depth + 1 >= self.depth_budget {
                out.push_str("__typename ");
            } else {
                self.field_selection(&named, depth + 1, out);
            }
            out.push('}');
        } else if self.bad(2) {
            out.push_str(" { __typename }");
        }
        out.push(' ');
    }

    /// An argument: a literal or a variable.
    fn argument(&mut self, ty: &TypeRef) -> String {
        if self.rng.chance(25) {
            let name = format!("v{}", self.vars.len());
            let mut declared = ty.sdl();
            if self.bad(5) {
                declared = self
                    .rng
                    .pick(&["String", "Int!", "[ID]", "Boolean!", "Date"])
                    .to_string();
            }
            let value = self.json_value(ty, 0);
            self.vars.push((name.clone(), declared, value));
            return format!("${name}");
        }
        self.literal(ty, 0)
    }

    /// A value as JSON (for variables), valid most of the time.
    pub fn json_value(&mut self, ty: &TypeRef, depth: usize) -> Value {
        self.json_of(ty, depth, true)
    }

    fn json_of(&mut self, ty: &TypeRef, depth: usize, nullable: bool) -> Value {
        match ty {
            TypeRef::NonNull(inner) => {
                if self.bad(2) {
                    Value::Null
                } else {
                    self.json_of(inner, depth, false)
                }
            }
            TypeRef::List(inner) => {
                if self.bad(5) {
                    return self.json_of(inner, depth + 1, true);
                }
                let n = self.list_len();
                Value::Array(
                    (0..n)
                        .map(|_| self.json_of(inner, depth + 1, true))
                        .collect(),
                )
            }
            TypeRef::Named(name) => {
                if nullable && self.rng.chance(4) {
                    return Value::Null;
                }
                let Some(def) = self.schema.types.get(name).cloned() else {
                    return self.scalar_json(name);
                };
                match def.kind.as_str() {
                    "ENUM" => {
                        if self.bad(8) {
                            json!("NOT_A_VALUE")
                        } else {
                            json!(self.rng.pick(&def.enum_values))
                        }
                    }
                    "INPUT_OBJECT" if depth < 6 => {
                        let mut obj = serde_json::Map::new();
                        for f in &def.input_fields {
                            let required = matches!(f.ty, TypeRef::NonNull(_));
                            if (required && !self.bad(3)) || self.rng.chance(50) {
                                let v = match self.hint(&f.name) {
                                    Some(h) => h,
                                    None => self.json_value(&f.ty, depth + 1),
                                };
                                obj.insert(f.name.clone(), v);
                            }
                        }
                        if self.bad(3) {
                            obj.insert("noSuchInput".into(), json!(1));
                        }
                        Value::Object(obj)
                    }
                    "INPUT_OBJECT" => json!({}),
                    _ => self.scalar_json(name),
                }
            }
        }
    }

    fn list_len(&mut self) -> usize {
        if self.bad(3) {
            490 + self.rng.below(30)
        } else {
            self.rng.below(4)
        }
    }

    /// A value written as a GraphQL literal.
    fn literal(&mut self, ty: &TypeRef, depth: usize) -> String {
        self.literal_of(ty, depth, true)
    }

    fn literal_of(&mut self, ty: &TypeRef, depth: usize, nullable: bool) -> String {
        match ty {
            TypeRef::NonNull(inner) => {
                if self.bad(2) {
                    "null".to_owned()
                } else {
                    self.literal_of(inner, depth, false)
                }
            }
            TypeRef::List(inner) => {
                if self.bad(5) {
                    return self.literal_of(inner, depth + 1, true);
                }
                let n = self.list_len();
                let items: Vec<String> = (0..n).map(|_| self.literal(inner, depth + 1)).collect();
                format!("[{}]", items.join(", "))
            }
            TypeRef::Named(name) => {
                if nullable && self.rng.chance(4) {
                    return "null".to_owned();
                }
                let Some(def) = self.schema.types.get(name).cloned() else {
                    return to_literal(&self.scalar_json(name));
                };
                match def.kind.as_str() {
                    "ENUM" => match self.rng.below(if self.hostile { 12 } else { 0 }) {
                        0 if self.hostile => "NOT_A_VALUE".to_owned(),
                        1 => format!("\"{}\"", self.rng.pick(&def.enum_values)),
                        _ => self.rng.pick(&def.enum_values).clone(),
                    },
                    "INPUT_OBJECT" if depth < 6 => {
                        let mut parts = Vec::new();
                        for f in &def.input_fields {
                            let required = matches!(f.ty, TypeRef::NonNull(_));
                            if (required && !self.bad(3)) || self.rng.chance(50) {
                                let v = match self.hint(&f.name) {
                                    Some(h) => to_literal(&h),
                                    None => self.literal(&f.ty, depth + 1),
                                };
                                parts.push(format!("{}: {v}", f.name));
                            }
                        }
                        if self.bad(3) {
                            parts.push("noSuchInput: 1".to_owned());
                        }
                        format!("{{{}}}", parts.join(", "))
                    }
                    "INPUT_OBJECT" => "{}".to_owned(),
                    _ => to_literal(&self.scalar_json(name)),
                }
            }
        }
    }

    fn date(&mut self) -> String {
        match self.rng.below(20) + if self.hostile { 0 } else { 8 } {
            0 => "1899-12-31".into(),
            1 => "2101-01-01".into(),
            2 => "2024-02-30".into(),
            3 => "0000-00-00".into(),
            4 => format!("{:04}-01-01", self.rng.below(10_000)),
            5 => "1900-01-01".into(),
            6 => "2100-12-31".into(),
            7 => "yesterday".into(),
            _ => format!(
                "{}-{:02}-{:02}",
                2021 + self.rng.below(6),
                1 + self.rng.below(12),
                1 + self.rng.below(28)
            ),
        }
    }

    /// A scalar value, sometimes of the wrong type or out of range.
    fn scalar_json(&mut self, name: &str) -> Value {
        if self.bad(6) {
            // The wrong type altogether.
            return self
                .rng
                .pick(&[
                    json!("text"),
                    json!(1.5),
                    json!(true),
                    json!([1]),
                    json!({"a": 1}),
                ])
                .clone();
        }
        match name {
            "Int" if !self.hostile => {
                json!(self.rng.pick(&[0i64, 1, 2, 5, 10, 20, 50, 100, 1990, 2024]))
            }
            "Int" => json!(self.rng.pick(&[
                0i64,
                1,
                2,
                5,
                10,
                20,
                50,
                100,
                101,
                1990,
                2024,
                -1,
                -100,
                100_000,
                100_001,
                2_147_483_647,
                -2_147_483_648,
                2_147_483_648,
                99_999_999_999
            ])),
            "Float" => json!(self.rng.pick(&[0.0, 0.5, -3.0, 1e300, -1e300, 42.0])),
            "Boolean" => json!(self.rng.chance(50)),
            "ID" => {
                if !self.pools.ids.is_empty() && self.rng.chance(70) {
                    json!(self.rng.pick(&self.pools.ids))
                } else {
                    json!(self.rng.pick(&[
                        "",
                        "VGVhbTotMQ",
                        "VGVhbTo5OTk5OTk5OTk5OTk5OTk5OTk5",
                        "!!!",
                        "QWRtaW5Vbml0OjE5",
                        "1"
                    ]))
                }
            }
            "Date" => json!(self.date()),
            "DateTime" => json!(format!("{}T{:02}:00:00Z", self.date(), self.rng.below(30))),
            "JSON" => json!({ "a": [1, "b", null] }),
            _ => {
                // String and any other scalar.
                match self.rng.below(20) {
                    0 if self.hostile => json!("x".repeat(200 + self.rng.below(20_000))),
                    1 => {
                        let n = self.rng.below(40);
                        json!(
                            (0..n)
                                .map(|_| char::from_u32(0x20 + self.rng.below(0x2FFF) as u32)
                                    .unwrap_or('?'))
                                .collect::<String>()
                        )
                    }
                    2 => json!(self.date()),
                    _ => {
                        let s = self.rng.pick(&self.pools.strings).clone();
                        // NUL is refused outright (no text may hold it): hostile requests only.
                        if !self.hostile && s.contains('\0') {
                            json!("ok")
                        } else {
                            json!(s)
                        }
                    }
                }
            }
        }
    }
}

/// A JSON value as a GraphQL literal (strings escaped the JSON way, which GraphQL accepts).
pub fn to_literal(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(to_literal).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("{k}: {}", to_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
