//! Text normalisation: Vietnamese names stored in NFC, search keys without diacritics.
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// A free-text input of at most `max` characters, or a validation error on `field`.
pub fn at_most(field: &str, value: Option<&str>, max: usize) -> crate::error::Result<()> {
    match value {
        Some(v) if v.chars().count() > max => Err(crate::error::Error::invalid(
            field,
            format!("at most {max} characters"),
        )),
        _ => Ok(()),
    }
}

/// Trims and puts text into Unicode NFC, collapsing runs of white space. Text that already is
/// (most of it: what keyboards type is composed) is copied as it is.
pub fn clean(s: &str) -> String {
    let spaced = !s.starts_with(char::is_whitespace)
        && !s.ends_with(char::is_whitespace)
        && !s.contains("  ")
        && !s.chars().any(|c| c.is_whitespace() && c != ' ');
    if spaced {
        nfc(s)
    } else {
        nfc(&s.split_whitespace().collect::<Vec<_>>().join(" "))
    }
}

/// Puts text into Unicode NFC, keeping its line breaks.
pub fn nfc(s: &str) -> String {
    match unicode_normalization::is_nfc_quick(s.chars()) {
        unicode_normalization::IsNormalized::Yes => s.to_owned(),
        _ => s.nfc().collect(),
    }
}

/// A search key: lower case, without diacritics (đ becomes d), single spaces.
pub fn fold(s: &str) -> String {
    clean(s)
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .map(|c| match c {
            'đ' | 'Đ' => 'd',
            c => c,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// A LIKE pattern matching `needle` anywhere, with LIKE wildcards in it escaped by `\`.
pub fn like_pattern(needle: &str) -> String {
    let mut out = String::from("%");
    for c in fold(needle).chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_removes_vietnamese_diacritics() {
        assert_eq!(fold("Trần Thị Lệ"), "tran thi le");
        assert_eq!(fold("Xã Đồng Hỷ"), "xa dong hy");
        assert_eq!(fold("  Xóm   Cà Phê "), "xom ca phe");
    }

    #[test]
    fn clean_is_the_long_way_round_for_every_kind_of_text() {
        let long_way = |s: &str| -> String {
            s.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .nfc()
                .collect()
        };
        for s in [
            "Hướng dẫn kích hoạt VNeID mức 2",
            "  Xóm   Cà Phê ",
            "Tra\u{0300}n  Thi\u{0323}",
            "a\tb\nc\u{00a0}d",
            "",
            " ",
            "Ấp 3\u{2003}xã",
            "plain ascii",
        ] {
            assert_eq!(clean(s), long_way(s), "{s:?}");
            assert_eq!(nfc(s), s.nfc().collect::<String>(), "{s:?}");
        }
    }

    #[test]
    fn clean_composes_to_nfc() {
        let decomposed = "Tra\u{0300}n";
        assert_eq!(clean(decomposed), "Tr\u{00e0}n");
    }

    #[test]
    fn like_pattern_escapes_wildcards() {
        assert_eq!(like_pattern("50%_a"), "%50\\%\\_a%");
    }
}
