//! The `Date` scalar: an ISO 8601 calendar date such as 2024-03-31, between 1900-01-01 and
//! 2100-12-31.
use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::NaiveDate;

/// A calendar date, ISO 8601 (`2024-03-31`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(pub NaiveDate);

/// First day a `Date` argument or input may name.
pub const MIN_DATE: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};
/// Last day a `Date` argument or input may name.
pub const MAX_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2100, 12, 31) {
    Some(d) => d,
    None => NaiveDate::MAX,
};

/// A calendar date, ISO 8601 (`2024-03-31`), without a time or time zone, from 1900-01-01 to
/// 2100-12-31.
#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            // `%Y` accepts signs and more digits; a date is exactly YYYY-MM-DD.
            Value::String(s) if s.len() == 10 && s.is_ascii() => {
                let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
                    InputValueError::custom(format!(
                        "`{s}` is not a date: expected YYYY-MM-DD, e.g. 2024-03-31"
                    ))
                })?;
                if !(MIN_DATE..=MAX_DATE).contains(&d) {
                    return Err(InputValueError::custom(format!(
                        "`{s}` is outside the supported range {MIN_DATE} to {MAX_DATE}"
                    )));
                }
                Ok(Date(d))
            }
            Value::String(s) => Err(InputValueError::custom(format!(
                "`{}` is not a date: expected YYYY-MM-DD, e.g. 2024-03-31",
                s.chars().take(40).collect::<String>()
            ))),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

impl From<NaiveDate> for Date {
    fn from(d: NaiveDate) -> Self {
        Self(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_outside_the_range_are_refused_with_the_range_named() {
        let ok = |s: &str| Date::parse(Value::String(s.into())).is_ok();
        assert!(ok("1900-01-01"));
        assert!(ok("2100-12-31"));
        assert!(ok("2024-02-29"));
        for bad in [
            "1899-12-31",
            "2101-01-01",
            "0001-01-01",
            "9999-12-31",
            "+2024-01-01",
            "2024-1-01",
            "2023-02-29",
        ] {
            assert!(!ok(bad), "{bad}");
        }
        let Err(e) = Date::parse(Value::String("2101-01-01".into())) else {
            panic!("accepted")
        };
        assert!(
            e.into_server_error(Default::default())
                .message
                .contains("1900-01-01 to 2100-12-31")
        );
    }
}
