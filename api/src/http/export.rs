//! `GET /exports/indicators.csv`: the `indicators` query as a CSV file, for spreadsheets.
//!
//! The URL parameters are the query's arguments under the same names and defaults (lists
//! comma-separated): `codes`, `unitCodes`, `from`, `to`, `granularity` (MONTH), `breakdown`
//! (SELF), `level`, `mode` (AS_RECORDED). The same bearer token, roles and area apply, and the
//! values are computed by the same service function the GraphQL resolver calls, so a file
//! always equals the API's answer. The body is UTF-8 with a byte order mark (so spreadsheets
//! show Vietnamese names), one row per value; a value the caller may not read has empty
//! numbers and status NO_DATA, as GraphQL answers null with FORBIDDEN.
//!
//! Answers 401 without a valid token, 403 when no role may read indicators or a unit lies
//! outside the caller's area, 400 naming the parameter at fault.
use super::AppState;
use crate::auth::{Action, Principal};
use crate::error::{Error, ErrorCode};
use crate::graphql::scalars::{MAX_DATE, MIN_DATE};
use crate::indicators::periods::Granularity;
use crate::indicators::resolvers::MAX_CODES;
use crate::indicators::service::{self, Breakdown, Computed, MAX_UNITS, Mode, Request, Status};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use cnscd_entity::codes::UnitLevel;
use std::collections::HashMap;

/// The columns of the file, in order.
pub const COLUMNS: [&str; 13] = [
    "indicator",
    "indicator_name_vi",
    "unit_code",
    "unit_name",
    "period",
    "period_start",
    "period_end",
    "value",
    "numerator",
    "denominator",
    "status",
    "target",
    "attainment",
];

const PARAMETERS: [&str; 8] = [
    "codes",
    "unitCodes",
    "from",
    "to",
    "granularity",
    "breakdown",
    "level",
    "mode",
];

/// An error answer: JSON shaped like a GraphQL error, with the parameter at fault.
fn error(status: StatusCode, code: ErrorCode, message: &str, field: Option<&str>) -> Response {
    let mut extensions = serde_json::json!({ "code": code.as_str() });
    if let Some(f) = field {
        extensions["field"] = serde_json::json!([f]);
    }
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": extensions }] });
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

/// A parameter at fault and what is wrong with it (answered 400).
struct Bad {
    field: String,
    message: String,
}

fn bad(field: &str, message: String) -> Bad {
    Bad {
        field: field.to_owned(),
        message,
    }
}

/// A comma-separated list; empty entries are dropped.
fn list(params: &HashMap<String, String>, name: &str) -> Vec<String> {
    params
        .get(name)
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The parameter `name`, absent when missing or empty.
fn get<'a>(params: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    params.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
}

fn date(params: &HashMap<String, String>, name: &str) -> Result<NaiveDate, Bad> {
    let Some(s) = get(params, name) else {
        return Err(bad(
            name,
            format!("missing `{name}`: a date, YYYY-MM-DD, e.g. 2023-01-01"),
        ));
    };
    let d = (s.len() == 10)
        .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| {
            bad(
                name,
                format!("`{name}` ({s}) is not a date: expected YYYY-MM-DD, e.g. 2024-03-31"),
            )
        })?;
    if !(MIN_DATE..=MAX_DATE).contains(&d) {
        return Err(bad(
            name,
            format!("`{name}` ({s}) is outside the supported range {MIN_DATE} to {MAX_DATE}"),
        ));
    }
    Ok(d)
}

/// Reads the parameters into the request the service computes, as the GraphQL resolver does.
fn request(params: &HashMap<String, String>) -> Result<Request, Bad> {
    if let Some(unknown) = params.keys().find(|k| !PARAMETERS.contains(&k.as_str())) {
        return Err(bad(
            unknown,
            format!(
                "unknown parameter `{unknown}`; the parameters are {}",
                PARAMETERS.join(", ")
            ),
        ));
    }
    let codes = list(params, "codes");
    if codes.is_empty() {
        return Err(bad(
            "codes",
            "missing `codes`: indicator codes, comma-separated, e.g. CNS02,CNS05".into(),
        ));
    }
    if codes.len() > MAX_CODES {
        return Err(bad(
            "codes",
            format!("`codes` has {} entries; at most {MAX_CODES}", codes.len()),
        ));
    }
    let unit_codes = list(params, "unitCodes");
    if unit_codes.is_empty() {
        return Err(bad(
            "unitCodes",
            "missing `unitCodes`: unit codes, comma-separated, e.g. 169".into(),
        ));
    }
    if unit_codes.len() > MAX_UNITS {
        return Err(bad(
            "unitCodes",
            format!(
                "`unitCodes` has {} entries; at most {MAX_UNITS}",
                unit_codes.len()
            ),
        ));
    }
    let from = date(params, "from")?;
    let to = date(params, "to")?;
    let granularity = match get(params, "granularity").unwrap_or("MONTH") {
        "MONTH" => Granularity::Month,
        "QUARTER" => Granularity::Quarter,
        "YEAR" => Granularity::Year,
        other => {
            return Err(bad(
                "granularity",
                format!("`granularity` ({other}) must be MONTH, QUARTER or YEAR"),
            ));
        }
    };
    let level = match get(params, "level") {
        None => None,
        Some(l) => Some(UnitLevel::parse(l).ok_or_else(|| {
            bad(
                "level",
                format!("`level` ({l}) must be PROVINCE, DISTRICT, COMMUNE or HAMLET"),
            )
        })?),
    };
    let breakdown = match (get(params, "breakdown").unwrap_or("SELF"), level) {
        ("SELF", _) => Breakdown::Own,
        ("CHILDREN", _) => Breakdown::Children,
        ("LEVEL", Some(l)) => Breakdown::Level(l),
        ("LEVEL", None) => return Err(bad("level", "breakdown LEVEL needs `level`".into())),
        (other, _) => {
            return Err(bad(
                "breakdown",
                format!("`breakdown` ({other}) must be SELF, CHILDREN or LEVEL"),
            ));
        }
    };
    let mode = match get(params, "mode").unwrap_or("AS_RECORDED") {
        "AS_RECORDED" => Mode::AsRecorded,
        "REBASED" => Mode::Rebased,
        other => {
            return Err(bad(
                "mode",
                format!("`mode` ({other}) must be AS_RECORDED or REBASED"),
            ));
        }
    };
    Ok(Request {
        codes,
        unit_codes,
        from,
        to,
        granularity,
        breakdown,
        mode,
    })
}

/// A number cell: empty without a value, and for a value out of the range of floats (never
/// `inf` or `NaN`).
fn number(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite())
        .map(|x| x.to_string())
        .unwrap_or_default()
}

/// A text cell as a spreadsheet shows it: text. A cell that starts like a formula (`=`, `+`,
/// `-`, `@`, a tab or a carriage return) is prefixed with `'` (the OWASP rule against CSV
/// injection); names come from ADMIN input and catalogue imports.
fn text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

fn status(s: Status) -> &'static str {
    match s {
        Status::Ok => "OK",
        Status::NoData => "NO_DATA",
        Status::Partial => "PARTIAL",
        Status::Estimated => "ESTIMATED",
    }
}

/// The file: a BOM, the header and one row per value.
pub fn write_csv(values: &[Computed]) -> Result<Vec<u8>, csv::Error> {
    let mut out = Vec::with_capacity(64 + values.len() * 96);
    out.extend_from_slice("\u{feff}".as_bytes());
    let mut w = csv::Writer::from_writer(out);
    w.write_record(COLUMNS)?;
    for c in values {
        let (value, numerator, denominator, target, attainment) = if c.readable {
            (
                c.value,
                c.numerator,
                c.denominator,
                c.target,
                c.attainment(),
            )
        } else {
            (None, None, None, None, None)
        };
        let start = c.period.start.to_string();
        let end = c.period.end.to_string();
        w.write_record([
            &*text(&c.definition.code),
            &*text(&c.definition.name_vi),
            &*text(&c.unit.code),
            &*text(&c.unit.name),
            &*text(&c.period.label),
            start.as_str(),
            end.as_str(),
            &number(value),
            &number(numerator),
            &number(denominator),
            if c.readable {
                status(c.status)
            } else {
                "NO_DATA"
            },
            &number(target),
            &number(attainment),
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// What an export costs the caller's rate-limit bucket: the `indicators` query with the same
/// arguments selecting every column.
fn cost(req: &Request) -> usize {
    use crate::indicators::resolvers::{BASE_COST, CHILDREN_PER_UNIT, LEVEL_PER_UNIT};
    let per_unit = match req.breakdown {
        service::Breakdown::Own => 1,
        service::Breakdown::Children => CHILDREN_PER_UNIT,
        service::Breakdown::Level(_) => LEVEL_PER_UNIT,
    };
    let periods = crate::indicators::periods::count(req.from, req.to, req.granularity).max(1);
    req.codes
        .len()
        .max(1)
        .saturating_mul(req.unit_codes.len().max(1).saturating_mul(per_unit))
        .saturating_mul(periods)
        .saturating_mul(COLUMNS.len())
        .saturating_add(BASE_COST)
}

/// `GET /exports/indicators.csv`.
pub async fn indicators_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let principal: Principal = match super::graphql::authenticate(&state, &headers).await {
        Ok(p) => p,
        Err(msg) => {
            return error(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthenticated,
                &msg,
                None,
            );
        }
    };
    let span = tracing::Span::current();
    span.record("subject", principal.subject.as_str());
    span.record("roles", principal.roles_label().as_str());
    if !principal.may(Action::ReadIndicators) {
        return error(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            &format!(
                "none of the caller's roles ({}) may read indicators",
                if principal.role_names.is_empty() {
                    "none".to_owned()
                } else {
                    principal.role_names.join(", ")
                }
            ),
            None,
        );
    }
    let req = match request(&params) {
        Ok(r) => r,
        Err(b) => {
            return error(
                StatusCode::BAD_REQUEST,
                ErrorCode::Validation,
                &b.message,
                Some(&b.field),
            );
        }
    };
    let decision = state.limiter.charge(&principal, cost(&req)).await;
    if let Some(refused) = decision.refusal("application/json") {
        return refused;
    }
    let work = async {
        let (values, as_of) =
            service::compute_as_of(&state.db, &state.store, &principal, &req).await?;
        let body = write_csv(&values).map_err(|e| Error::Internal(format!("writing CSV: {e}")))?;
        Ok::<_, Error>((body, as_of))
    };
    let result = match tokio::time::timeout(state.request_timeout, work).await {
        Ok(r) => r,
        Err(_) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Internal,
                &format!(
                    "the export did not finish within {} ms and was stopped; ask for less",
                    state.request_timeout.as_millis()
                ),
                None,
            );
        }
    };
    match result {
        Ok((body, as_of)) => csv_response(body, as_of),
        Err(e) => failure(&e),
    }
}

/// The CSV file, with the time of the data it reflects (`x-data-as-of`, as
/// `extensions.dataAsOf` says it over GraphQL).
fn csv_response(body: Vec<u8>, as_of: chrono::DateTime<chrono::Utc>) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    // Which data the file reflects, as `extensions.dataAsOf` says it over GraphQL.
    if let Ok(v) =
        HeaderValue::from_str(&as_of.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    {
        h.insert("x-data-as-of", v);
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"indicators.csv\""),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The answer to an export that failed: a user error with its code and status, or a fault
/// logged and answered without its cause.
fn failure(e: &Error) -> Response {
    let status = match e.code() {
        ErrorCode::Validation => StatusCode::BAD_REQUEST,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if !e.is_user_error() {
        tracing::error!(error = %e.message(), "export failed");
        return error(
            status,
            ErrorCode::Internal,
            "internal error; it has been logged",
            None,
        );
    }
    let field = match e {
        Error::Validation { field, .. } => field.first().cloned(),
        _ => None,
    };
    error(status, e.code(), &e.message(), field.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::periods::containing;
    use cnscd_entity::{admin_unit, indicator_definition};

    fn value(unit_name: &str, readable: bool) -> Computed {
        let day = NaiveDate::from_ymd_opt(2023, 5, 1).unwrap_or_default();
        Computed {
            definition: std::sync::Arc::new(indicator_definition::Model {
                id: 1,
                code: "EG01".into(),
                version: 1,
                name_vi: "Tỷ lệ hồ sơ trực tuyến".into(),
                name_en: "Online dossiers".into(),
                description: None,
                numerator: "DOSSIERS_ONLINE".into(),
                denominator: Some("DOSSIERS_TOTAL".into()),
                factor: 100.0,
                active: true,
                created_at: chrono::Utc::now(),
                valid_from: day,
            }),
            unit: std::sync::Arc::new(admin_unit::Model {
                id: 1,
                code: "05692".into(),
                name: unit_name.into(),
                name_search: String::new(),
                unit_type: None,
                level: UnitLevel::Commune,
                parent_code: None,
                valid_from: day,
                valid_to: day,
            }),
            period: containing(day, Granularity::Quarter).into(),
            value: Some(73.0),
            numerator: Some(27010.0),
            denominator: Some(37000.0),
            status: Status::Partial,
            as_of: Some(day),
            readable,
            target: readable.then_some(80.0),
        }
    }

    #[test]
    fn text_that_starts_like_a_formula_stays_text_and_numbers_stay_finite() {
        for (name, cell) in [
            (
                "=HYPERLINK(\"http://x\")",
                "\"'=HYPERLINK(\"\"http://x\"\")\"",
            ),
            ("+84", "'+84"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("Xã Đồng Hỷ", "Xã Đồng Hỷ"),
        ] {
            let body = write_csv(&[value(name, true)]).unwrap_or_default();
            let text = String::from_utf8(body).unwrap_or_default();
            let row = text.lines().nth(1).unwrap_or_default().to_owned();
            assert!(row.contains(&format!(",05692,{cell},")), "{name}: {row}");
        }
        assert_eq!(number(Some(f64::INFINITY)), "");
        assert_eq!(number(Some(f64::NAN)), "");
        assert_eq!(number(Some(-2.5)), "-2.5");
    }

    #[test]
    fn names_are_quoted_and_unreadable_values_are_empty() {
        let values = [
            value("Xã \"Đồng Hỷ\", mới", true),
            value("Xã Đồng Hỷ", false),
        ];
        let body = write_csv(&values).unwrap_or_default();
        let text = String::from_utf8(body).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("\u{feff}{}", COLUMNS.join(",")));
        assert_eq!(
            lines[1],
            "EG01,Tỷ lệ hồ sơ trực tuyến,05692,\"Xã \"\"Đồng Hỷ\"\", mới\",2023-Q2,2023-04-01,\
             2023-06-30,73,27010,37000,PARTIAL,80,91.25"
        );
        assert_eq!(
            lines[2],
            "EG01,Tỷ lệ hồ sơ trực tuyến,05692,Xã Đồng Hỷ,2023-Q2,2023-04-01,2023-06-30,,,,\
             NO_DATA,,"
        );
    }
}
