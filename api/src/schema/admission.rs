//! Admission: the schema as the limits and the validation rules see it, run on each request's
//! parsed document before the executing schema runs it.
use super::{Mutation, Query, Subscription};
use crate::error::ErrorCode;
use crate::graphql::limits::{Limits, MAX_DIRECTIVES, RECURSIVE_DEPTH, with_code};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Schema, ServerError, Variables};

/// Admission: parses nothing itself (it is given the document), runs the limits and the
/// validation rules, executes nothing.
#[derive(Clone)]
pub struct Admission(Schema<Query, Mutation, Subscription>);

impl Default for Admission {
    fn default() -> Self {
        Self::new()
    }
}

impl Admission {
    pub fn new() -> Self {
        Self(
            Schema::build(
                Query::default(),
                Mutation::default(),
                Subscription::default(),
            )
            .extension(Limits)
            .limit_recursive_depth(RECURSIVE_DEPTH)
            .limit_directives(MAX_DIRECTIVES)
            .finish(),
        )
    }

    /// Admits the document with these variables and operation name and gives its cost, or
    /// says why not (every error with its `extensions.code`).
    pub async fn check(
        &self,
        doc: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Variables,
    ) -> Result<usize, Vec<ServerError>> {
        let mut request = async_graphql::Request::new("").variables(variables.clone());
        if let Some(op) = operation_name {
            request = request.operation_name(op);
        }
        request.set_parsed_query(doc.clone());
        let response = self.0.execute(request).await;
        if response.errors.is_empty() {
            match response.data {
                async_graphql::Value::Number(n) => Ok(n.as_u64().unwrap_or(0) as usize),
                _ => Ok(0),
            }
        } else {
            // Errors without a code (the operation to run is missing or unknown) are
            // validation errors too.
            Err(response
                .errors
                .into_iter()
                .map(|e| with_code(e, ErrorCode::Validation))
                .collect())
        }
    }
}

impl crate::rest::document::CheckDocument for Admission {
    fn check<'a>(
        &'a self,
        doc: &'a ExecutableDocument,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = std::result::Result<(), String>> + Send + 'a>,
    > {
        Box::pin(async move {
            // Variables come with each call: the document's own rules are what is checked, and
            // an error that only says a declared variable has no value yet is not one.
            let declared: Vec<String> = crate::rest::document::operation(doc)
                .map(|op| {
                    op.node
                        .variable_definitions
                        .iter()
                        .map(|d| d.node.name.node.to_string())
                        .collect()
                })
                .unwrap_or_default();
            let no_value_yet = |message: &str| {
                message.contains("was not provided")
                    || declared
                        .iter()
                        .any(|v| message == format!("Variable {v} is not defined."))
            };
            match Admission::check(self, doc, None, &Variables::default()).await {
                Ok(_) => Ok(()),
                Err(errors) => {
                    let unrelated: Vec<String> = errors
                        .iter()
                        .map(|e| e.message.clone())
                        .filter(|m| !no_value_yet(m))
                        .collect();
                    if unrelated.is_empty() {
                        Ok(())
                    } else {
                        Err(unrelated.join("; "))
                    }
                }
            }
        })
    }
}
