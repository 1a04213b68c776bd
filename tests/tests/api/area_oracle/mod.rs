//! The area oracle (issue 5, item 2): every read path and every mutation, for every role over
//! a set of areas, answers what a plain model of the fixture says (area.md, row by row).
//!
//! The oracle (`model.rs`) knows nothing of the service's SQL: it has its own table of unit
//! versions (the harness fixture, written out by hand) and decides "is unit U under area A on
//! day D" by walking parents on D. Because that table only changes on 2025-07-01, "some day of a
//! range" and "every day of a range" are decided on the range's first day and on each day the
//! table changes inside the range, which is exact for a piecewise-constant hierarchy.
//!
//! A failing check names the caller (role and area), the path and the differing rows (by fixture
//! label, e.g. `M3(T1-cafe@05677-01 2023-01-10..2025-09-30)`), and all failures are listed
//! together after a count per path.
//!
//! Layout, model first: `model.rs` (the hierarchy by hand, the area rule over it, the callers'
//! roles, and who may read and do what), `fixture.rs` (the data set the tests share, built
//! through the API and recorded as the oracle knows it; the callers' tokens), `reads.rs` (the
//! read matrix and its probes), `writes.rs` (the mutation matrix) and `locks.rs` (lockPeriod
//! and unlockPeriod).
//!
//! Reads (24 callers: ADMIN; UNIT_ADMIN, VIEWER and REPORTER of 169, 05677, 05692, 05677-01, 19,
//! 05710; a REPORTER with the same subject but another client; four TEAM_LEADER tokens):
//! `teams` (ids, totalCount), `team(id:)`, `node(id:)` for teams, memberships and activities,
//! `members(active: true | false | null)` (ids, totalCount), `activities` (ids, totalCount),
//! nested `Team.members` (current and `includeEnded`), `Team.memberCount`, `Team.latestActivity`,
//! `Membership.person.phone` (on three paths), `Membership.team`, `Activity.team`, `auditLog`
//! (entries, page by page, totalCount, and each activity entry's `before` and `after`;
//! FORBIDDEN to other roles) and `indicators` (CNS05
//! and CNS02, YEAR and MONTH over 2024–2025, SELF and CHILDREN, per value; whole request
//! FORBIDDEN when the unit is never in the area; values checked against the oracle's own count
//! where the unit existed),
//! the same as `indicatorTable` (entries outside the area hold nothing), and `indicators` in
//! REBASED mode (no rows for units that are gone; readable where today's unit is in the area
//! today); `dataValues` (ids and totalCount, unfiltered and filtered by `under`, `from`, `to`:
//! the unit in the area on every day of the figure's period, a REPORTER what it sent; FORBIDDEN
//! to TEAM_LEADER), `periodLocks` (the same filters: the unit in the area during the month;
//! FORBIDDEN to TEAM_LEADER), `indicatorTargets` (the unit in the area on every day of the
//! target's period on which it existed, as an indicator value; FORBIDDEN to REPORTER and
//! TEAM_LEADER) and `activityVersions(activityId:)` (each version kept, with its day, unit and
//! changer, where the version is visible by the activity rule on its own day and unit: its
//! unit on its day, the activity's team, the activity's submitter; NOT_FOUND when neither the
//! activity as it is now nor any version is). The fixture corrects activities (across
//! 2025-07-01, from the ceased commune to the new one, up from a hamlet to its commune, by the
//! reporter that sent one, twice), so the lists, indicators, `auditLog` and
//! `activityVersions` follow an activity to its new day and unit while each side of a move
//! keeps its own versions.
//!
//! An audit entry is read where the changed row's unit (as the change left it) was in the area
//! on the day of the change and the row as it is now is visible by its own kind's rule
//! (area.md): a team's, membership's or activity's entry where the row's unit now is in the
//! area on some day the row concerns now (a correction that moves an activity to other days
//! or another unit moves them for all its entries); a figure's as `dataValues` shows the
//! figure (every day of its period), a lock's as `periodLocks` (during its month), a target's as
//! the indicator value it belongs to (every day of the period the unit existed); an indicator
//! definition's (no unit) by ADMIN only. The fixture holds figures, locks, CNS05 targets (set,
//! changed and cleared, on days either side of 2025-07-01, for a hamlet that moves, a ceased
//! commune and district, a new commune) and a definition, with their entries dated on days that
//! make the rules differ. An activity entry's `before` and `after` hold the activity as it was
//! before and after the change (a submission's `after`, a correction's both): each is checked
//! per caller by the version rule of `activityVersions` (the activity rule on that state's own
//! day and unit), null with a FORBIDDEN error on its path where the caller may not read that
//! version and present where it may; one activity (A14) is sent after the reorganisation about
//! a day before it, then corrected into July, so that its submission's `after` is withheld from
//! the commune that reads the entry now.
//!
//! Writes: createTeam, updateTeam (name; foundedOn moved across 2025-07-01 and not),
//! dissolveTeam, addMember, updateMembership, endMembership and submitActivity (with and without
//! a `unitCode` above the team's hamlet), on dates before and after 2025-07-01, in a hamlet that
//! moves, one that stays and an outsider, for ADMIN, UNIT_ADMIN of seven units, VIEWER,
//! REPORTERs and the team's own and another team's TEAM_LEADER: allowed exactly when the oracle
//! says so, and when refused (FORBIDDEN or NOT_FOUND) the database is unchanged. Also
//! submitActivities (each submission as a batch's one item), voidActivity, correctActivity
//! (moved across 2025-07-01 both ways, to and from a commune above the team, title only; the
//! oracle: the caller's right over the activity as it was, as its submitter, its team's leader
//! or an admin of its unit on its day, and over it as it will be, as one who may record that),
//! including the REPORTER that recorded it; submitDataValues (months, quarters and years on
//! either side and across 2025-07-01, a ceased commune's last quarter, a new commune's first:
//! the unit in the area on every day of the period); lockPeriod and unlockPeriod (in a test of
//! their own, callers in turn: the unit in the area on every day of the month it exists).
//!
//! Each of these later checks was seen to fail with the oracle's rule broken, then restored:
//! correctActivity with only the "before" or only the "after" half; submitDataValues and
//! `dataValues` with "every day of the period" made "some day"; lockPeriod, unlockPeriod and
//! `periodLocks` decided on today's hierarchy instead of the month's; `activityVersions` with
//! visibility inverted; `auditLog` without the days the row concerns.
//!
//! And with the service's rule broken (issue 15, item 4), on SQLite and on PostgreSQL: the
//! audit log's rule of before (one "some day the row concerns" for every kind: figures' and
//! targets' entries leak, e.g. to UNIT_ADMIN[05692] the moving hamlet's 2025 figure and target
//! changed after July); targets' entries by "every day" instead of "every day the unit existed"
//! (a ceased commune's, a district's and a new commune's 2025 targets go missing) or by "some
//! day"; figures' entries by "some day"; locks' entries dropped; a definition's entry shown to
//! every UNIT_ADMIN; `activityVersions` as before (every version where the activity is visible
//! now: both sides of a move wrong); versions by unit and day only (the team's leader and the
//! submitting reporter lose them). Each failed this test, and passes with the rule restored.
//!
//! And (issue 15, item 4, the row's unit now and the versions in an entry), on SQLite and on
//! PostgreSQL: the row's rule taken on the entry's unit at the change (`unit_code`) instead of
//! the row's unit now (`concerns_unit`), or that unit not brought forward onto the row's earlier
//! entries by a correction: UNIT_ADMIN[19] misses the entry of A3's submission at the ceased
//! commune (A3 now lies at the new one), UNIT_ADMIN[05677-01] still reads the entry of A2's
//! submission after A2 moved up to the commune; no side withheld: UNIT_ADMIN[05692] reads the
//! `before` of the corrections of A1, A3 and A14 and the `after` of A14's submission,
//! UNIT_ADMIN[05710] the `before` of A11's correction; every activity side withheld: the sides
//! each admin may read answer null. Each failed this test, and passes with the rule restored.
//!
//! Run: `cargo test -p cnscd-tests --test api area_oracle`, and with
//! `CNSCD_TEST_DATABASE=postgres://...` for PostgreSQL.

mod fixture;
mod locks;
mod model;
mod reads;
mod writes;
