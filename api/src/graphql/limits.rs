//! Limits on what one request may ask for, enforced before anything runs, and the stage each
//! error comes from.
//!
//! The HTTP handler runs the stages one by one and classifies errors by the stage that
//! raised them, never by their message text:
//!
//! | stage | what is checked | code, HTTP status |
//! |---|---|---|
//! | parse (the handler, with `async_graphql::parser::parse_query`) | syntax | `VALIDATION`, 400 |
//! | admission: shape | selected fields with fragments expanded ≤ [`MAX_FIELDS`]; depth of the real fields ≤ [`MAX_DEPTH`]; introspection ≤ [`MAX_INTROSPECTION_DEPTH`] levels and ≤ [`MAX_INTROSPECTION_LISTS`] nested lists | `QUERY_TOO_COMPLEX`, 400 |
//! | admission: arguments | every list in an argument or variable ≤ [`MAX_LIST_ITEMS`] items, every string ≤ [`MAX_STRING_CHARS`] characters and without NUL, `search` ≤ [`MAX_SEARCH_CHARS`] | `VALIDATION` naming the argument, 400 |
//! | admission: validation | the GraphQL validation rules, the operation to run | `VALIDATION`, 400 |
//! | admission: cost | cost ≤ [`MAX_COMPLEXITY`] (each field 1; connections × page size; lists without paging × [`list_complexity`]; `indicators` × units × periods × codes; every alias and every use of a fragment counts) | `QUERY_TOO_COMPLEX`, 400 |
//! | execution | resolvers: their own code; see `http::graphql::classify` | 200 with `data` (400 when nothing could run) |
//!
//! Admission is a second instance of the schema, [`Admission`], that carries the `Limits`
//! extension and never executes anything: the extension's `execute` hook answers without
//! running a resolver. The schema that does execute has no extension (async-graphql then
//! resolves fields on its fast path) and skips the validation rules admission already ran.
//!
//! The depth limit leaves out the introspection fields (`__schema`, `__type`): the standard
//! introspection query that GraphiQL and client generators send nests `ofType` nine levels
//! deep. Introspection is bounded on its own instead, the way graphql-js's
//! `MaxIntrospectionDepthRule` does: by the nesting of the fields that return lists.
use crate::error::ErrorCode;
use async_graphql::Value as ConstValue;
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Response, ServerError, ServerResult, ValidationResult, Variables};
use async_graphql_value::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Most nested levels of real (not introspection) fields a query may have.
pub const MAX_DEPTH: usize = 12;
/// Largest cost a query may have.
pub const MAX_COMPLEXITY: usize = 20_000;
/// Most fields a query may select, counting every alias and every use of a fragment.
pub const MAX_FIELDS: usize = 2_000;
/// Most nested levels inside `__schema` or `__type`.
pub const MAX_INTROSPECTION_DEPTH: usize = 24;
/// Most nested list fields (`types`, `fields`, `args`, …) inside `__schema` or `__type`.
pub const MAX_INTROSPECTION_LISTS: usize = 3;
/// Most items of any list given as an argument or inside an input.
pub const MAX_LIST_ITEMS: usize = 500;
/// Longest string given as an argument or inside an input.
pub const MAX_STRING_CHARS: usize = 10_000;
/// Longest `search` argument.
pub const MAX_SEARCH_CHARS: usize = 200;
/// Deepest nesting of selection sets and values async-graphql accepts.
pub const RECURSIVE_DEPTH: usize = 32;
/// Most directives on one field.
pub const MAX_DIRECTIVES: usize = 8;

/// Items a list field without paging is priced at (its real length is known only once it is
/// read): the most children a unit has (a province has up to ~170 communes since 2025).
pub const CHILDREN_ESTIMATE: usize = 100;
/// Members a team's `members` list is priced at (the demo data has 5 to 6 a team).
pub const MEMBERS_ESTIMATE: usize = 20;
/// Outcomes an activity's `outcomes` list is priced at (an activity has at most 20).
pub const OUTCOMES_ESTIMATE: usize = 20;

/// Cost of a list field without paging: its subfields once per item it may hold, so that
/// nesting lists in lists (a unit's children's parent's children, a team's members' team's
/// members) is priced as what it can return.
pub fn list_complexity(items: usize, child_complexity: usize) -> usize {
    items.saturating_mul(child_complexity).saturating_add(1)
}

/// Introspection fields that return lists.
const INTROSPECTION_LISTS: &[&str] = &[
    "types",
    "fields",
    "args",
    "inputFields",
    "interfaces",
    "possibleTypes",
    "enumValues",
    "directives",
];

/// Whether an error already carries an `extensions.code`.
pub fn has_code(e: &ServerError) -> bool {
    e.extensions
        .as_ref()
        .is_some_and(|x| x.get("code").is_some())
}

/// Sets `extensions.code` unless the error has one.
pub fn with_code(mut e: ServerError, code: ErrorCode) -> ServerError {
    if !has_code(&e) {
        e.extensions
            .get_or_insert_with(Default::default)
            .set("code", code.as_str());
    }
    e
}

fn refused(code: ErrorCode, message: String) -> ServerError {
    with_code(ServerError::new(message, None), code)
}

/// The extension of the [`Admission`] schema: enforces the limits, codes every error, and
/// stops before execution.
pub struct Limits;

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LimitsExtension::default())
    }
}

/// One per request (the factory makes one for each): it carries the cost from validation to
/// the answer of `execute`.
#[derive(Default)]
struct LimitsExtension {
    cost: std::sync::atomic::AtomicUsize,
}

#[async_graphql::async_trait::async_trait]
impl Extension for LimitsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        // The document comes parsed; what fails here is async-graphql's own bounds on it
        // (nesting of values, directives per field).
        let doc = next
            .run(ctx, query, variables)
            .await
            .map_err(|e| with_code(e, ErrorCode::QueryTooComplex))?;
        check_shape(&doc)?;
        check_arguments(&doc, variables)?;
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| with_code(e, ErrorCode::Validation))
                .collect::<Vec<_>>()
        })?;
        self.cost
            .store(result.complexity, std::sync::atomic::Ordering::Relaxed);
        if result.complexity > MAX_COMPLEXITY {
            return Err(vec![refused(
                ErrorCode::QueryTooComplex,
                format!(
                    "the query costs {} points; at most {MAX_COMPLEXITY}: every field costs 1, a \
                     connection field its page size times its subfields, `indicators` units × \
                     periods × codes times its subfields (at least {}), and every alias counts",
                    result.complexity,
                    crate::indicators::resolvers::BASE_COST
                ),
            )]);
        }
        Ok(result)
    }

    async fn execute(
        &self,
        _ctx: &ExtensionContext<'_>,
        _operation_name: Option<&str>,
        _next: NextExecute<'_>,
    ) -> Response {
        // Admitted: the executing schema runs it. The answer is the cost.
        let cost = self.cost.load(std::sync::atomic::Ordering::Relaxed);
        Response::new(async_graphql::Value::from(cost as u64))
    }
}

/// What a selection set measures, fragments expanded.
#[derive(Copy, Clone, Default, Debug, PartialEq, Eq)]
struct Measure {
    /// Fields selected, every alias and fragment use counted.
    fields: usize,
    /// Nested levels of fields (real fields outside introspection; all fields inside).
    depth: usize,
    /// Inside introspection: nested list fields.
    lists: usize,
}

impl Measure {
    fn merge(&mut self, other: Measure) {
        self.fields = self.fields.saturating_add(other.fields);
        self.depth = self.depth.max(other.depth);
        self.lists = self.lists.max(other.lists);
    }
}

/// Measures a document without types: fragments are expanded through a memo (so a fragment
/// used a thousand times is measured once and a cycle ends the walk; validation reports it).
struct Shape<'a> {
    doc: &'a ExecutableDocument,
    memo: HashMap<(&'a str, bool), Option<Measure>>,
    /// Deepest introspection subtree and its list nesting.
    introspection: Measure,
}

impl<'a> Shape<'a> {
    fn selection_set(&mut self, set: &'a SelectionSet, introspection: bool) -> Measure {
        let mut m = Measure::default();
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    let name = f.node.name.node.as_str();
                    let sub = &f.node.selection_set.node;
                    if !introspection && name.starts_with("__") {
                        // `__schema` and `__type` are measured on their own; `__typename`
                        // is a leaf.
                        let mut inner = self.selection_set(sub, true);
                        inner.depth += 1;
                        self.introspection.depth = self.introspection.depth.max(inner.depth);
                        self.introspection.lists = self.introspection.lists.max(inner.lists);
                        m.fields = m.fields.saturating_add(inner.fields.saturating_add(1));
                        continue;
                    }
                    let mut inner = self.selection_set(sub, introspection);
                    inner.fields = inner.fields.saturating_add(1);
                    inner.depth += 1;
                    if introspection && INTROSPECTION_LISTS.contains(&name) {
                        inner.lists += 1;
                    }
                    m.merge(inner);
                }
                Selection::InlineFragment(f) => {
                    let inner = self.selection_set(&f.node.selection_set.node, introspection);
                    m.merge(inner);
                }
                Selection::FragmentSpread(s) => {
                    let name = s.node.fragment_name.node.as_str();
                    let key = (name, introspection);
                    let inner = match self.memo.get(&key) {
                        Some(Some(done)) => *done,
                        // A cycle: validation refuses it.
                        Some(None) => Measure::default(),
                        None => match self.doc.fragments.get(&Name::new(name)) {
                            Some(def) => {
                                self.memo.insert(key, None);
                                let done =
                                    self.selection_set(&def.node.selection_set.node, introspection);
                                self.memo.insert(key, Some(done));
                                done
                            }
                            None => Measure::default(),
                        },
                    };
                    m.merge(inner);
                }
            }
        }
        m
    }
}

/// Refuses documents that select too many fields or nest too deep, before validation.
fn check_shape(doc: &ExecutableDocument) -> ServerResult<()> {
    let mut shape = Shape {
        doc,
        memo: HashMap::new(),
        introspection: Measure::default(),
    };
    let mut total = Measure::default();
    for (_, op) in doc.operations.iter() {
        let m = shape.selection_set(&op.node.selection_set.node, false);
        total.merge(m);
    }
    let too_complex = |message: String| Err(refused(ErrorCode::QueryTooComplex, message));
    if total.fields > MAX_FIELDS {
        return too_complex(format!(
            "the query selects {} fields (every alias and every use of a fragment counted); at \
             most {MAX_FIELDS}",
            total.fields
        ));
    }
    if total.depth > MAX_DEPTH {
        return too_complex(format!(
            "the query is nested {} levels deep; at most {MAX_DEPTH} (introspection fields aside)",
            total.depth
        ));
    }
    if shape.introspection.depth > MAX_INTROSPECTION_DEPTH {
        return too_complex(format!(
            "the introspection query is nested {} levels deep; at most {MAX_INTROSPECTION_DEPTH}",
            shape.introspection.depth
        ));
    }
    if shape.introspection.lists > MAX_INTROSPECTION_LISTS {
        return too_complex(format!(
            "the introspection query nests {} list fields (types, fields, args, …); at most \
             {MAX_INTROSPECTION_LISTS}",
            shape.introspection.lists
        ));
    }
    Ok(())
}

/// A problem with an argument's size, found walking its value.
struct Oversize {
    /// Path inside the argument, e.g. `input.outcomes`: built on the way out of the walk, so
    /// that a value that passes costs no path at all.
    path: String,
    message: String,
}

impl Oversize {
    fn new(message: String) -> Self {
        Self {
            path: String::new(),
            message,
        }
    }

    /// The same problem, one level further out (inside `part`).
    fn under(mut self, part: &str) -> Self {
        self.path = if self.path.is_empty() {
            part.to_owned()
        } else {
            format!("{part}.{}", self.path)
        };
        self
    }
}

fn check_string(s: &str, max: usize) -> Result<(), Oversize> {
    // No database stores a NUL in text (PostgreSQL refuses it), and no input needs one.
    if s.contains('\0') {
        return Err(Oversize::new(
            "contains the NUL character (U+0000), which no text may hold".to_owned(),
        ));
    }
    // Bytes bound characters from above: count only when it could matter.
    if s.len() > max && s.chars().count() > max {
        return Err(Oversize::new(format!(
            "is {} characters long; at most {max}",
            s.chars().count()
        )));
    }
    Ok(())
}

fn check_list(len: usize) -> Result<(), Oversize> {
    if len > MAX_LIST_ITEMS {
        return Err(Oversize::new(format!(
            "has {len} items; at most {MAX_LIST_ITEMS}"
        )));
    }
    Ok(())
}

fn walk_const(v: &ConstValue, max_string: usize) -> Result<(), Oversize> {
    match v {
        ConstValue::String(s) => check_string(s, max_string),
        ConstValue::List(items) => {
            check_list(items.len())?;
            items
                .iter()
                .try_for_each(|i| walk_const(i, MAX_STRING_CHARS))
        }
        ConstValue::Object(fields) => fields
            .iter()
            .try_for_each(|(k, v)| walk_const(v, limit_for(k)).map_err(|o| o.under(k))),
        _ => Ok(()),
    }
}

/// [`walk_const`] over an argument as written, reading its variables where they stand (an
/// undefined one is left to validation).
fn walk_value(v: &Value, variables: &Variables, max_string: usize) -> Result<(), Oversize> {
    match v {
        Value::Variable(name) => variables
            .get(name)
            .map_or(Ok(()), |c| walk_const(c, max_string)),
        Value::String(s) => check_string(s, max_string),
        Value::List(items) => {
            check_list(items.len())?;
            items
                .iter()
                .try_for_each(|i| walk_value(i, variables, MAX_STRING_CHARS))
        }
        Value::Object(fields) => fields
            .iter()
            .try_for_each(|(k, v)| walk_value(v, variables, limit_for(k)).map_err(|o| o.under(k))),
        _ => Ok(()),
    }
}

/// Longest string an argument or input field of this name may hold.
fn limit_for(name: &str) -> usize {
    if name == "search" {
        MAX_SEARCH_CHARS
    } else {
        MAX_STRING_CHARS
    }
}

fn check_set(set: &SelectionSet, variables: &Variables) -> ServerResult<()> {
    for item in &set.items {
        let sub = match &item.node {
            Selection::Field(f) => {
                for (name, value) in &f.node.arguments {
                    let arg = name.node.as_str();
                    walk_value(&value.node, variables, limit_for(arg)).map_err(|o| {
                        let o = o.under(arg);
                        let field = f.node.name.node.as_str();
                        let mut e = ServerError::new(
                            format!("`{field}` argument `{}` {}", o.path, o.message),
                            Some(value.pos),
                        );
                        e.extensions.get_or_insert_with(Default::default).set(
                            "field",
                            o.path.split('.').map(str::to_owned).collect::<Vec<_>>(),
                        );
                        with_code(e, ErrorCode::Validation)
                    })?;
                }
                &f.node.selection_set.node
            }
            Selection::InlineFragment(f) => &f.node.selection_set.node,
            Selection::FragmentSpread(_) => continue,
        };
        check_set(sub, variables)?;
    }
    Ok(())
}

/// Refuses oversized lists and strings in arguments and variables, before validation and
/// before any SQL: each is named in the error.
fn check_arguments(doc: &ExecutableDocument, variables: &Variables) -> ServerResult<()> {
    // Arguments first (with their variables substituted), so the error names the argument;
    // then every variable, used or not.
    for (_, op) in doc.operations.iter() {
        check_set(&op.node.selection_set.node, variables)?;
    }
    for def in doc.fragments.values() {
        check_set(&def.node.selection_set.node, variables)?;
    }
    for (name, value) in variables.iter() {
        walk_const(value, MAX_STRING_CHARS).map_err(|o| {
            let o = o.under(&format!("${name}"));
            refused(
                ErrorCode::Validation,
                format!("variable `{}` {}", o.path, o.message),
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use async_graphql::parser::parse_query;

    fn measure(q: &str) -> (Measure, Measure) {
        let doc = parse_query(q).unwrap();
        let mut shape = Shape {
            doc: &doc,
            memo: HashMap::new(),
            introspection: Measure::default(),
        };
        let mut total = Measure::default();
        for (_, op) in doc.operations.iter() {
            let m = shape.selection_set(&op.node.selection_set.node, false);
            total.merge(m);
        }
        (total, shape.introspection)
    }

    #[test]
    fn depth_leaves_introspection_out_and_fragments_count_each_use() {
        let (m, i) = measure(
            "{ a { b { c } } __schema { types { fields { type { ofType { ofType { name } } } } } } }",
        );
        assert_eq!(m.depth, 3);
        assert_eq!(i.depth, 7);
        assert_eq!(i.lists, 2);
        let (m, _) = measure("fragment F on T { x y } { a { ...F } b: a { ...F } }");
        assert_eq!(m.fields, 6);
        assert_eq!(m.depth, 2);
        // A cycle does not loop.
        let (m, _) =
            measure("fragment A on T { x ...B } fragment B on T { y ...A } { a { ...A } }");
        assert!(m.fields >= 3);
    }

    #[test]
    fn a_fragment_bomb_is_measured_in_linear_time() {
        let mut q = String::from("fragment F0 on T { x }\n");
        for i in 1..70 {
            q.push_str(&format!(
                "fragment F{i} on T {{ ...F{p} ...F{p} }}\n",
                p = i - 1
            ));
        }
        q.push_str("{ t { ...F69 } }");
        let (m, _) = measure(&q);
        assert_eq!(m.fields, usize::MAX);
    }
}
