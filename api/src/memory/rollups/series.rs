//! Month series of counts: one element's ([`Series`]) and a unit's by element in one buffer
//! ([`UnitSeries`]), held in two bytes a month where the counts fit.
use chrono::{Datelike, NaiveDate};

/// Months counted from year 0.
pub(super) fn month_number(d: NaiveDate) -> i32 {
    d.year() * 12 + d.month0() as i32
}

/// Values of consecutive months, from `first` on. Every amount a rollup adds is a count
/// (activities, people, households): most months of most units hold a count below 65,536,
/// kept in two bytes; a series takes four (`f32`, exact for a count below 2^24, 16.7 million
/// in one unit and month) once one of its values does not fit. Sums over months are taken in
/// `f64`.
#[derive(Default, Debug, Clone)]
pub struct Series {
    first: i32,
    values: Values,
}

#[derive(Debug, Clone)]
enum Values {
    Small(Vec<u16>),
    Large(Vec<f32>),
}

impl Default for Values {
    fn default() -> Self {
        Self::Small(Vec::new())
    }
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Self::Small(v) => v.len(),
            Self::Large(v) => v.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, i: usize) -> f64 {
        match self {
            Self::Small(v) => f64::from(v[i]),
            Self::Large(v) => f64::from(v[i]),
        }
    }

    fn set(&mut self, i: usize, value: f64) {
        match self {
            Self::Small(v)
                if value.fract() == 0.0 && (0.0..=f64::from(u16::MAX)).contains(&value) =>
            {
                v[i] = value as u16;
            }
            Self::Small(v) => {
                let mut wide: Vec<f32> = v.iter().map(|x| f32::from(*x)).collect();
                wide[i] = value as f32;
                *self = Self::Large(wide);
            }
            Self::Large(v) => v[i] = value as f32,
        }
    }

    /// Makes room for `before` months before the first and up to `len` months in all.
    fn grow(&mut self, before: usize, len: usize) {
        match self {
            Self::Small(v) => {
                v.splice(0..0, std::iter::repeat_n(0, before));
                v.resize(len.max(v.len()), 0);
            }
            Self::Large(v) => {
                v.splice(0..0, std::iter::repeat_n(0.0, before));
                v.resize(len.max(v.len()), 0.0);
            }
        }
    }

    fn sum(&self, from: usize, to: usize) -> f64 {
        match self {
            Self::Small(v) => v
                .get(from..to.min(v.len()))
                .map_or(0.0, |v| v.iter().map(|x| f64::from(*x)).sum()),
            Self::Large(v) => v
                .get(from..to.min(v.len()))
                .map_or(0.0, |v| v.iter().map(|x| f64::from(*x)).sum()),
        }
    }
}

impl Series {
    pub(super) fn add(&mut self, month: i32, value: f64) {
        if self.values.is_empty() {
            self.first = month;
        } else if month < self.first {
            let shift = (self.first - month) as usize;
            self.values.grow(shift, 0);
            self.first = month;
        }
        let i = (month - self.first) as usize;
        if i >= self.values.len() {
            self.values.grow(0, i + 1);
        }
        self.values.set(i, self.values.get(i) + value);
    }

    /// The sum over months `first..=last`.
    pub(super) fn sum(&self, first: i32, last: i32) -> f64 {
        let from = (first - self.first).max(0) as usize;
        let to = (last - self.first + 1).max(0) as usize;
        self.values.sum(from, to)
    }
}

#[cfg(test)]
mod series_tests {
    use super::{Series, UnitSeries};
    use std::collections::BTreeMap;

    /// A unit's series in one buffer answer as one [`Series`] per element would, through
    /// months added before, between and after, values past two bytes, and negative amounts.
    #[test]
    fn a_units_series_in_one_buffer_equal_a_series_per_element() {
        let mut packed = UnitSeries::default();
        let mut plain: BTreeMap<u16, Series> = BTreeMap::new();
        let mut state: u64 = 7;
        let mut next = |n: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        };
        for step in 0..5_000 {
            let element = next(6) as u16;
            let month = 24_000 + next(40) as i32;
            // Elements 0-2 outgrow two bytes (or go negative) now and then; 3-5 never do.
            let value = match next(20) {
                0 if element < 3 => 70_000.0,
                1 if element < 3 => -1.0,
                _ => next(50) as f64,
            };
            packed.add(element, month, value);
            plain.entry(element).or_default().add(month, value);
            if step % 97 == 0 {
                for e in 0..6u16 {
                    let (a, b) = (24_000 + next(45) as i32 - 3, 24_000 + next(45) as i32);
                    let want = plain.get(&e).map_or(0.0, |s| s.sum(a, b));
                    assert_eq!(packed.sum(e, a, b), want, "element {e}, months {a}..={b}");
                }
            }
        }
        assert!(packed.entries.iter().any(|e| e.wide()));
        assert!(packed.entries.iter().any(|e| !e.wide()));
    }

    #[test]
    fn a_series_holds_small_counts_narrow_and_widens_for_larger_values() {
        let mut s = Series::default();
        s.add(100, 3.0);
        s.add(98, 2.0);
        s.add(103, 1.0);
        assert_eq!(
            (s.sum(98, 103), s.sum(99, 100), s.sum(0, 97)),
            (6.0, 3.0, 0.0)
        );
        assert!(matches!(s.values, super::Values::Small(_)));
        // A count past two bytes, then a voided one: the series widens and keeps every month.
        s.add(99, 70_000.0);
        s.add(100, -1.0);
        assert!(matches!(s.values, super::Values::Large(_)));
        assert_eq!(
            (s.sum(98, 103), s.sum(99, 99), s.sum(100, 100)),
            (70_005.0, 70_000.0, 2.0)
        );
    }
}

/// A unit's month series, by element: the counts of all of them in one buffer of two-byte
/// values (and one of `f32` for the series a value outgrew, as [`Series`] does), with a
/// 12-byte entry per element. A nation holds about 300,000 series over 11,000 units: one
/// allocation per series and a [`Series`] each would take more than the counts do.
#[derive(Default, Debug)]
pub(super) struct UnitSeries {
    /// Sorted by element.
    entries: Vec<Entry>,
    small: Vec<u16>,
    large: Vec<f32>,
}

/// One element's series in a [`UnitSeries`]: its first month, its length, and where its
/// values start (in `large` when the [`WIDE`] bit is set, else in `small`).
#[derive(Clone, Copy, Debug)]
struct Entry {
    element: u16,
    len: u16,
    first: i32,
    at: u32,
}

const WIDE: u32 = 1 << 31;

impl Entry {
    fn wide(&self) -> bool {
        self.at & WIDE != 0
    }

    fn offset(&self) -> usize {
        (self.at & !WIDE) as usize
    }
}

impl UnitSeries {
    /// The sum of `element` over months `first..=last`.
    pub(super) fn sum(&self, element: u16, first: i32, last: i32) -> f64 {
        let Ok(i) = self.entries.binary_search_by_key(&element, |e| e.element) else {
            return 0.0;
        };
        let e = self.entries[i];
        let from = (first - e.first).max(0) as usize;
        let to = ((last - e.first + 1).max(0) as usize).min(usize::from(e.len));
        if from >= to {
            return 0.0;
        }
        let (a, b) = (e.offset() + from, e.offset() + to);
        if e.wide() {
            self.large[a..b].iter().map(|x| f64::from(*x)).sum()
        } else {
            self.small[a..b].iter().map(|x| f64::from(*x)).sum()
        }
    }

    pub(super) fn add(&mut self, element: u16, month: i32, value: f64) {
        let i = match self.entries.binary_search_by_key(&element, |e| e.element) {
            Ok(i) => i,
            Err(i) => {
                let at = self.small.len() as u32;
                self.entries.insert(
                    i,
                    Entry {
                        element,
                        len: 0,
                        first: month,
                        at,
                    },
                );
                i
            }
        };
        let e = self.entries[i];
        if month < e.first {
            self.grow(i, (e.first - month) as usize, true);
        } else if month - e.first >= i32::from(e.len) {
            self.grow(
                i,
                (month - e.first) as usize + 1 - usize::from(e.len),
                false,
            );
        }
        let e = self.entries[i];
        let k = e.offset() + (month - e.first) as usize;
        if e.wide() {
            self.large[k] = (f64::from(self.large[k]) + value) as f32;
            return;
        }
        let sum = f64::from(self.small[k]) + value;
        if sum.fract() == 0.0 && (0.0..=f64::from(u16::MAX)).contains(&sum) {
            self.small[k] = sum as u16;
        } else {
            let k = self.widen(i) + (month - e.first) as usize;
            self.large[k] = sum as f32;
        }
    }

    /// Adds `count` zero months to series `i`, before its first month or after its last,
    /// moving the series stored after it.
    fn grow(&mut self, i: usize, count: usize, before: bool) {
        let e = self.entries[i];
        let at = e.offset() + if before { 0 } else { usize::from(e.len) };
        if e.wide() {
            self.large.splice(at..at, std::iter::repeat_n(0.0, count));
        } else {
            self.small.splice(at..at, std::iter::repeat_n(0, count));
        }
        for (j, other) in self.entries.iter_mut().enumerate() {
            if j != i && other.wide() == e.wide() && other.offset() >= at {
                other.at += count as u32;
            }
        }
        let e = &mut self.entries[i];
        e.len += count as u16;
        if before {
            e.first -= count as i32;
        }
    }

    /// Moves series `i` to the `f32` values; returns where it starts there.
    fn widen(&mut self, i: usize) -> usize {
        let e = self.entries[i];
        let (a, n) = (e.offset(), usize::from(e.len));
        let at = self.large.len();
        self.large.extend(self.small.drain(a..a + n).map(f32::from));
        for other in &mut self.entries {
            if !other.wide() && other.offset() > a {
                other.at -= n as u32;
            }
        }
        self.entries[i].at = at as u32 | WIDE;
        at
    }

    pub(super) fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
        self.small.shrink_to_fit();
        self.large.shrink_to_fit();
    }
}
