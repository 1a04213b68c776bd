//! Plain selections answered in one step, straight from rows.
//!
//! async-graphql resolves an object field by field: a future, a context and a map entry per
//! field of every item. For a page of a hundred teams with their members that is about a third
//! of the request's CPU (by profile). When a selection is *plain* — no directives, fragments
//! only on the type itself, no response key used twice, and only fields the type's table
//! names — the answer is built from the rows in one pass instead.
//!
//! A type's [`Columns`] table is the one place a field of this path is written: its name in the
//! schema and how its value is rendered from a row. Planning looks a selected field up in the
//! table and rendering calls what planning found. Fields that hold more than a value of the
//! row (a nested list, a sub-object) are planned and rendered by the type's owner (`nested`).
//! Anything else — another field, an argument, a directive — sends the whole selection to the
//! normal resolution, which gives the same answer and the same errors. A column is a value of a
//! row, so a field whose answer depends on the caller (a guard, personal data) is never one:
//! `tables_match_the_schema` checks each table against the schema's registry, and the tests
//! (`one_step_columns_answer_as_the_normal_resolution_does`) ask every column both ways as every
//! role.
use crate::paging::cursor;
use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::{ContextSelectionSet, Name, Positioned, Value};

/// How a field's value is rendered from a row of `R`.
pub type Render<R> = fn(&R) -> Value;

/// The fields of an object type the one-step path answers from a row of `R` alone.
pub struct Columns<R: 'static> {
    /// The type's name in the schema.
    pub type_name: &'static str,
    /// Each field's name in the schema and how its value is rendered.
    pub fields: &'static [(&'static str, Render<R>)],
}

/// A type without nested fields.
pub enum Leaf {}

/// A field of a plan: `__typename`, a column, or a field its type's owner plans.
pub enum Planned<R: 'static, N> {
    Typename,
    Column(Render<R>),
    Nested(N),
}

/// The plan of a plain selection on a type: its fields by response key, in the query's order.
pub struct Plan<R: 'static, N>(Vec<(Name, Planned<R, N>)>);

impl<R> Columns<R> {
    /// How the column `name` is rendered, if it is one.
    pub fn column(&self, name: &str) -> Option<Render<R>> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, render)| *render)
    }

    /// The names of the columns.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.fields.iter().map(|(name, _)| *name)
    }

    /// The plan of `set` on this type, if it is plain: columns and `__typename` without
    /// arguments, every other field as `nested` plans it (`None`: not plain).
    pub fn plan<'a, N>(
        &self,
        ctx: &ContextSelectionSet<'a>,
        set: &'a SelectionSet,
        nested: impl Fn(&'a Positioned<Field>) -> Option<N>,
    ) -> Option<Plan<R, N>> {
        let field = |f: &'a Positioned<Field>| {
            let name = f.node.name.node.as_str();
            if name == "__typename" {
                no_arguments(f)?;
                return Some(Planned::Typename);
            }
            if let Some(render) = self.column(name) {
                no_arguments(f)?;
                return Some(Planned::Column(render));
            }
            nested(f).map(Planned::Nested)
        };
        let mut fields = Vec::new();
        plain_fields(ctx, set, self.type_name, &field, &mut fields)?;
        Some(Plan(fields))
    }

    /// The object `plan` asks of `row`; `nested` renders the nested fields.
    pub fn render<N>(&self, row: &R, plan: &Plan<R, N>, nested: impl Fn(&N) -> Value) -> Value {
        let mut object = IndexMap::with_capacity(plan.0.len());
        for (key, field) in &plan.0 {
            let value = match field {
                Planned::Typename => Value::String(self.type_name.to_owned()),
                Planned::Column(render) => render(row),
                Planned::Nested(n) => nested(n),
            };
            object.insert(key.clone(), value);
        }
        Value::Object(object)
    }

    /// The plan of `set` on this type if it asks for columns alone.
    pub fn plan_leaves<'a>(
        &self,
        ctx: &ContextSelectionSet<'a>,
        set: &'a SelectionSet,
    ) -> Option<Plan<R, Leaf>> {
        self.plan(ctx, set, |_| None)
    }

    /// The object a plan of columns alone asks of `row`.
    pub fn render_leaves(&self, row: &R, plan: &Plan<R, Leaf>) -> Value {
        self.render(row, plan, |never| match *never {})
    }
}

/// Where a page sits in its list: what its `pageInfo`, `totalCount` and cursors are made of.
#[derive(Clone, Copy, Debug)]
pub struct PageAt {
    /// Items before the page.
    pub offset: u64,
    /// Items on the page.
    pub len: usize,
    /// Items in the list.
    pub total: u64,
}

/// `PageInfo`, from where the page sits.
pub const PAGE_INFO: Columns<PageAt> = Columns {
    type_name: "PageInfo",
    fields: &[
        ("hasPreviousPage", |p| Value::Boolean(p.offset > 0)),
        ("hasNextPage", |p| {
            Value::Boolean(p.offset + (p.len as u64) < p.total)
        }),
        ("startCursor", |p| match p.len {
            0 => Value::Null,
            _ => Value::String(cursor(p.offset)),
        }),
        ("endCursor", |p| match p.len {
            0 => Value::Null,
            n => Value::String(cursor(p.offset + n as u64 - 1)),
        }),
    ],
};

/// The connection's own columns (`…Connection`), from where the page sits.
pub const CONNECTION_COLUMNS: &[(&str, Render<PageAt>)] =
    &[("totalCount", |p| Value::from(p.total))];

/// An edge's own columns (`…Edge`), from its item's place in the list.
pub const EDGE_COLUMNS: &[(&str, Render<u64>)] = &[("cursor", |at| Value::String(cursor(*at)))];

/// The nested fields of a connection: `pageInfo`, `edges` (whose `node` is planned like
/// `nodes`'s items), `nodes`.
pub enum ConnectionField<P> {
    PageInfo(Plan<PageAt, Leaf>),
    Edges(Plan<u64, P>),
    Nodes(P),
}

/// The plan of a plain selection on a connection of items planned as `P`.
pub struct ConnectionPlan<P> {
    connection: Columns<PageAt>,
    edge: Columns<u64>,
    plan: Plan<PageAt, ConnectionField<P>>,
}

/// The tables of a connection (`connection`, `edge`: its type names in the schema).
fn connection_tables(
    connection: &'static str,
    edge: &'static str,
) -> (Columns<PageAt>, Columns<u64>) {
    (
        Columns {
            type_name: connection,
            fields: CONNECTION_COLUMNS,
        },
        Columns {
            type_name: edge,
            fields: EDGE_COLUMNS,
        },
    )
}

/// The plan of the selection `ctx` holds on a connection (type names `connection` and
/// `edge`), its items' selections planned by `item`; `None` when it is not plain.
pub fn plan_connection<'a, P>(
    ctx: &ContextSelectionSet<'a>,
    connection: &'static str,
    edge: &'static str,
    item: impl Fn(&'a SelectionSet) -> Option<P>,
) -> Option<ConnectionPlan<P>> {
    let (connection, edge) = connection_tables(connection, edge);
    let edge_field = |f: &'a Positioned<Field>| {
        no_arguments(f)?;
        match f.node.name.node.as_str() {
            "node" => item(&f.node.selection_set.node),
            _ => None,
        }
    };
    let page_field = |f: &'a Positioned<Field>| {
        no_arguments(f)?;
        let set = &f.node.selection_set.node;
        Some(match f.node.name.node.as_str() {
            "pageInfo" => ConnectionField::PageInfo(PAGE_INFO.plan_leaves(ctx, set)?),
            "edges" => ConnectionField::Edges(edge.plan(ctx, set, edge_field)?),
            "nodes" => ConnectionField::Nodes(item(set)?),
            _ => return None,
        })
    };
    let plan = connection.plan(ctx, &ctx.item.node, page_field)?;
    Some(ConnectionPlan {
        connection,
        edge,
        plan,
    })
}

/// The connection `plan` asks of a page of `rows` placed `at`; `item` renders an item.
pub fn render_connection<R, P>(
    plan: &ConnectionPlan<P>,
    rows: &[R],
    at: PageAt,
    item: impl Fn(&R, &P) -> Value,
) -> Value {
    plan.connection
        .render(&at, &plan.plan, |field| match field {
            ConnectionField::PageInfo(info) => PAGE_INFO.render_leaves(&at, info),
            ConnectionField::Edges(edge) => Value::List(
                rows.iter()
                    .enumerate()
                    .map(|(i, row)| {
                        plan.edge
                            .render(&(at.offset + i as u64), edge, |node| item(row, node))
                    })
                    .collect(),
            ),
            ConnectionField::Nodes(node) => {
                Value::List(rows.iter().map(|r| item(r, node)).collect())
            }
        })
}

/// The fields of `set` (fragments on `type_name` flattened), by response key in order; `None`
/// when the set is not plain: a directive anywhere, a fragment on another type (or an
/// interface), a response key used twice, or a field `field` does not take.
fn plain_fields<'a, T>(
    ctx: &ContextSelectionSet<'a>,
    set: &'a SelectionSet,
    type_name: &str,
    field: &impl Fn(&'a Positioned<Field>) -> Option<T>,
    out: &mut Vec<(Name, T)>,
) -> Option<()> {
    for selection in &set.items {
        match &selection.node {
            Selection::Field(f) => {
                if !f.node.directives.is_empty() {
                    return None;
                }
                let key = f.node.response_key().node.clone();
                if out.iter().any(|(k, _)| *k == key) {
                    return None;
                }
                out.push((key, field(f)?));
            }
            Selection::FragmentSpread(spread) => {
                if !spread.node.directives.is_empty() {
                    return None;
                }
                let fragment = ctx
                    .query_env
                    .fragments
                    .get(&spread.node.fragment_name.node)?;
                if !fragment.node.directives.is_empty()
                    || fragment.node.type_condition.node.on.node.as_str() != type_name
                {
                    return None;
                }
                plain_fields(
                    ctx,
                    &fragment.node.selection_set.node,
                    type_name,
                    field,
                    out,
                )?;
            }
            Selection::InlineFragment(inline) => {
                if !inline.node.directives.is_empty()
                    || inline
                        .node
                        .type_condition
                        .as_ref()
                        .is_some_and(|c| c.node.on.node.as_str() != type_name)
                {
                    return None;
                }
                plain_fields(ctx, &inline.node.selection_set.node, type_name, field, out)?;
            }
        }
    }
    Some(())
}

/// `Some(())` when the field has no arguments: a field given arguments it does not take is
/// left to the normal resolution (and its error).
pub fn no_arguments(f: &Positioned<Field>) -> Option<()> {
    f.node.arguments.is_empty().then_some(())
}

/// What is wrong with `columns` as the one-step table of its type in `registry`: a column the
/// type does not have, one that takes arguments or whose value is not a scalar or enum; a
/// nested field the type does not have; a field of the type that is neither a column, nor
/// `nested`, nor declared `normal` (resolved the normal way only: guarded, or computed). Empty
/// when the table matches.
#[cfg(test)]
pub fn check_table<R>(
    registry: &async_graphql::registry::Registry,
    columns: &Columns<R>,
    nested: &[&str],
    normal: &[&str],
) -> Vec<String> {
    use async_graphql::registry::MetaTypeName;
    let name = columns.type_name;
    let Some(fields) = registry.types.get(name).and_then(|t| t.fields()) else {
        return vec![format!("{name} is not an object type of the schema")];
    };
    let mut problems = Vec::new();
    for column in columns.names() {
        let Some(field) = fields.get(column) else {
            problems.push(format!(
                "{name}.{column} is in the table but not in the schema"
            ));
            continue;
        };
        if !field.args.is_empty() {
            problems.push(format!("{name}.{column} takes arguments"));
        }
        let base = MetaTypeName::concrete_typename(&field.ty);
        if !registry.types.get(base).is_some_and(|t| t.is_leaf()) {
            problems.push(format!(
                "{name}.{column} is not a scalar or enum ({})",
                field.ty
            ));
        }
        if normal.contains(&column) {
            problems.push(format!(
                "{name}.{column} is both a column and resolved the normal way"
            ));
        }
    }
    for n in nested {
        if !fields.contains_key(*n) {
            problems.push(format!(
                "{name}.{n} is planned as nested but not in the schema"
            ));
        }
    }
    for field in fields.keys() {
        let known = field == "__typename"
            || columns.column(field).is_some()
            || nested.contains(&field.as_str())
            || normal.contains(&field.as_str());
        if !known {
            problems.push(format!(
                "{name}.{field} is neither in the one-step table nor declared as resolved the \
                 normal way"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_info_of_an_empty_and_a_middle_page() {
        let get = |at: PageAt, name: &str| PAGE_INFO.column(name).map(|r| r(&at));
        let empty = PageAt {
            offset: 0,
            len: 0,
            total: 0,
        };
        assert_eq!(get(empty, "startCursor"), Some(Value::Null));
        assert_eq!(get(empty, "hasNextPage"), Some(Value::Boolean(false)));
        let middle = PageAt {
            offset: 10,
            len: 5,
            total: 30,
        };
        assert_eq!(get(middle, "hasPreviousPage"), Some(Value::Boolean(true)));
        assert_eq!(get(middle, "hasNextPage"), Some(Value::Boolean(true)));
        assert_eq!(get(middle, "endCursor"), Some(Value::String(cursor(14))));
        assert_eq!(get(middle, "nothing"), None);
    }
}
