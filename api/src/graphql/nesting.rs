//! How deeply a request nests, measured on its raw text before any parser sees it.
//!
//! async-graphql's parser recurses once per nested list, object value and selection set, and
//! bounds only selection sets: a list nested a few thousand deep (`{a(b:[[[[…]]]])}`, 12 KB)
//! overflows a worker's stack and takes the process down. serde_json stops at 128 levels, but
//! with a message that names no bound of ours. So every GraphQL document and every JSON text a
//! caller sends is scanned here first, in one pass that stops at the first bracket over
//! [`MAX_NESTING`]; what nests deeper is refused without parsing the rest.
//!
//! The scan counts every bracket that opens a level (`{`, `[`, `(`) outside strings and
//! comments, so its count is never below the nesting the parser would meet.

/// Deepest nesting of brackets a GraphQL document or a JSON text may have: selection sets,
/// argument lists, list and object values all count. The deepest query admission lets run
/// (12 levels of fields, 24 of introspection) nests far less.
pub const MAX_NESTING: usize = 32;

/// A text nested deeper than [`MAX_NESTING`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooDeep {
    /// Byte offset of the bracket that went past the bound.
    pub at: usize,
}

impl TooDeep {
    /// The message a caller gets, naming the bound; `what` names the text ("the query",
    /// "the JSON body").
    pub fn message(&self, what: &str) -> String {
        format!(
            "{what} nests deeper than {MAX_NESTING} levels (brackets, braces and parentheses, \
             at byte {}); nothing of it was run",
            self.at
        )
    }
}

/// Checks a GraphQL document: strings (`"…"` with escapes, block strings `"""…"""`) and
/// comments (`#` to the end of the line) are skipped.
pub fn check_document(text: &str) -> Result<(), TooDeep> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    // `\"""` is an escaped delimiter inside a block string.
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(TooDeep { at: i });
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Checks a JSON text: strings (with escapes) are skipped.
pub fn check_json(bytes: &[u8]) -> Result<(), TooDeep> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(TooDeep { at: i });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, close: &str, n: usize) -> String {
        format!("{}1{}", open.repeat(n), close.repeat(n))
    }

    #[test]
    fn documents_at_the_bound_pass_and_one_deeper_do_not() {
        // `{a(b: …)}` opens two levels before the value.
        let ok = format!("{{a(b:{})}}", nested("[", "]", MAX_NESTING - 2));
        assert_eq!(check_document(&ok), Ok(()));
        let deep = format!("{{a(b:{})}}", nested("[", "]", MAX_NESTING - 1));
        assert!(check_document(&deep).is_err());
        let objects = format!("{{a(b:{})}}", nested("{a:", "}", 5_000));
        // `{a(b:` then `{a:` from byte 5 on: the 31st value is the 33rd level.
        assert_eq!(check_document(&objects), Err(TooDeep { at: 5 + 3 * 30 }));
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let brackets = "[".repeat(1_000);
        for doc in [
            format!("{{a(b: \"{brackets}\")}}"),
            format!("{{a(b: \"\\\"{brackets}\")}}"),
            format!("{{a(b: \"\"\"{brackets} \\\"\"\" {brackets}\"\"\")}}"),
            format!("# {brackets}\n{{a}}"),
        ] {
            assert_eq!(check_document(&doc), Ok(()), "{doc}");
        }
        let json = format!("{{\"query\": \"{brackets}\\\"{brackets}\"}}");
        assert_eq!(check_json(json.as_bytes()), Ok(()));
    }

    #[test]
    fn json_is_bounded_the_same_way() {
        assert_eq!(check_json(nested("[", "]", MAX_NESTING).as_bytes()), Ok(()));
        let deep = format!("{{\"variables\": {}}}", nested("{\"a\":", "}", 5_000));
        assert!(check_json(deep.as_bytes()).is_err());
    }

    #[test]
    fn unterminated_text_ends_the_scan() {
        for doc in ["{a(b: \"[[[", "{a(b: \"\"\"[[[", "#[[[", "\"\\"] {
            assert_eq!(check_document(doc), Ok(()));
            assert_eq!(check_json(doc.as_bytes()), Ok(()));
        }
    }
}
