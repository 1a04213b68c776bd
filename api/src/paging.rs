//! Pages of a list as offset windows, from Relay's arguments: `first`/`after`,
//! `last`/`before`, at most 100. Below GraphQL: services take a [`PageArgs`] and answer a
//! [`Window`] of rows; `graphql::pagination` turns them into connections.
use crate::error::{Error, Result};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

pub const MAX_PAGE: i32 = 100;
pub const DEFAULT_PAGE: i32 = 20;

/// The page arguments of a connection field.
#[derive(Default, Clone, Debug)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

/// The cursor of the item at `offset` of a list.
pub fn cursor(offset: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("o:{offset}"))
}

fn offset_of(field: &str, c: &str) -> Result<u64> {
    URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("o:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| Error::invalid(field, format!("`{c}` is not a cursor of this list")))
}

fn count(field: &str, n: Option<i32>) -> Result<Option<u64>> {
    match n {
        None => Ok(None),
        Some(n) if (0..=MAX_PAGE).contains(&n) => Ok(Some(n as u64)),
        Some(n) => Err(Error::invalid(
            field,
            format!("`{field}` must be between 0 and {MAX_PAGE}, not {n}"),
        )),
    }
}

/// A window of a list: skip `offset`, take `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub offset: u64,
    pub limit: u64,
}

impl PageArgs {
    pub fn new(
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Self {
        Self {
            first,
            after,
            last,
            before,
        }
    }

    /// Turns the arguments into a window over a list of `total` items.
    pub fn window(&self, total: u64) -> Result<Window> {
        let first = count("first", self.first)?;
        let last = count("last", self.last)?;
        if first.is_some() && last.is_some() {
            return Err(Error::invalid("first", "give `first` or `last`, not both"));
        }
        let mut start = match &self.after {
            Some(c) => offset_of("after", c)? + 1,
            None => 0,
        };
        let mut end = match &self.before {
            Some(c) => offset_of("before", c)?.min(total),
            None => total,
        };
        start = start.min(end);
        if let Some(f) = first {
            end = end.min(start + f);
        } else if let Some(l) = last {
            start = start.max(end.saturating_sub(l));
        } else {
            end = end.min(start + DEFAULT_PAGE as u64);
        }
        Ok(Window {
            offset: start,
            limit: end - start,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_relay_arguments() {
        let all = PageArgs::default();
        assert_eq!(
            all.window(50).ok(),
            Some(Window {
                offset: 0,
                limit: 20
            })
        );
        let after = PageArgs::new(Some(10), Some(cursor(4)), None, None);
        assert_eq!(
            after.window(50).ok(),
            Some(Window {
                offset: 5,
                limit: 10
            })
        );
        let last = PageArgs::new(None, None, Some(5), Some(cursor(20)));
        assert_eq!(
            last.window(50).ok(),
            Some(Window {
                offset: 15,
                limit: 5
            })
        );
        let too_many = PageArgs::new(Some(101), None, None, None);
        assert!(too_many.window(50).is_err());
        let bad = PageArgs::new(None, Some("zz".into()), None, None);
        assert!(bad.window(50).is_err());
    }
}
