//! Reported figures of Đồng Hỷ: dossiers and e-documents per commune and month or year,
//! household businesses per commune and year, population and households per hamlet and year.
//! Totals are fixed (and match the district's published 2023 results); how they split over
//! units and months is drawn from the generator, so every run gives the same numbers.
use super::plan::{CA_PHE_POSITION, Hamlet, MINH_LAP, ymd};
use super::rng::Rng;
use chrono::NaiveDate;

pub const DVCQG: &str = "DVCQG";
pub const IOFFICE: &str = "VNPT-IOFFICE";
pub const THONG_KE: &str = "THONG-KE";

/// District population and households in 2023.
pub const POPULATION_2023: u64 = 90_000;
pub const HOUSEHOLDS_2023: u64 = 26_000;
/// Xóm Cà Phê, every year.
pub const CA_PHE_POPULATION: u64 = 1_300;
pub const CA_PHE_HOUSEHOLDS: u64 = 326;

/// Which units a period's figures are reported for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Units {
    /// Đồng Hỷ's communes before 2025-07-01.
    Old,
    /// The communes that succeeded them.
    New,
}

/// Dossiers received: (year, first month, last month, units, total, online).
pub const DOSSIERS: &[(i32, u32, u32, Units, u64, u64)] = &[
    (2023, 1, 12, Units::Old, 37_000, 27_010),
    (2024, 1, 12, Units::Old, 39_600, 30_850),
    (2025, 1, 6, Units::Old, 20_400, 16_730),
    (2025, 7, 12, Units::New, 21_800, 18_530),
];

/// A date as (year, month, day).
pub type Ymd = (i32, u32, u32);

/// E-documents exchanged: (period start, period end, units, total).
pub const EDOCS: &[(Ymd, Ymd, Units, u64)] = &[
    ((2023, 1, 1), (2023, 12, 31), Units::Old, 72_450),
    ((2024, 1, 1), (2024, 12, 31), Units::Old, 81_300),
    ((2025, 1, 1), (2025, 6, 30), Units::Old, 43_100),
    ((2025, 7, 1), (2025, 12, 31), Units::New, 47_900),
];

/// Household businesses and those accepting e-payment: (start, end, units, total, e-pay).
pub const BUSINESSES: &[(Ymd, Ymd, Units, u64, u64)] = &[
    ((2023, 1, 1), (2023, 12, 31), Units::Old, 3_140, 2_198),
    ((2024, 1, 1), (2024, 12, 31), Units::Old, 3_260, 2_510),
    ((2025, 7, 1), (2025, 12, 31), Units::New, 3_350, 2_780),
];

/// How busy each month is at the one-stop office (Tết in January or February).
const MONTH_FACTOR: [f64; 12] = [
    0.95, 0.7, 1.05, 1.0, 1.0, 0.95, 1.0, 1.05, 1.1, 1.05, 1.0, 1.15,
];

#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub unit_code: String,
    pub element: &'static str,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub value: f64,
    pub source: &'static str,
}

/// Splits `total` in proportion to `weights` (largest remainder: the parts sum to `total`).
pub fn allocate(total: u64, weights: &[f64]) -> Vec<u64> {
    if weights.is_empty() {
        return Vec::new();
    }
    let clean: Vec<f64> = weights.iter().map(|w| w.max(0.0)).collect();
    let sum: f64 = clean.iter().sum();
    let clean = if sum > 0.0 {
        clean
    } else {
        vec![1.0; weights.len()]
    };
    let sum: f64 = clean.iter().sum();
    let exact: Vec<f64> = clean.iter().map(|w| total as f64 * w / sum).collect();
    let mut out: Vec<u64> = exact.iter().map(|x| x.floor() as u64).collect();
    let assigned: u64 = out.iter().sum();
    let mut order: Vec<usize> = (0..exact.len()).collect();
    order.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor())
            .total_cmp(&(exact[a] - exact[a].floor()))
            .then(a.cmp(&b))
    });
    for &i in order
        .iter()
        .cycle()
        .take(total.saturating_sub(assigned) as usize)
    {
        out[i] += 1;
    }
    out
}

/// Like [`allocate`], but no part exceeds its cap (what is cut goes to parts with room).
pub fn allocate_capped(total: u64, weights: &[f64], caps: &[u64]) -> Vec<u64> {
    let mut out = allocate(total, weights);
    let mut spare = 0;
    for (v, cap) in out.iter_mut().zip(caps) {
        if *v > *cap {
            spare += *v - *cap;
            *v = *cap;
        }
    }
    while spare > 0 {
        let before = spare;
        for (v, cap) in out.iter_mut().zip(caps) {
            if spare > 0 && *v < *cap {
                *v += 1;
                spare -= 1;
            }
        }
        if spare == before {
            break;
        }
    }
    out
}

fn date(d: Ymd) -> NaiveDate {
    ymd(d.0, d.1, d.2)
}

fn month_end(y: i32, m: u32) -> NaiveDate {
    let next = if m == 12 {
        ymd(y + 1, 1, 1)
    } else {
        ymd(y, m + 1, 1)
    };
    next.pred_opt().unwrap_or(next)
}

/// Đồng Hỷ's communes before and after the reorganisation, with their weights.
pub struct Areas<'a> {
    /// Old communes, in catalogue order.
    pub old: &'a [String],
    /// New communes and the old communes each took over.
    pub new: &'a [(String, Vec<String>)],
}

/// Every reported figure of the demo data set.
pub fn figures(hamlets: &[Hamlet], areas: &Areas<'_>, seed: u64) -> Vec<Figure> {
    let base = Rng::new(seed);
    let mut out = Vec::new();
    let commune_pop = people(hamlets, areas, &mut base.fork(1), &mut out);
    let weight_of = |units: Units| -> Vec<(String, f64)> {
        match units {
            Units::Old => areas
                .old
                .iter()
                .map(|c| (c.clone(), commune_pop(c.as_str())))
                .collect(),
            Units::New => areas
                .new
                .iter()
                .map(|(c, olds)| {
                    (
                        c.clone(),
                        olds.iter().map(|o| commune_pop(o.as_str())).sum(),
                    )
                })
                .collect(),
        }
    };
    dossiers(&weight_of, &mut base.fork(2), &mut out);
    edocs(&weight_of, &mut base.fork(3), &mut out);
    businesses(&weight_of, &mut base.fork(4), &mut out);
    out
}

/// The communes of a catalogue with their weights.
type Weights<'w> = dyn Fn(Units) -> Vec<(String, f64)> + 'w;

/// Monthly dossiers (total and online) per commune, from the public service portal.
fn dossiers(weight_of: &Weights<'_>, rng: &mut Rng, out: &mut Vec<Figure>) {
    for &(year, first, last, units, total, online) in DOSSIERS {
        let communes = weight_of(units);
        let rates: Vec<f64> = communes.iter().map(|_| rng.between(0.62, 0.84)).collect();
        let mut cells = Vec::new();
        let mut weights = Vec::new();
        for (ci, (code, w)) in communes.iter().enumerate() {
            for m in first..=last {
                cells.push((ci, code.clone(), m));
                weights.push(w * MONTH_FACTOR[(m - 1) as usize] * rng.between(0.85, 1.15));
            }
        }
        let totals = allocate(total, &weights);
        let span = f64::from((last - first).max(1));
        let online_weights: Vec<f64> = cells
            .iter()
            .zip(&totals)
            .map(|((ci, _, m), t)| {
                *t as f64 * rates[*ci] * (0.94 + 0.12 * f64::from(m - first) / span)
            })
            .collect();
        let onlines = allocate_capped(online, &online_weights, &totals);
        for (((_, code, m), t), o) in cells.iter().zip(&totals).zip(&onlines) {
            for (element, v) in [("DOSSIERS_TOTAL", *t), ("DOSSIERS_ONLINE", *o)] {
                out.push(Figure {
                    unit_code: code.clone(),
                    element,
                    period_start: ymd(year, *m, 1),
                    period_end: month_end(year, *m),
                    value: v as f64,
                    source: DVCQG,
                });
            }
        }
    }
}

/// Electronic documents exchanged per commune and period.
fn edocs(weight_of: &Weights<'_>, rng: &mut Rng, out: &mut Vec<Figure>) {
    for &(start, end, units, total) in EDOCS {
        let communes = weight_of(units);
        let weights: Vec<f64> = communes
            .iter()
            .map(|(_, w)| w * rng.between(0.8, 1.2))
            .collect();
        for ((code, _), v) in communes.iter().zip(allocate(total, &weights)) {
            out.push(Figure {
                unit_code: code.clone(),
                element: "EDOCS_EXCHANGED",
                period_start: date(start),
                period_end: date(end),
                value: v as f64,
                source: IOFFICE,
            });
        }
    }
}

/// Household businesses, and those taking electronic payment, per commune and period.
fn businesses(weight_of: &Weights<'_>, rng: &mut Rng, out: &mut Vec<Figure>) {
    for &(start, end, units, total, epay) in BUSINESSES {
        let communes = weight_of(units);
        let weights: Vec<f64> = communes
            .iter()
            .map(|(_, w)| w * rng.between(0.7, 1.3))
            .collect();
        let totals = allocate(total, &weights);
        let epay_weights: Vec<f64> = totals
            .iter()
            .map(|t| *t as f64 * rng.between(0.55, 0.85))
            .collect();
        let epays = allocate_capped(epay, &epay_weights, &totals);
        for (((code, _), t), e) in communes.iter().zip(&totals).zip(&epays) {
            for (element, v) in [("HH_BUSINESSES", *t), ("HH_BUSINESSES_EPAY", *e)] {
                out.push(Figure {
                    unit_code: code.clone(),
                    element,
                    period_start: date(start),
                    period_end: date(end),
                    value: v as f64,
                    source: THONG_KE,
                });
            }
        }
    }
}

/// Population, households and adults per hamlet for 2023–2025 (pushed onto `out`); returns
/// each old commune's 2023 population, the weight everything else is split by.
fn people(
    hamlets: &[Hamlet],
    areas: &Areas<'_>,
    rng: &mut Rng,
    out: &mut Vec<Figure>,
) -> impl Fn(&str) -> f64 + use<> {
    let ca_phe = format!("{MINH_LAP}-{CA_PHE_POSITION:02}");
    let is_ca_phe: Vec<bool> = hamlets.iter().map(|h| h.code == ca_phe).collect();
    let has_ca_phe = is_ca_phe.iter().any(|b| *b);
    let (fixed_pop, fixed_hh) = if has_ca_phe {
        (CA_PHE_POPULATION, CA_PHE_HOUSEHOLDS)
    } else {
        (0, 0)
    };
    let weights: Vec<f64> = hamlets
        .iter()
        .zip(&is_ca_phe)
        .map(|(h, ca)| {
            let town = if h.unit_type == "Tổ dân phố" {
                1.25
            } else {
                1.0
            };
            if *ca {
                0.0
            } else {
                rng.between(0.6, 1.4) * town
            }
        })
        .collect();
    let mut pop: Vec<f64> = allocate(POPULATION_2023 - fixed_pop, &weights)
        .into_iter()
        .map(|v| v as f64)
        .collect();
    let hh_weights: Vec<f64> = pop.iter().map(|p| p * rng.between(0.88, 1.12)).collect();
    let mut hh: Vec<f64> = allocate(HOUSEHOLDS_2023 - fixed_hh, &hh_weights)
        .into_iter()
        .map(|v| v as f64)
        .collect();
    let adult_share: Vec<f64> = hamlets.iter().map(|_| rng.between(0.70, 0.76)).collect();
    for (i, ca) in is_ca_phe.iter().enumerate() {
        if *ca {
            pop[i] = CA_PHE_POPULATION as f64;
            hh[i] = CA_PHE_HOUSEHOLDS as f64;
            // `adult_share` stays as drawn: it only shapes the adults figure.
        }
    }
    let mut commune_pop: Vec<(String, f64)> = areas.old.iter().map(|c| (c.clone(), 0.0)).collect();
    for (h, p) in hamlets.iter().zip(&pop) {
        if let Some(c) = commune_pop.iter_mut().find(|(c, _)| *c == h.commune) {
            c.1 += p;
        }
    }
    for year in 2023..=2025 {
        for (i, h) in hamlets.iter().enumerate() {
            if year > 2023 && !is_ca_phe[i] {
                pop[i] = (pop[i] * rng.between(1.003, 1.012)).round();
                hh[i] = (hh[i] * rng.between(1.008, 1.02)).round();
            }
            let adults = (pop[i] * adult_share[i]).round();
            for (element, v) in [
                ("POPULATION", pop[i]),
                ("HOUSEHOLDS", hh[i]),
                ("ADULTS", adults),
            ] {
                out.push(Figure {
                    unit_code: h.code.clone(),
                    element,
                    period_start: ymd(year, 1, 1),
                    period_end: ymd(year, 12, 31),
                    value: v,
                    source: THONG_KE,
                });
            }
        }
    }
    move |code: &str| {
        commune_pop
            .iter()
            .find(|(c, _)| c == code)
            .map_or(0.0, |(_, p)| *p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::plan::{hamlets as make_hamlets, tests_support::dong_hy};

    #[test]
    fn allocation_sums_exactly() {
        assert_eq!(allocate(10, &[1.0, 1.0, 1.0]), vec![4, 3, 3]);
        assert_eq!(allocate(7, &[0.0, 0.0]).iter().sum::<u64>(), 7);
        assert_eq!(allocate(100, &[0.0, 2.5, 1.5]), vec![0, 63, 37]);
        let capped = allocate_capped(10, &[9.0, 1.0], &[5, 10]);
        assert_eq!(capped, vec![5, 5]);
        assert!(allocate(5, &[]).is_empty());
    }

    fn sum(figs: &[Figure], element: &str, year: i32) -> f64 {
        figs.iter()
            .filter(|f| f.element == element && f.period_start >= ymd(year, 1, 1))
            .filter(|f| f.period_end <= ymd(year, 12, 31))
            .map(|f| f.value)
            .sum()
    }

    #[test]
    fn totals_match_the_published_results() {
        let communes = dong_hy();
        let hamlets = make_hamlets(&communes, &mut Rng::new(1));
        let old: Vec<String> = communes.iter().map(|c| c.code.clone()).collect();
        let new = vec![
            (
                "05662".to_owned(),
                vec!["05662".to_owned(), "05698".to_owned()],
            ),
            (
                "05692".to_owned(),
                vec![
                    "05656".into(),
                    "05677".into(),
                    "05683".into(),
                    "05692".into(),
                ],
            ),
        ];
        let figs = figures(
            &hamlets,
            &Areas {
                old: &old,
                new: &new,
            },
            9,
        );
        assert_eq!(sum(&figs, "DOSSIERS_TOTAL", 2023), 37_000.0);
        assert_eq!(sum(&figs, "DOSSIERS_ONLINE", 2023), 27_010.0);
        assert_eq!(sum(&figs, "EDOCS_EXCHANGED", 2023), 72_450.0);
        assert_eq!(sum(&figs, "POPULATION", 2023), 90_000.0);
        assert_eq!(sum(&figs, "HOUSEHOLDS", 2023), 26_000.0);
        let epay = sum(&figs, "HH_BUSINESSES_EPAY", 2023) / sum(&figs, "HH_BUSINESSES", 2023);
        assert!((epay - 0.70).abs() < 0.001, "{epay}");
        for year in [2023, 2024] {
            let ca_phe: Vec<f64> = figs
                .iter()
                .filter(|f| f.unit_code == "05677-07" && f.period_start == ymd(year, 1, 1))
                .filter(|f| f.element == "POPULATION" || f.element == "HOUSEHOLDS")
                .map(|f| f.value)
                .collect();
            assert_eq!(ca_phe, vec![1_300.0, 326.0]);
        }
        for f in figs.iter().filter(|f| f.element == "DOSSIERS_ONLINE") {
            let total = figs
                .iter()
                .find(|t| {
                    t.element == "DOSSIERS_TOTAL"
                        && t.unit_code == f.unit_code
                        && t.period_start == f.period_start
                })
                .map_or(0.0, |t| t.value);
            assert!(f.value <= total);
        }
        let after: Vec<&Figure> = figs
            .iter()
            .filter(|f| f.element == "DOSSIERS_TOTAL" && f.period_start >= ymd(2025, 7, 1))
            .collect();
        assert!(
            after
                .iter()
                .all(|f| f.unit_code == "05662" || f.unit_code == "05692")
        );
        assert_eq!(after.len(), 12);
        assert_eq!(
            figs,
            figures(
                &hamlets,
                &Areas {
                    old: &old,
                    new: &new
                },
                9
            )
        );
    }
}
