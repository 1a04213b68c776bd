//! Calendar periods: months, quarters and years.
use chrono::{Datelike, NaiveDate};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Granularity {
    Month,
    Quarter,
    Year,
}

/// One calendar period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub label: String,
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

fn last_of_month(y: i32, m: u32) -> NaiveDate {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    ymd(ny, nm, 1).pred_opt().unwrap_or(NaiveDate::MIN)
}

/// The period of `g` containing `d`.
pub fn containing(d: NaiveDate, g: Granularity) -> Span {
    let y = d.year();
    match g {
        Granularity::Month => Span {
            start: ymd(y, d.month(), 1),
            end: last_of_month(y, d.month()),
            label: format!("{y}-{:02}", d.month()),
        },
        Granularity::Quarter => {
            let q = (d.month() - 1) / 3;
            Span {
                start: ymd(y, q * 3 + 1, 1),
                end: last_of_month(y, q * 3 + 3),
                label: format!("{y}-Q{}", q + 1),
            }
        }
        Granularity::Year => Span {
            start: ymd(y, 1, 1),
            end: ymd(y, 12, 31),
            label: y.to_string(),
        },
    }
}

/// The periods of `g` that overlap `[from, to]`, in order.
pub fn between(from: NaiveDate, to: NaiveDate, g: Granularity) -> Vec<Span> {
    let mut out = Vec::new();
    let mut d = from;
    while d <= to {
        let p = containing(d, g);
        let Some(next) = p.end.succ_opt() else {
            out.push(p);
            break;
        };
        out.push(p);
        d = next;
    }
    out
}

/// How many periods of `g` overlap `[from, to]`, without listing them (0 when `from` is after
/// `to`): what [`between`] would return the length of, in constant time.
pub fn count(from: NaiveDate, to: NaiveDate, g: Granularity) -> usize {
    if from > to {
        return 0;
    }
    let index = |d: NaiveDate| -> i64 {
        let (y, m) = (i64::from(d.year()), i64::from(d.month0()));
        match g {
            Granularity::Month => y * 12 + m,
            Granularity::Quarter => y * 4 + m / 3,
            Granularity::Year => y,
        }
    };
    usize::try_from(index(to) - index(from) + 1).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_agrees_with_between() {
        let days = [
            ymd(1900, 1, 1),
            ymd(2022, 12, 31),
            ymd(2023, 1, 1),
            ymd(2023, 2, 15),
            ymd(2023, 3, 31),
            ymd(2023, 4, 1),
            ymd(2024, 2, 29),
            ymd(2025, 6, 30),
            ymd(2025, 7, 1),
            ymd(2100, 12, 31),
        ];
        for g in [Granularity::Month, Granularity::Quarter, Granularity::Year] {
            for from in days {
                for to in days {
                    assert_eq!(
                        count(from, to, g),
                        between(from, to, g).len(),
                        "{from} {to} {g:?}"
                    );
                }
            }
        }
        assert_eq!(
            count(ymd(1900, 1, 1), ymd(2100, 12, 31), Granularity::Month),
            2412
        );
    }

    #[test]
    fn periods_cover_the_range_with_labels() {
        let q = between(ymd(2023, 2, 15), ymd(2023, 7, 1), Granularity::Quarter);
        let labels: Vec<_> = q.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["2023-Q1", "2023-Q2", "2023-Q3"]);
        assert_eq!(q[0].start, ymd(2023, 1, 1));
        assert_eq!(q[2].end, ymd(2023, 9, 30));
        let m = between(ymd(2024, 1, 1), ymd(2024, 3, 31), Granularity::Month);
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].end, ymd(2024, 2, 29));
        assert_eq!(m[1].label, "2024-02");
        let y = between(ymd(2023, 1, 1), ymd(2025, 12, 31), Granularity::Year);
        assert_eq!(y.len(), 3);
    }
}
