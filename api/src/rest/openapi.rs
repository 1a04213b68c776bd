//! The OpenAPI 3.1 document of the saved endpoints: a path per endpoint (`/api/rest/{name}`),
//! its parameters (GET) or request body (POST) from the operation's variables, its answer
//! from the operation's selection, each typed and described from the GraphQL schema, and
//! bearer security. Errors are RFC 9457 problem documents.
use super::document::{operation, parsed};
use super::service::{Endpoint, Method};
use async_graphql::parser::types::{
    BaseType, ExecutableDocument, Selection, SelectionSet, Type, VariableDefinition,
};
use async_graphql::registry::{MetaType, Registry};
use async_graphql::{OutputType, Positioned};
use serde_json::{Map, Value, json};
use std::sync::LazyLock;

/// The schema's types, for typing variables and answers.
pub static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let mut registry = Registry::default();
    <crate::schema::Query as OutputType>::create_type_info(&mut registry);
    <crate::schema::Mutation as OutputType>::create_type_info(&mut registry);
    registry
});

/// The HTTP statuses an endpoint may answer with a problem document, and why.
const PROBLEMS: [(&str, &str); 8] = [
    (
        "400",
        "The request cannot be run: a variable is missing or malformed, or a limit is exceeded.",
    ),
    ("401", "No valid bearer token."),
    ("403", "The caller's roles or area do not allow this."),
    (
        "404",
        "No such endpoint, or no such object in the caller's area.",
    ),
    ("409", "The change clashes with the current state."),
    (
        "429",
        "The caller's rate limit is spent; retry after `Retry-After` seconds.",
    ),
    (
        "500",
        "A fault of the service (logged, with the request id).",
    ),
    (
        "503",
        "The database did not answer in time; retry after `Retry-After` seconds.",
    ),
];

/// The document for `endpoints`.
pub fn document(endpoints: &[Endpoint]) -> Value {
    let mut paths = Map::new();
    for e in endpoints {
        let Ok(doc) = parsed(e) else { continue };
        let method = match e.method() {
            Method::Get => "get",
            Method::Post => "post",
        };
        paths.insert(
            super::service::path(&e.name),
            json!({ method: endpoint_operation(e, &doc) }),
        );
    }
    let mut responses = Map::new();
    for (status, why) in PROBLEMS {
        responses.insert(
            status.to_owned(),
            json!({ "description": why, "content": { "application/problem+json": {
                "schema": { "$ref": "#/components/schemas/Problem" } } } }),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "cnscd REST endpoints",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Saved GraphQL operations of cnscd (community digital technology teams) served as REST: the same token, area and limits as /graphql.",
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } },
            "schemas": { "Problem": problem_schema() },
            "responses": responses,
        },
    })
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "An RFC 9457 problem document.",
        "properties": {
            "type": { "type": "string" },
            "title": { "type": "string" },
            "status": { "type": "integer" },
            "detail": { "type": "string" },
            "code": { "type": "string", "description": "The service's error code, e.g. FORBIDDEN." },
            "errors": { "type": "array", "items": { "type": "object" },
                "description": "Every GraphQL error of the answer." },
        },
        "required": ["title", "status"],
    })
}

fn endpoint_operation(e: &Endpoint, doc: &ExecutableDocument) -> Value {
    let Some(op) = operation(doc) else {
        return json!({});
    };
    let root = match op.node.ty {
        async_graphql::parser::types::OperationType::Mutation => "Mutation",
        _ => "Query",
    };
    let data = selection_schema(root, &op.node.selection_set, doc);
    let mut responses = Map::new();
    responses.insert(
        "200".into(),
        json!({ "description": "The operation's `data`.",
            "content": { "application/json": { "schema": data } } }),
    );
    for (status, _) in PROBLEMS {
        responses.insert(
            status.into(),
            json!({ "$ref": format!("#/components/responses/{status}") }),
        );
    }
    let mut out = json!({
        "operationId": operation_id(&e.name),
        "summary": e.description.clone().unwrap_or_else(|| format!("The saved operation `{}`", e.name)),
        "responses": responses,
    });
    let vars = &op.node.variable_definitions;
    match e.method() {
        Method::Get => {
            let parameters: Vec<Value> = vars.iter().map(parameter).collect();
            out["parameters"] = Value::Array(parameters);
        }
        Method::Post => {
            let mut properties = Map::new();
            let mut required = Vec::new();
            for v in vars {
                properties.insert(
                    v.node.name.node.to_string(),
                    input_schema(&v.node.var_type.node),
                );
                if !v.node.var_type.node.nullable && v.node.default_value.is_none() {
                    required.push(Value::from(v.node.name.node.to_string()));
                }
            }
            out["requestBody"] = json!({
                "required": !required.is_empty(),
                "content": { "application/json": { "schema": {
                    "type": "object", "properties": properties, "required": required,
                    "additionalProperties": false,
                } } },
            });
        }
    }
    out
}

/// `list-teams` → `listTeams`.
fn operation_id(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.chars() {
        if c == '-' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn parameter(v: &Positioned<VariableDefinition>) -> Value {
    let ty = &v.node.var_type.node;
    let list = matches!(ty.base, BaseType::List(_));
    json!({
        "name": v.node.name.node.to_string(),
        "in": "query",
        "required": !ty.nullable && v.node.default_value.is_none(),
        "schema": input_schema(ty),
        "style": "form",
        "explode": list,
        "description": format!("The variable `${}: {}`{}.", v.node.name.node, ty,
            if list { " (one parameter per item)" } else { "" }),
    })
}

/// A JSON schema for a GraphQL input type.
pub fn input_schema(ty: &Type) -> Value {
    let inner = match &ty.base {
        BaseType::Named(name) => named_input(name),
        BaseType::List(item) => json!({ "type": "array", "items": input_schema(item) }),
    };
    nullable(inner, ty.nullable)
}

fn named_input(name: &str) -> Value {
    match REGISTRY.types.get(name) {
        Some(MetaType::InputObject {
            description,
            input_fields,
            ..
        }) => {
            let mut properties = Map::new();
            let mut required = Vec::new();
            for (field, value) in input_fields {
                let parsed = Type::new(&value.ty);
                let mut schema = parsed.as_ref().map_or_else(|| json!({}), input_schema);
                if let (Some(d), Some(o)) = (&value.description, schema.as_object_mut()) {
                    o.insert("description".into(), Value::from(d.clone()));
                }
                properties.insert(field.clone(), schema);
                if !value.ty.ends_with('!') || value.default_value.is_some() {
                    continue;
                }
                required.push(Value::from(field.clone()));
            }
            let mut out =
                json!({ "type": "object", "properties": properties, "required": required });
            describe(&mut out, description);
            out
        }
        _ => leaf(name),
    }
}

/// A scalar's or enum's schema.
fn leaf(name: &str) -> Value {
    match name {
        "Int" => json!({ "type": "integer", "format": "int32" }),
        "Float" => json!({ "type": "number" }),
        "Boolean" => json!({ "type": "boolean" }),
        "String" | "ID" => json!({ "type": "string" }),
        "Date" => json!({ "type": "string", "format": "date" }),
        "DateTime" => json!({ "type": "string", "format": "date-time" }),
        "JSON" => json!({}),
        _ => match REGISTRY.types.get(name) {
            Some(MetaType::Enum {
                enum_values,
                description,
                ..
            }) => {
                let values: Vec<Value> =
                    enum_values.keys().map(|k| Value::from(k.clone())).collect();
                let mut out = json!({ "type": "string", "enum": values });
                describe(&mut out, description);
                out
            }
            Some(MetaType::Scalar { description, .. }) => {
                let mut out = json!({ "type": "string" });
                describe(&mut out, description);
                out
            }
            _ => json!({}),
        },
    }
}

fn describe(schema: &mut Value, description: &Option<String>) {
    if let (Some(d), Some(o)) = (description, schema.as_object_mut()) {
        o.insert("description".into(), Value::from(d.clone()));
    }
}

/// `{type: X}` or, for a nullable type, `{type: [X, "null"]}` (OpenAPI 3.1's JSON Schema).
fn nullable(mut schema: Value, is_nullable: bool) -> Value {
    if !is_nullable {
        return schema;
    }
    match schema.get("type").cloned() {
        Some(Value::String(t)) => {
            schema["type"] = json!([t, "null"]);
            if let Some(values) = schema.get_mut("enum").and_then(Value::as_array_mut) {
                values.push(Value::Null);
            }
            schema
        }
        Some(_) => schema,
        None if schema.as_object().is_some_and(|o| o.is_empty()) => schema,
        None => json!({ "anyOf": [schema, { "type": "null" }] }),
    }
}

/// The schema of what a selection answers on a value of type `parent`.
fn selection_schema(
    parent: &str,
    set: &Positioned<SelectionSet>,
    doc: &ExecutableDocument,
) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    collect(parent, set, doc, &mut properties, &mut required);
    json!({ "type": "object", "properties": properties, "required": required })
}

fn collect(
    parent: &str,
    set: &Positioned<SelectionSet>,
    doc: &ExecutableDocument,
    properties: &mut Map<String, Value>,
    required: &mut Vec<Value>,
) {
    let fields = match REGISTRY.types.get(parent) {
        Some(MetaType::Object { fields, .. } | MetaType::Interface { fields, .. }) => Some(fields),
        _ => None,
    };
    for selection in &set.node.items {
        match &selection.node {
            Selection::Field(f) => {
                let name = f.node.name.node.as_str();
                let key = f.node.response_key().node.to_string();
                if name == "__typename" {
                    properties.insert(key.clone(), json!({ "type": "string" }));
                    required.push(Value::from(key));
                    continue;
                }
                let Some(meta) = fields.and_then(|fs| fs.get(name)) else {
                    properties.insert(key, json!({}));
                    continue;
                };
                let Some(ty) = Type::new(&meta.ty) else {
                    continue;
                };
                let mut schema = output_schema(&ty, &f.node.selection_set, doc);
                if let (Some(d), Some(o)) = (&meta.description, schema.as_object_mut()) {
                    o.insert("description".into(), Value::from(d.clone()));
                }
                properties.insert(key.clone(), schema);
                // Every selected key is present (null where it failed or is withheld).
                required.push(Value::from(key));
            }
            Selection::InlineFragment(fragment) => {
                let on = fragment
                    .node
                    .type_condition
                    .as_ref()
                    .map(|c| c.node.on.node.to_string())
                    .unwrap_or_else(|| parent.to_owned());
                collect(&on, &fragment.node.selection_set, doc, properties, required);
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = doc.fragments.get(&spread.node.fragment_name.node) {
                    let on = fragment.node.type_condition.node.on.node.to_string();
                    collect(&on, &fragment.node.selection_set, doc, properties, required);
                }
            }
        }
    }
}

/// A field's answer: a leaf, an object of its selection, or a list of them; null allowed for
/// every nullable type (a field error answers null).
fn output_schema(ty: &Type, set: &Positioned<SelectionSet>, doc: &ExecutableDocument) -> Value {
    let inner = match &ty.base {
        BaseType::List(item) => json!({ "type": "array", "items": output_schema(item, set, doc) }),
        BaseType::Named(name) => match REGISTRY.types.get(name.as_str()) {
            Some(MetaType::Object { .. } | MetaType::Interface { .. } | MetaType::Union { .. }) => {
                selection_schema(name, set, doc)
            }
            _ => leaf(name),
        },
    };
    // A non-null field can still be null in an answer with errors, which is a problem document
    // instead: a 200 answer keeps the schema's nullability.
    nullable(inner, ty.nullable)
}
