//! A GET endpoint's variables from its query string, each coerced by its declared GraphQL type:
//! numbers and booleans parsed, a list from one parameter per item, an input object from JSON,
//! anything else (strings, ids, dates, enums) as given; the schema's own checks follow.
use crate::error::{Error, Result};
use async_graphql::Positioned;
use async_graphql::parser::types::{BaseType, Type, VariableDefinition};
use async_graphql::registry::MetaType;
use serde_json::{Map, Value};

/// The variables of `definitions` from `pairs` (name, value; a name repeated for a list).
pub fn from_query(
    definitions: &[Positioned<VariableDefinition>],
    pairs: &[(String, String)],
) -> Result<Map<String, Value>> {
    let known: Vec<String> = definitions
        .iter()
        .map(|d| d.node.name.node.to_string())
        .collect();
    if let Some((name, _)) = pairs.iter().find(|(n, _)| !known.contains(n)) {
        return Err(Error::invalid(
            name,
            format!(
                "`{name}` is not a parameter of this endpoint; it takes {}",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ),
        ));
    }
    let mut out = Map::new();
    for d in definitions {
        let name = d.node.name.node.as_str();
        let ty = &d.node.var_type.node;
        let given: Vec<&str> = pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        if given.is_empty() {
            if !ty.nullable && d.node.default_value.is_none() {
                return Err(Error::invalid(name, format!("`{name}` is required ({ty})")));
            }
            continue;
        }
        out.insert(name.to_owned(), coerce(name, ty, &given)?);
    }
    Ok(out)
}

fn coerce(name: &str, ty: &Type, given: &[&str]) -> Result<Value> {
    match &ty.base {
        BaseType::List(item) => given
            .iter()
            .map(|v| coerce(name, item, &[v]))
            .collect::<Result<Vec<_>>>()
            .map(Value::Array),
        BaseType::Named(named) => {
            let [value] = given else {
                return Err(Error::invalid(
                    name,
                    format!("`{name}` takes one value ({ty}), not {}", given.len()),
                ));
            };
            scalar(name, named, value)
        }
    }
}

fn scalar(name: &str, ty: &str, value: &str) -> Result<Value> {
    let bad = |what: &str| Error::invalid(name, format!("`{name}` must be {what}, not `{value}`"));
    Ok(match ty {
        "Int" => value
            .parse::<i32>()
            .map(Value::from)
            .map_err(|_| bad("a whole number (32 bits)"))?,
        "Float" => value
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Value::from)
            .ok_or_else(|| bad("a number"))?,
        "Boolean" => match value {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(bad("true or false")),
        },
        _ if matches!(
            super::openapi::REGISTRY.types.get(ty),
            Some(MetaType::InputObject { .. })
        ) =>
        {
            serde_json::from_str(value).map_err(|_| bad(&format!("a JSON object ({ty})")))?
        }
        _ => Value::from(value),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definitions(doc: &str) -> Vec<Positioned<VariableDefinition>> {
        let doc = async_graphql::parser::parse_query(doc).unwrap_or_else(|e| panic!("{e}"));
        crate::rest::document::operation(&doc)
            .map(|op| op.node.variable_definitions.clone())
            .unwrap_or_default()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn values_are_coerced_by_their_declared_types() {
        let defs = definitions(
            "query($n: Int!, $f: Float, $b: Boolean, $codes: [String!]!, $on: Date, $opt: String = \"x\") { me { subject } }",
        );
        let got = from_query(
            &defs,
            &pairs(&[
                ("n", "3"),
                ("f", "1.5"),
                ("b", "true"),
                ("codes", "A"),
                ("codes", "B"),
                ("on", "2025-01-01"),
            ]),
        )
        .unwrap_or_default();
        assert_eq!(
            Value::Object(got),
            serde_json::json!({ "n": 3, "f": 1.5, "b": true, "codes": ["A", "B"], "on": "2025-01-01" })
        );
        for bad in [
            vec![("n", "x"), ("codes", "A")],
            vec![("n", "1"), ("n", "2"), ("codes", "A")],
            vec![("codes", "A")],
            vec![("n", "1"), ("codes", "A"), ("b", "yes")],
            vec![("n", "1"), ("codes", "A"), ("other", "1")],
            vec![("n", "99999999999"), ("codes", "A")],
        ] {
            assert!(from_query(&defs, &pairs(&bad)).is_err(), "{bad:?}");
        }
    }
}
