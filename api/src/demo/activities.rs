//! Activities of a team, 2023 to 2025: two to four a month (times the scale), each with one to
//! three services helped.
use super::names;
use super::plan::{Team, add_days, ymd};
use super::rng::Rng;
use chrono::{Datelike, NaiveDate};

/// First and last day activities are generated for.
pub fn first_day() -> NaiveDate {
    ymd(2023, 1, 1)
}
pub fn last_day() -> NaiveDate {
    ymd(2025, 12, 31)
}

#[derive(Debug, Clone)]
pub struct Activity {
    pub kind: &'static str,
    pub occurred_on: NaiveDate,
    pub title: &'static str,
    pub description: Option<&'static str>,
    pub participants: i32,
    pub households_reached: i32,
    /// (service, people, households)
    pub outcomes: Vec<(&'static str, i32, Option<i32>)>,
}

fn days_in_month(y: i32, m: u32) -> u32 {
    let next = if m == 12 {
        ymd(y + 1, 1, 1)
    } else {
        ymd(y, m + 1, 1)
    };
    next.pred_opt().map_or(28, |d| d.day())
}

/// The activities of `team`, in date order.
pub fn for_team(team: &Team, scale: u32, rng: &mut Rng) -> Vec<Activity> {
    let from = first_day().max(add_days(team.founded_on, 1));
    let to = team
        .dissolved_on
        .and_then(|d| d.pred_opt())
        .map_or(last_day(), |d| d.min(last_day()));
    // Some teams are busier than others.
    let zeal = rng.between(0.85, 1.15);
    let mut out = Vec::new();
    for y in 2023..=2025 {
        for m in 1..=12u32 {
            let n = (rng.range(2, 4) as f64 * zeal).round().max(1.0) as u32 * scale.max(1);
            let days = days_in_month(y, m);
            let mut dates: Vec<NaiveDate> = (0..n)
                .map(|_| ymd(y, m, rng.range(1, days as i64) as u32))
                .filter(|d| *d >= from && *d <= to)
                .collect();
            dates.sort();
            for d in dates {
                out.push(activity(d, rng));
            }
        }
    }
    out
}

/// The templates of each kind: (kind, [(title, main service)]), built once.
fn templates_of(kind: &str) -> &'static [(&'static str, &'static str)] {
    type Templates = Vec<(&'static str, Vec<(&'static str, &'static str)>)>;
    static BY_KIND: std::sync::LazyLock<Templates> = std::sync::LazyLock::new(|| {
        let mut out: Templates = Vec::new();
        for (k, t, s) in names::ACTIVITY_TEMPLATES {
            match out.iter_mut().find(|(kind, _)| kind == k) {
                Some((_, list)) => list.push((t, s)),
                None => out.push((k, vec![(t, s)])),
            }
        }
        out
    });
    BY_KIND
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(&[], |(_, list)| list.as_slice())
}

/// One activity on `occurred_on`: a kind, a title, attendance and the services helped.
pub fn activity(occurred_on: NaiveDate, rng: &mut Rng) -> Activity {
    let kind = rng.weighted(names::KIND_WEIGHTS).unwrap_or("OTHER");
    let (title, main) = rng
        .pick(templates_of(kind))
        .unwrap_or(("Hoạt động hỗ trợ chuyển đổi số", "OTHER"));
    let participants = match kind {
        "COMMUNITY_MEETING" => rng.range(15, 60),
        "DOOR_TO_DOOR" => rng.range(5, 20),
        "HELP_DESK" => rng.range(5, 30),
        "TRAINING" => rng.range(10, 40),
        "ONLINE_GROUP" => rng.range(20, 60),
        _ => rng.range(5, 30),
    } as i32;
    let households_reached = rng.range(3, i64::from(participants.min(40))) as i32;
    let mut services = vec![main];
    let extra = rng.range(0, 2);
    for _ in 0..extra {
        if let Some(s) = rng.pick(names::SERVICES)
            && !services.contains(&s)
        {
            services.push(s);
        }
    }
    let outcomes = services
        .into_iter()
        .map(|s| {
            let people = rng.range(1, i64::from(participants.max(1))) as i32;
            let households = rng
                .chance(0.8)
                .then(|| rng.range(1, i64::from(people.min(households_reached).max(1))) as i32);
            (s, people, households)
        })
        .collect();
    Activity {
        kind,
        occurred_on,
        title,
        description: if rng.chance(0.4) {
            rng.pick(names::DESCRIPTIONS)
        } else {
            None
        },
        participants,
        households_reached,
        outcomes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn team(dissolved_on: Option<NaiveDate>) -> Team {
        Team {
            code: "DH-05677-07".into(),
            name: "Tổ CNSCĐ Xóm Cà Phê".into(),
            unit_code: "05677-07".into(),
            founded_on: ymd(2022, 5, 10),
            decision_number: "123/QĐ-UBND".into(),
            dissolved_on,
            dissolution_reason: None,
        }
    }

    #[test]
    fn two_to_four_a_month_within_bounds() {
        let acts = for_team(&team(None), 1, &mut Rng::new(3));
        assert!((36 * 2..=36 * 5).contains(&acts.len()), "{}", acts.len());
        for a in &acts {
            assert!(a.occurred_on >= first_day() && a.occurred_on <= last_day());
            assert!((5..=60).contains(&a.participants));
            assert!((3..=40).contains(&a.households_reached));
            assert!(a.households_reached <= a.participants);
            assert!((1..=3).contains(&a.outcomes.len()));
            let services: HashSet<&str> = a.outcomes.iter().map(|o| o.0).collect();
            assert_eq!(services.len(), a.outcomes.len());
            for (_, people, households) in &a.outcomes {
                assert!(*people >= 1 && *people <= a.participants);
                assert!(households.is_none_or(|h| h >= 1 && h <= *people));
            }
        }
        assert!(
            acts.windows(2)
                .all(|w| w[0].occurred_on <= w[1].occurred_on)
        );
    }

    #[test]
    fn scale_multiplies_and_dissolution_stops() {
        let one = for_team(&team(None), 1, &mut Rng::new(3)).len();
        let three = for_team(&team(None), 3, &mut Rng::new(3)).len();
        assert!(three > 2 * one, "{one} {three}");
        let d = ymd(2025, 3, 14);
        let acts = for_team(&team(Some(d)), 1, &mut Rng::new(3));
        assert!(acts.iter().all(|a| a.occurred_on < d));
    }
}
