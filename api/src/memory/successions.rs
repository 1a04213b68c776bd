//! Successions and re-based mode: a period expressed in today's units. Each unit of today stands for itself and
//! for every unit that went into it through the successions, followed back in time: Minh Lập's
//! 2023 activities count toward 05692, which succeeded it FULLy on 2025-07-01.
//!
//! A PARTIAL succession splits the old unit's figures between its successors by the share of
//! its hamlets each took (counted on the day before and the day the succession took effect);
//! an old unit without hamlets splits evenly between its PARTIAL successors. Values that rest
//! on such a share are ESTIMATED.
use chrono::NaiveDate;
use cnscd_entity::admin_unit_succession;
use cnscd_entity::codes::SuccessionKind;
use std::collections::{HashMap, HashSet};

/// One unit whose figures go into a unit of today.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    pub code: String,
    /// Share of its figures that goes in: 1 along FULL successions, the hamlet share along
    /// PARTIAL ones (multiplied along a chain).
    pub weight: f64,
    /// Whether a PARTIAL succession lies on the way: the figure is an estimate.
    pub estimated: bool,
}

/// For each of `targets`, the units whose figures make it up: the unit itself and its
/// predecessors, transitively. `shares` holds the share of each PARTIAL succession
/// ([`partial_shares`]).
pub fn contributors(
    successions: &[admin_unit_succession::Model],
    shares: &HashMap<(String, String), f64>,
    targets: &[String],
) -> HashMap<String, Vec<Part>> {
    let mut out = HashMap::new();
    for target in targets {
        let mut list = vec![Part {
            code: target.clone(),
            weight: 1.0,
            estimated: false,
        }];
        let mut seen: HashSet<String> = HashSet::from([target.clone()]);
        let mut frontier: Vec<(String, f64, bool, NaiveDate)> =
            vec![(target.clone(), 1.0, false, NaiveDate::MAX)];
        while let Some((unit, weight, estimated, before)) = frontier.pop() {
            for s in successions
                .iter()
                .filter(|s| s.new_code == unit && s.old_code != unit && s.effective_on <= before)
            {
                let (share, partial) = match s.kind {
                    SuccessionKind::Full => (1.0, false),
                    SuccessionKind::Partial => (
                        shares
                            .get(&(s.old_code.clone(), s.new_code.clone()))
                            .copied()
                            .unwrap_or(0.0),
                        true,
                    ),
                };
                let (w, e) = (weight * share, estimated || partial);
                if w > 0.0 && seen.insert(s.old_code.clone()) {
                    list.push(Part {
                        code: s.old_code.clone(),
                        weight: w,
                        estimated: e,
                    });
                    frontier.push((s.old_code.clone(), w, e, s.effective_on));
                }
            }
        }
        out.insert(target.clone(), list);
    }
    out
}

/// The share of each PARTIAL succession's old unit that went to its new unit: hamlets under
/// the old unit the day before that are under the new unit on the day, over the old unit's
/// hamlets; evenly between successors when the old unit had no hamlets. `hamlets(unit, day)`
/// lists the hamlets under a unit on a day.
pub fn partial_shares<H: Eq + std::hash::Hash>(
    partial: &[&admin_unit_succession::Model],
    hamlets: impl Fn(&str, NaiveDate) -> HashSet<H>,
) -> HashMap<(String, String), f64> {
    let mut out = HashMap::new();
    let successors = |old: &str| partial.iter().filter(|s| s.old_code == old).count().max(1);
    for s in partial {
        let before = s.effective_on.pred_opt().unwrap_or(s.effective_on);
        let old = hamlets(&s.old_code, before);
        let share = if old.is_empty() {
            1.0 / successors(&s.old_code) as f64
        } else {
            let new = hamlets(&s.new_code, s.effective_on);
            old.intersection(&new).count() as f64 / old.len() as f64
        };
        out.insert((s.old_code.clone(), s.new_code.clone()), share);
    }
    out
}
