//! A saved operation's document: its name's rule, its one operation, and the checks it passes
//! before it is saved.
use super::service::{Endpoint, Method, NewEndpoint};
use crate::error::{Error, Result};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};

/// The saved document, parsed (it parsed when it was saved).
pub fn parsed(endpoint: &Endpoint) -> Result<ExecutableDocument> {
    async_graphql::parser::parse_query(&endpoint.document)
        .map_err(|e| Error::Internal(format!("saved endpoint {}: {e}", endpoint.name)))
}

/// Checks a name: `[a-z0-9-]{1,64}`.
pub fn check_name(name: &str, field: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("`{name}` is not an endpoint name: 1 to 64 of a-z, 0-9 and -"),
        ))
    }
}

/// The one operation of a saved document.
pub fn operation(
    doc: &ExecutableDocument,
) -> Option<&async_graphql::Positioned<async_graphql::parser::types::OperationDefinition>> {
    match &doc.operations {
        DocumentOperations::Single(op) => Some(op),
        DocumentOperations::Multiple(ops) if ops.len() == 1 => ops.values().next(),
        DocumentOperations::Multiple(_) => None,
    }
}

/// Checks a document against the schema, as a request is admitted (the schema's validation
/// and limits), for saving it: the admission implements it, handed to the resolvers as schema
/// data (so this module needs not know the schema's assembly).
pub trait CheckDocument: Send + Sync {
    fn check<'a>(
        &'a self,
        doc: &'a ExecutableDocument,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = std::result::Result<(), String>> + Send + 'a>,
    >;
}

/// Checks a document: it parses, holds one query or mutation (a query for GET), and passes the
/// schema's validation.
pub async fn check_document(
    new: &NewEndpoint,
    checker: &dyn CheckDocument,
) -> Result<ExecutableDocument> {
    const FIELD: &str = "input.document";
    if new.document.len() > 20_000 {
        return Err(Error::invalid(FIELD, "a document is at most 20,000 bytes"));
    }
    let doc = async_graphql::parser::parse_query(&new.document)
        .map_err(|e| Error::invalid(FIELD, format!("the document does not parse: {e}")))?;
    let Some(op) = operation(&doc) else {
        return Err(Error::invalid(
            FIELD,
            "a document holds exactly one operation (a query or a mutation)",
        ));
    };
    match (op.node.ty, new.method) {
        (OperationType::Subscription, _) => {
            return Err(Error::invalid(
                FIELD,
                "a subscription cannot be served as REST",
            ));
        }
        (OperationType::Mutation, Method::Get) => {
            return Err(Error::invalid(
                "input.method",
                "a mutation is served with POST only: GET must be safe to repeat",
            ));
        }
        _ => {}
    }
    checker.check(&doc).await.map_err(|message| {
        Error::invalid(FIELD, format!("the document is not valid: {message}"))
    })?;
    Ok(doc)
}
