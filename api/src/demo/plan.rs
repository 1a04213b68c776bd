//! The demo data set as plain values, before anything is written: hamlets, teams, people and
//! their memberships. Pure and deterministic, so it can be tested without a database.
use super::names;
use super::rng::Rng;
use crate::units::import::UnitRow;
use chrono::{Days, NaiveDate};
use cnscd_entity::codes::{Gender, MemberRole, UnitLevel};

/// The district whose teams the demo data set describes (Đồng Hỷ, Thái Nguyên).
pub const DISTRICT: &str = "169";
/// Its province.
pub const PROVINCE: &str = "19";
/// Minh Lập, the commune of xóm Cà Phê.
pub const MINH_LAP: &str = "05677";
/// Where xóm Cà Phê sits in Minh Lập's list of hamlets (1-based, so its code is `05677-07`).
pub const CA_PHE_POSITION: usize = 7;

/// How many hamlets each commune of Đồng Hỷ has in the demo (143 in all); a commune not
/// listed gets [`DEFAULT_HAMLETS`].
pub const HAMLET_COUNTS: &[(&str, usize)] = &[
    ("05656", 10),
    ("05662", 11),
    ("05665", 13),
    ("05668", 11),
    ("05671", 11),
    ("05674", 12),
    ("05677", 12),
    ("05680", 14),
    ("05683", 9),
    ("05686", 12),
    ("05689", 7),
    ("05692", 9),
    ("05698", 6),
    ("05707", 6),
];
pub const DEFAULT_HAMLETS: usize = 10;

/// A commune a team or hamlet belongs to.
#[derive(Debug, Clone)]
pub struct Commune {
    pub code: String,
    pub name: String,
    /// A thị trấn: its hamlets are tổ dân phố.
    pub town: bool,
}

impl Commune {
    pub fn from_row(row: &UnitRow) -> Self {
        Self {
            code: row.code.clone(),
            name: row.name.clone(),
            town: row.unit_type.as_deref() == Some("Thị trấn"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Hamlet {
    pub code: String,
    pub name: String,
    pub unit_type: &'static str,
    pub commune: String,
}

impl Hamlet {
    pub fn unit_row(&self) -> UnitRow {
        UnitRow {
            code: self.code.clone(),
            name: self.name.clone(),
            unit_type: Some(self.unit_type.to_owned()),
            level: UnitLevel::Hamlet,
            parent_code: Some(self.commune.clone()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Team {
    pub code: String,
    pub name: String,
    pub unit_code: String,
    pub founded_on: NaiveDate,
    pub decision_number: String,
    pub dissolved_on: Option<NaiveDate>,
    pub dissolution_reason: Option<&'static str>,
}

#[derive(Debug, Clone)]
pub struct Person {
    pub full_name: String,
    pub gender: Gender,
    pub birth_year: i32,
    pub phone: String,
    pub email: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Membership {
    pub team: usize,
    pub person: usize,
    pub role: MemberRole,
    pub affiliation: &'static str,
    pub started_on: NaiveDate,
    pub ended_on: Option<NaiveDate>,
    pub end_reason: Option<&'static str>,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub hamlets: Vec<Hamlet>,
    pub teams: Vec<Team>,
    pub persons: Vec<Person>,
    pub memberships: Vec<Membership>,
}

pub fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

pub fn add_days(d: NaiveDate, n: u64) -> NaiveDate {
    d.checked_add_days(Days::new(n)).unwrap_or(d)
}

fn days_between(a: NaiveDate, b: NaiveDate) -> u64 {
    (b - a).num_days().max(0) as u64
}

/// A random day in `from..=to`.
pub(super) fn day_in(rng: &mut Rng, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    add_days(from, rng.below(days_between(from, to) + 1))
}

/// Hamlets of Đồng Hỷ's communes: tổ dân phố in the towns, xóm elsewhere.
pub fn hamlets(communes: &[Commune], rng: &mut Rng) -> Vec<Hamlet> {
    let mut out = Vec::new();
    for c in communes {
        let count = HAMLET_COUNTS
            .iter()
            .find(|(code, _)| *code == c.code)
            .map_or(DEFAULT_HAMLETS, |(_, n)| *n);
        if c.town {
            for n in 1..=count {
                out.push(Hamlet {
                    code: format!("{}-{n:02}", c.code),
                    name: format!("Tổ dân phố {n}"),
                    unit_type: "Tổ dân phố",
                    commune: c.code.clone(),
                });
            }
            continue;
        }
        let mut pool: Vec<&str> = names::HAMLET_NAMES
            .iter()
            .copied()
            .filter(|n| *n != names::CA_PHE)
            .collect();
        rng.shuffle(&mut pool);
        let mut chosen: Vec<&str> = pool.into_iter().take(count).collect();
        if c.code == MINH_LAP && !chosen.is_empty() {
            let at = CA_PHE_POSITION.min(chosen.len()) - 1;
            chosen[at] = names::CA_PHE;
        }
        for (i, name) in chosen.into_iter().enumerate() {
            out.push(Hamlet {
                code: format!("{}-{:02}", c.code, i + 1),
                name: format!("Xóm {name}"),
                unit_type: "Xóm",
                commune: c.code.clone(),
            });
        }
    }
    out
}

/// Everything but the activities: a team per hamlet (plus, for benchmarks, `extra` teams on
/// communes elsewhere in the province), five or six members each, a few replaced, two teams
/// dissolved in March 2025.
pub fn build(communes: &[Commune], extra: &[Commune], extra_teams: usize, seed: u64) -> Plan {
    let base = Rng::new(seed);
    let mut plan = Plan {
        hamlets: hamlets(communes, &mut base.fork(1)),
        ..Plan::default()
    };
    let mut rng = base.fork(2);
    // One founding decision per commune, between March and December 2022.
    let mut decisions: Vec<(String, NaiveDate, String)> = Vec::new();
    let mut decision_for = |code: &str, rng: &mut Rng| {
        if let Some((_, d, n)) = decisions.iter().find(|(c, _, _)| c == code) {
            return (*d, n.clone());
        }
        let d = day_in(rng, ymd(2022, 3, 1), ymd(2022, 12, 31));
        let n = format!("{}/QĐ-UBND", rng.range(45, 480));
        decisions.push((code.to_owned(), d, n.clone()));
        (d, n)
    };
    for h in &plan.hamlets {
        let (founded_on, decision_number) = decision_for(&h.commune, &mut rng);
        plan.teams.push(Team {
            code: format!("{}{}", super::status::DEMO_TEAM_PREFIX, h.code),
            name: format!("Tổ CNSCĐ {}", h.name),
            unit_code: h.code.clone(),
            founded_on,
            decision_number,
            dissolved_on: None,
            dissolution_reason: None,
        });
    }
    // Two teams dissolved in March 2025 (never xóm Cà Phê's).
    let ca_phe = format!("{MINH_LAP}-{CA_PHE_POSITION:02}");
    let candidates: Vec<usize> = (0..plan.teams.len())
        .filter(|i| plan.teams[*i].unit_code != ca_phe)
        .collect();
    let mut dissolved: Vec<usize> = Vec::new();
    while dissolved.len() < 2.min(candidates.len()) {
        if let Some(i) = rng.pick(&candidates)
            && !dissolved.contains(&i)
        {
            dissolved.push(i);
        }
    }
    for (k, i) in dissolved.into_iter().enumerate() {
        let t = &mut plan.teams[i];
        t.dissolved_on = Some(ymd(2025, 3, if k == 0 { 14 } else { 28 }));
        t.dissolution_reason = names::DISSOLUTION_REASONS.get(k).copied();
    }
    // Teams elsewhere in the province, on communes, for benchmarks.
    for k in 0..extra_teams {
        let Some(c) = extra.get(k % extra.len().max(1)) else {
            break;
        };
        let round = k / extra.len().max(1) + 1;
        let (founded_on, decision_number) = decision_for(&c.code, &mut rng);
        plan.teams.push(Team {
            code: format!("TN-{}-{round:02}", c.code),
            name: if round == 1 {
                format!("Tổ CNSCĐ {}", c.name)
            } else {
                format!("Tổ CNSCĐ {} số {round}", c.name)
            },
            unit_code: c.code.clone(),
            founded_on,
            decision_number,
            dissolved_on: None,
            dissolution_reason: None,
        });
    }
    let mut rng = base.fork(3);
    for team in 0..plan.teams.len() {
        members(&mut plan, team, &mut rng);
    }
    plan
}

const OTHER_AFFILIATIONS: &[(&str, f64)] = &[
    ("POLICE", 0.15),
    ("WOMENS_UNION", 0.18),
    ("FARMERS_UNION", 0.12),
    ("FATHERLAND_FRONT", 0.07),
    ("COMMUNE_OFFICIAL", 0.06),
    ("TEACHER", 0.12),
    ("BUSINESS", 0.08),
    ("VOLUNTEER", 0.17),
    ("OTHER", 0.05),
];

fn affiliation(role: MemberRole, rng: &mut Rng) -> &'static str {
    if role == MemberRole::Leader {
        if rng.chance(0.8) {
            "HAMLET_HEAD"
        } else {
            rng.pick(&["FATHERLAND_FRONT", "COMMUNE_OFFICIAL", "TEACHER"])
                .unwrap_or("HAMLET_HEAD")
        }
    } else if rng.chance(0.3) {
        "YOUTH_UNION"
    } else {
        rng.weighted(OTHER_AFFILIATIONS).unwrap_or("VOLUNTEER")
    }
}

/// A synthetic person fit for `affiliation`.
fn person(index: usize, role: MemberRole, affiliation: &str, rng: &mut Rng) -> Person {
    let female = match affiliation {
        "WOMENS_UNION" => true,
        "POLICE" => rng.chance(0.15),
        "HAMLET_HEAD" => rng.chance(0.2),
        "TEACHER" => rng.chance(0.7),
        _ => rng.chance(0.45),
    };
    let surname = rng.weighted(names::SURNAMES).unwrap_or("Nguyễn");
    let (middles, givens) = if female {
        (names::FEMALE_MIDDLE, names::FEMALE_GIVEN)
    } else {
        (names::MALE_MIDDLE, names::MALE_GIVEN)
    };
    let given = rng.pick(givens).unwrap_or("An");
    let mut middle = rng.pick(middles).unwrap_or("Văn");
    if middle == given {
        middle = if female { "Thị" } else { "Văn" };
    }
    let birth_year = match (role, affiliation) {
        (_, "YOUTH_UNION") => rng.range(1992, 2003),
        (MemberRole::Leader, _) => rng.range(1960, 1985),
        (_, "POLICE") => rng.range(1980, 1998),
        _ => rng.range(1960, 1995),
    } as i32;
    let full_name = format!("{surname} {middle} {given}");
    let email = rng.chance(0.35).then(|| {
        format!(
            "{}.{}{}@example.vn",
            crate::text::fold(given),
            crate::text::fold(surname),
            index + 1
        )
    });
    Person {
        full_name,
        gender: if female { Gender::Female } else { Gender::Male },
        birth_year,
        // A bijection of the index, so every phone number is different.
        phone: format!("09{:08}", (index as u64 * 7919 + 13_572_468) % 100_000_000),
        email,
    }
}

fn add_member(
    plan: &mut Plan,
    team: usize,
    role: MemberRole,
    started_on: NaiveDate,
    rng: &mut Rng,
) -> usize {
    let aff = affiliation(role, rng);
    let p = person(plan.persons.len(), role, aff, rng);
    plan.persons.push(p);
    plan.memberships.push(Membership {
        team,
        person: plan.persons.len() - 1,
        role,
        affiliation: aff,
        started_on,
        ended_on: None,
        end_reason: None,
    });
    plan.memberships.len() - 1
}

/// Five or six members for `team`: a leader, often a deputy; now and then one leaves and is
/// replaced; everyone leaves a dissolved team.
pub(super) fn members(plan: &mut Plan, team: usize, rng: &mut Rng) {
    let founded = plan.teams[team].founded_on;
    let dissolved = plan.teams[team].dissolved_on;
    let size = if rng.chance(0.5) { 5 } else { 6 };
    let first = plan.memberships.len();
    for k in 0..size {
        let role = match k {
            0 => MemberRole::Leader,
            1 if rng.chance(0.7) => MemberRole::Deputy,
            _ => MemberRole::Member,
        };
        let started_on = if k >= 2 && rng.chance(0.15) {
            day_in(rng, add_days(founded, 30), ymd(2023, 12, 31))
        } else {
            founded
        };
        add_member(plan, team, role, started_on, rng);
    }
    let last_day = dissolved.map_or(ymd(2025, 2, 28), |d| d.pred_opt().unwrap_or(d));
    // About one team in twelve replaces a member (sometimes its leader).
    if rng.chance(0.08) {
        let k = if rng.chance(0.3) {
            0
        } else {
            rng.range(1, size as i64 - 1) as usize
        };
        let m = first + k;
        let from = add_days(plan.memberships[m].started_on.max(ymd(2023, 3, 1)), 1);
        if from < last_day {
            let ended = day_in(rng, from, last_day);
            let role = plan.memberships[m].role;
            plan.memberships[m].ended_on = Some(ended);
            plan.memberships[m].end_reason = rng.pick(names::END_REASONS);
            add_member(plan, team, role, add_days(ended, 1), rng);
        }
    } else if rng.chance(0.03) {
        // A member leaves without being replaced.
        let m = first + size - 1;
        let from = add_days(plan.memberships[m].started_on.max(ymd(2023, 6, 1)), 1);
        if from < last_day {
            plan.memberships[m].ended_on = Some(day_in(rng, from, last_day));
            plan.memberships[m].end_reason = rng.pick(names::END_REASONS);
        }
    }
    if let Some(d) = dissolved {
        for m in &mut plan.memberships[first..] {
            if m.ended_on.is_none() {
                m.ended_on = Some(d);
                m.end_reason = Some("Tổ giải thể");
            }
        }
    }
}

#[cfg(test)]
pub mod tests_support {
    use super::*;

    /// Đồng Hỷ's communes as the 2025-03-01 catalogue lists them.
    pub fn dong_hy() -> Vec<Commune> {
        let towns = ["05656", "05662", "05692"];
        HAMLET_COUNTS
            .iter()
            .map(|(code, _)| Commune {
                code: (*code).to_owned(),
                name: format!("Xã {code}"),
                town: towns.contains(code),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::dong_hy;
    use super::*;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn hamlets_and_teams_of_dong_hy() {
        let plan = build(&dong_hy(), &[], 0, super::super::SEED);
        assert_eq!(plan.hamlets.len(), 143);
        assert_eq!(plan.teams.len(), 143);
        let codes: HashSet<&str> = plan.hamlets.iter().map(|h| h.code.as_str()).collect();
        assert_eq!(codes.len(), 143);
        let ca_phe: Vec<&Hamlet> = plan
            .hamlets
            .iter()
            .filter(|h| h.name == "Xóm Cà Phê")
            .collect();
        assert_eq!(ca_phe.len(), 1);
        assert_eq!(ca_phe[0].code, "05677-07");
        assert_eq!(ca_phe[0].commune, MINH_LAP);
        assert!(plan.hamlets.iter().any(|h| h.name == "Tổ dân phố 3"));
        for t in &plan.teams {
            assert!(t.founded_on >= ymd(2022, 3, 1) && t.founded_on <= ymd(2022, 12, 31));
        }
        assert_eq!(
            plan.teams
                .iter()
                .filter(|t| t.dissolved_on.is_some())
                .count(),
            2
        );
    }

    #[test]
    fn about_eight_hundred_members_one_open_leader_each() {
        let plan = build(&dong_hy(), &[], 0, super::super::SEED);
        assert!(
            (780..=830).contains(&plan.persons.len()),
            "{}",
            plan.persons.len()
        );
        let mut open_leaders: HashMap<usize, usize> = HashMap::new();
        let mut leaders_ever: HashSet<usize> = HashSet::new();
        for m in &plan.memberships {
            if m.role == MemberRole::Leader {
                leaders_ever.insert(m.team);
                if m.ended_on.is_none() {
                    *open_leaders.entry(m.team).or_default() += 1;
                }
            }
            if let Some(e) = m.ended_on {
                assert!(e >= m.started_on);
                assert!(m.end_reason.is_some());
            }
        }
        assert_eq!(leaders_ever.len(), 143);
        assert!(open_leaders.values().all(|n| *n == 1));
        assert_eq!(open_leaders.len(), 141); // the two dissolved teams have none
        let youth = plan
            .memberships
            .iter()
            .filter(|m| m.affiliation == "YOUTH_UNION")
            .count() as f64
            / plan.memberships.len() as f64;
        assert!((0.18..0.32).contains(&youth), "{youth}");
        assert!(
            plan.memberships
                .iter()
                .any(|m| m.ended_on.is_some() && m.team < 143)
        );
    }

    #[test]
    fn the_plan_is_deterministic() {
        let a = build(&dong_hy(), &[], 0, 5);
        let b = build(&dong_hy(), &[], 0, 5);
        let names = |p: &Plan| {
            p.persons
                .iter()
                .map(|x| x.full_name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&a), names(&b));
        let phones: HashSet<&str> = a.persons.iter().map(|p| p.phone.as_str()).collect();
        assert_eq!(phones.len(), a.persons.len());
    }

    #[test]
    fn extra_teams_spread_over_other_communes() {
        let extra = vec![
            Commune {
                code: "05485".into(),
                name: "Xã Phúc Hà".into(),
                town: false,
            },
            Commune {
                code: "05488".into(),
                name: "Xã Phúc Xuân".into(),
                town: false,
            },
        ];
        let plan = build(&dong_hy(), &extra, 5, 1);
        assert_eq!(plan.teams.len(), 148);
        let codes: HashSet<&str> = plan.teams.iter().map(|t| t.code.as_str()).collect();
        assert_eq!(codes.len(), 148);
        assert!(codes.contains("TN-05485-03"));
    }
}
