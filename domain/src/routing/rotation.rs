//! Weighted round-robin over a pool's members by virtual time (worst-case fair weighted
//! fair queueing, WF2Q): each member's turn lasts a stride inversely proportional to its
//! weight; virtual time advances by one lead's worth of the eligible members' total weight
//! per pick; the next lead goes, among the eligible members whose turn has started, to the
//! one whose turn ends first; on a tie, to the one served longest ago (then the earliest
//! joined). With equal weights that is the member who has waited longest; with weights w
//! each member gets N·w/Σw ± 1 of N leads.
//!
//! **Place in line** (FEATURES.md, "Routing semantics"). A member skipped for any reason
//! (paused, at its cap, not assignable) keeps its place: once eligible again it is served
//! from there, usually next, and then goes to the back like anyone else. Its place is
//! bounded to one turn behind virtual time, so a long absence earns one turn, never a
//! burst. A member who joins starts at the back. Removing a member changes nobody else's
//! place. Integer arithmetic only.
//!
//! Picks stored before this rule (pool events before version 1.2) replay under the rule
//! they were decided by, [`Rotation::pick_levelled`], which levelled a returning member up
//! to the current virtual time.

use crate::ids::{PartnerUserId, QueueId};
use serde::{Deserialize, Serialize};

/// One unit of work in virtual time: divisible by every weight up to 16, times 2^10.
const TURN: u64 = 720_720 << 10;
/// When virtual time passes this, every value is shifted down (order is kept).
const REBASE_ABOVE: u64 = 1 << 62;

/// A pool member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Member {
    /// A partner user.
    PartnerUser(PartnerUserId),
    /// A partner queue.
    Queue(QueueId),
}

/// One member's place in the rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// The member.
    pub member: Member,
    /// Its weight (≥ 1).
    pub weight: u32,
    /// Virtual time at which its next turn starts.
    pub pass: u64,
    /// Eligible at the last pick (a member who was not is placed again when it returns).
    pub active: bool,
    /// The pick count at its last turn, or when it joined: who was served longest ago.
    #[serde(default)]
    pub served: u64,
    /// Its own cap of open leads, instead of the pool's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<u32>,
}

impl Slot {
    fn stride(&self) -> u64 {
        TURN / u64::from(self.weight.max(1))
    }
}

/// The rotation of a pool: its members in the order they joined, and the virtual time of
/// the last turn given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    /// Members in join order.
    pub slots: Vec<Slot>,
    /// Virtual time: members whose turn started at or before it may be picked.
    pub now: u64,
    /// Picks made so far (orders members served at the same virtual time).
    #[serde(default)]
    pub picks: u64,
}

impl Rotation {
    /// Whether `member` is in the pool.
    pub fn contains(&self, member: Member) -> bool {
        self.slots.iter().any(|s| s.member == member)
    }

    /// Shift virtual time down once it grows large, keeping every difference.
    fn rebase(&mut self) {
        if self.now <= REBASE_ABOVE {
            return;
        }
        let base = self.slots.iter().map(|s| s.pass).fold(self.now, u64::min);
        self.now -= base;
        for slot in &mut self.slots {
            slot.pass -= base;
        }
    }

    /// Add a member with `weight`, level with the member due now (the rule of pool events
    /// before version 1.2; see [`Rotation::add_at_back`]).
    pub fn add(&mut self, member: Member, weight: u32) {
        let pass = self.now;
        self.insert(member, weight, pass);
    }

    /// Add a member with `weight` at the back of the line: after every member waiting or
    /// served at the current virtual time, at most one of its own turns ahead of it.
    pub fn add_at_back(&mut self, member: Member, weight: u32) {
        let stride = TURN / u64::from(weight.max(1));
        let last = self.slots.iter().map(|s| s.pass).fold(self.now, u64::max);
        let pass = last.min(self.now + stride);
        self.insert(member, weight, pass);
    }

    fn insert(&mut self, member: Member, weight: u32, pass: u64) {
        if !self.contains(member) {
            self.slots.push(Slot {
                member,
                weight,
                pass,
                active: false,
                served: self.picks,
                cap: None,
            });
        }
    }

    /// Change a member's weight and own cap; it keeps its place (its turn in virtual time
    /// and when it was last served).
    pub fn change(&mut self, member: Member, weight: u32, cap: Option<u32>) {
        if let Some(slot) = self.slots.iter_mut().find(|s| s.member == member) {
            slot.weight = weight;
            slot.cap = cap;
        }
    }

    /// Remove a member; the others keep their places.
    pub fn remove(&mut self, member: Member) {
        self.slots.retain(|s| s.member != member);
    }

    /// The member the next lead goes to among those `eligible` accepts, and the rotation
    /// after that turn; `None` when nobody is eligible (the rotation does not move). A
    /// member returning after being skipped keeps its place, bounded to one turn behind.
    pub fn pick(&self, eligible: impl Fn(Member) -> bool) -> Option<(Member, Rotation)> {
        self.pick_by(eligible, Rule::PlaceInLine)
    }

    /// The pick of pool events before version 1.2: a returning member was levelled up to
    /// the current virtual time, and ties went to the earliest joined. Only for replaying
    /// those events.
    pub fn pick_levelled(&self, eligible: impl Fn(Member) -> bool) -> Option<(Member, Rotation)> {
        self.pick_by(eligible, Rule::Levelled)
    }

    fn pick_by(&self, eligible: impl Fn(Member) -> bool, rule: Rule) -> Option<(Member, Rotation)> {
        let mut next = self.clone();
        let mut total_weight = 0u64;
        let mut earliest: Option<u64> = None;
        for slot in next.slots.iter_mut() {
            let is_eligible = eligible(slot.member);
            if is_eligible && !slot.active {
                slot.pass = match rule {
                    Rule::Levelled => slot.pass.max(self.now),
                    Rule::PlaceInLine => slot.pass.max(self.now.saturating_sub(slot.stride())),
                };
            }
            slot.active = is_eligible;
            if is_eligible {
                total_weight += u64::from(slot.weight.max(1));
                earliest = Some(earliest.map_or(slot.pass, |e| e.min(slot.pass)));
            }
        }
        // Nobody's turn has started (members left): virtual time jumps to the earliest.
        let now = self.now.max(earliest?);
        let equal_weights = next.slots.windows(2).all(|w| w[0].weight == w[1].weight);
        let by_wait = rule == Rule::PlaceInLine && equal_weights;
        let best = if by_wait {
            // Equal weights: exactly the member who has waited longest.
            next.slots
                .iter()
                .enumerate()
                .filter(|(_, slot)| slot.active)
                .map(|(i, slot)| (slot.served, i))
                .min()?
                .1
        } else {
            next.slots
                .iter()
                .enumerate()
                .filter(|(_, slot)| slot.active && slot.pass <= now)
                .map(|(i, slot)| {
                    let served = match rule {
                        Rule::Levelled => 0,
                        Rule::PlaceInLine => slot.served,
                    };
                    (slot.pass + slot.stride(), served, i)
                })
                .min()?
                .2
        };
        next.now = now + TURN.div_ceil(total_weight);
        next.picks = self.picks + 1;
        let slot = &mut next.slots[best];
        if by_wait {
            // Its virtual time stays where the weighted rule would expect it.
            slot.pass = slot.pass.max(now);
        }
        slot.pass += slot.stride();
        slot.served = next.picks;
        let member = slot.member;
        next.rebase();
        Some((member, next))
    }
}

/// Which pick rule a stored pick was decided by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Pool events before version 1.2.
    Levelled,
    /// FEATURES.md's place in line.
    PlaceInLine,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn user(n: u128) -> Member {
        Member::PartnerUser(PartnerUserId(Uuid::from_u128(n)))
    }

    fn rotation(weights: &[u32]) -> Rotation {
        let mut r = Rotation::default();
        for (i, w) in weights.iter().enumerate() {
            r.add(user(i as u128 + 1), *w);
        }
        r
    }

    fn run(
        mut r: Rotation,
        n: usize,
        eligible: impl Fn(Member) -> bool,
    ) -> (Vec<Member>, Rotation) {
        let mut picks = Vec::new();
        for _ in 0..n {
            let (m, next) = r.pick(&eligible).expect("someone is eligible");
            picks.push(m);
            r = next;
        }
        (picks, r)
    }

    #[test]
    fn equal_weights_go_round_in_join_order() {
        let (picks, _) = run(rotation(&[1, 1, 1]), 6, |_| true);
        assert_eq!(picks, [1, 2, 3, 1, 2, 3].map(user));
    }

    #[test]
    fn a_skipped_member_keeps_the_others_in_their_order() {
        let (first, r) = run(rotation(&[1, 1, 1]), 1, |_| true);
        assert_eq!(first, [user(1)]);
        let (without_two, r) = run(r, 4, |m| m != user(2));
        assert_eq!(
            without_two,
            [3, 1, 3, 1].map(user),
            "2 is skipped, 3 and 1 alternate"
        );
        let (back, _) = run(r, 6, |_| true);
        for n in 1..=3 {
            assert_eq!(
                back.iter().filter(|&&m| m == user(n)).count(),
                2,
                "{back:?}"
            );
        }
        assert!(
            back.windows(2).all(|w| w[0] != w[1]),
            "the returner takes its turn in order, with no catch-up burst: {back:?}"
        );
    }

    #[test]
    fn weights_two_one_one_over_forty_leads_give_twenty_ten_ten() {
        let (picks, _) = run(rotation(&[2, 1, 1]), 40, |_| true);
        let count = |n| picks.iter().filter(|&&m| m == user(n)).count();
        assert_eq!((count(1), count(2), count(3)), (20, 10, 10));
    }

    fn members(names: &[u128]) -> Vec<Member> {
        names.iter().map(|&n| user(n)).collect()
    }

    #[test]
    fn members_back_from_a_pause_are_served_from_their_place_first() {
        // Pool [A, B, C, D, E]; B, C, D paused; two leads go to A then E; all back: the
        // ones who waited longest (B, C, D) go first, then A, then E.
        let (a, e) = (user(1), user(5));
        let (two, r) = run(rotation(&[1, 1, 1, 1, 1]), 2, |m| m == a || m == e);
        assert_eq!(two, [a, e]);
        let (next, _) = run(r, 5, |_| true);
        assert_eq!(next, members(&[2, 3, 4, 1, 5]));
    }

    #[test]
    fn a_member_back_under_its_cap_is_first_in_line() {
        // Pool [A (cap 1), B, C]: A takes one lead and is at its cap for the next five;
        // when its lead closes, A goes next (first in line all along), then C.
        let a = user(1);
        let (first, r) = run(rotation(&[1, 1, 1]), 1, |_| true);
        assert_eq!(first, [a]);
        let (capped, r) = run(r, 5, |m| m != a);
        assert_eq!(capped, members(&[2, 3, 2, 3, 2]));
        let (back, _) = run(r, 2, |_| true);
        assert_eq!(back, members(&[1, 3]));
    }

    #[test]
    fn a_member_who_joins_starts_at_the_back() {
        let (_, mut r) = run(rotation(&[1, 1, 1]), 4, |_| true);
        r.add_at_back(user(4), 1);
        let (next, _) = run(r, 4, |_| true);
        assert_eq!(
            next,
            members(&[2, 3, 1, 4]),
            "after everyone already in line"
        );
    }

    #[test]
    fn a_member_joining_mid_stream_gets_one_of_the_next_three_leads_and_no_burst() {
        let (_, mut r) = run(rotation(&[1, 1]), 5, |_| true);
        r.add_at_back(user(3), 1);
        let (next, _) = run(r, 9, |_| true);
        assert_eq!(
            next[..3].iter().filter(|&&m| m == user(3)).count(),
            1,
            "{next:?}"
        );
        assert!(next.windows(2).all(|w| w[0] != w[1]), "no burst: {next:?}");
        for n in 1..=3 {
            assert_eq!(
                next.iter().filter(|&&m| m == user(n)).count(),
                3,
                "{next:?}"
            );
        }
    }

    #[test]
    fn removing_a_member_changes_nobody_elses_place() {
        let (_, mut r) = run(rotation(&[1, 1, 1, 1]), 2, |_| true);
        r.remove(user(3));
        let (next, _) = run(r, 4, |_| true);
        assert_eq!(next, members(&[4, 1, 2, 4]));
    }

    #[test]
    fn a_member_whose_weight_changes_keeps_its_place() {
        let (_, mut r) = run(rotation(&[1, 1, 1]), 1, |_| true);
        r.change(user(2), 1, Some(4));
        let (next, _) = run(r.clone(), 2, |_| true);
        assert_eq!(next, members(&[2, 3]), "2 was next and still is");
        r.change(user(2), 2, None);
        let (picks, _) = run(r, 40, |_| true);
        let count = |n| picks.iter().filter(|&&m| m == user(n)).count();
        for (n, share) in [(1, 10), (2, 20), (3, 10)] {
            assert!(
                count(n).abs_diff(share) <= 1,
                "its new weight counts: {picks:?}"
            );
        }
    }

    #[test]
    fn the_rule_of_older_picks_still_replays_as_it_was() {
        // Before version 1.2 a returning member was levelled up to the current virtual
        // time: B, back after A and C took two leads each, waits behind both.
        let (_, r) = run(rotation(&[1, 1, 1]), 0, |_| true);
        let mut levelled = r.clone();
        let mut order = Vec::new();
        for _ in 0..4 {
            let (m, next) = levelled.pick_levelled(|m| m != user(2)).unwrap();
            order.push(m);
            levelled = next;
        }
        for _ in 0..3 {
            let (m, next) = levelled.pick_levelled(|_| true).unwrap();
            order.push(m);
            levelled = next;
        }
        assert_eq!(order, members(&[1, 3, 1, 3, 1, 2, 3]));
    }

    #[test]
    fn nobody_eligible_picks_nobody_and_moves_nothing() {
        assert!(rotation(&[1, 2]).pick(|_| false).is_none());
    }

    proptest! {
        #[test]
        fn every_member_gets_its_weighted_share_within_one(
            weights in proptest::collection::vec(
                prop_oneof![3 => 1u32..=6, 1 => 1u32..=100],
                1..=7,
            ),
            n in 0usize..300,
        ) {
            let (picks, _) = run(rotation(&weights), n, |_| true);
            let total: u32 = weights.iter().sum();
            for (i, w) in weights.iter().enumerate() {
                let got = picks.iter().filter(|&&m| m == user(i as u128 + 1)).count() as f64;
                let share = n as f64 * f64::from(*w) / f64::from(total);
                prop_assert!((got - share).abs() <= 1.0, "member {i} weight {w}: {got} vs {share}");
            }
        }

        /// Equal weights: after any sequence of pauses, returns, joins and removals,
        /// every lead goes to the eligible member who has waited longest (served longest
        /// ago, or joined longest ago if never served; ties by join order).
        #[test]
        fn with_equal_weights_the_member_waiting_longest_is_served(
            ops in proptest::collection::vec((0u8..6, 0u128..8), 1..120),
        ) {
            let mut r = Rotation::default();
            // The model: each member's last service (or join) and join order.
            let mut waited: Vec<(u128, u64)> = Vec::new();
            let mut away: std::collections::HashSet<u128> = Default::default();
            let mut clock = 0u64;
            let mut next_id = 1u128;
            for _ in 0..3 {
                r.add_at_back(user(next_id), 1);
                waited.push((next_id, clock));
                next_id += 1;
            }
            for (op, n) in ops {
                match op {
                    0 => {
                        r.add_at_back(user(next_id), 1);
                        waited.push((next_id, clock));
                        next_id += 1;
                    }
                    1 if waited.len() > 1 => {
                        let id = waited[(n as usize) % waited.len()].0;
                        r.remove(user(id));
                        waited.retain(|(m, _)| *m != id);
                    }
                    2 => {
                        let id = waited[(n as usize) % waited.len()].0;
                        if !away.insert(id) {
                            away.remove(&id);
                        }
                    }
                    _ => {
                        let eligible = |m: Member| !away.iter().any(|&id| m == user(id));
                        let expected = waited
                            .iter()
                            .enumerate()
                            .filter(|(_, (id, _))| !away.contains(id))
                            .min_by_key(|(i, (_, at))| (*at, *i))
                            .map(|(_, (id, _))| user(*id));
                        match r.pick(eligible) {
                            None => prop_assert_eq!(expected, None),
                            Some((m, next)) => {
                                prop_assert_eq!(Some(m), expected);
                                clock += 1;
                                for entry in waited.iter_mut() {
                                    if user(entry.0) == m {
                                        entry.1 = clock;
                                    }
                                }
                                r = next;
                            }
                        }
                    }
                }
            }
        }

        /// Weights: after members were skipped for a while, in a run in which everyone stays
        /// eligible a returning member is never more than one turn ahead of its share (plus
        /// one for rounding), and a member who stayed is behind its share by at most the
        /// turns the returning members are owed, one each (plus one for rounding).
        #[test]
        fn with_weights_a_returning_member_is_never_more_than_a_turn_ahead(
            weights in proptest::collection::vec(1u32..=5, 2..=6),
            warmup in 0usize..40,
            away in proptest::collection::vec(any::<bool>(), 6),
            n in 1usize..200,
        ) {
            let mut r = Rotation::default();
            for (i, w) in weights.iter().enumerate() {
                r.add_at_back(user(i as u128 + 1), *w);
            }
            let present = |m: Member| (1..=weights.len() as u128).any(|i| m == user(i) && !away[i as usize - 1]);
            if (0..weights.len()).any(|i| !away[i]) {
                r = run(r, warmup, present).1;
            }
            let (picks, _) = run(r, n, |_| true);
            let total: u32 = weights.iter().sum();
            // With nobody present in the warm-up, nobody was served: nobody is owed a turn.
            let returning = match (0..weights.len()).any(|i| !away[i]) {
                true => (0..weights.len()).filter(|i| away[*i]).count() as f64,
                false => 0.0,
            };
            for (i, w) in weights.iter().enumerate() {
                let got = picks.iter().filter(|&&m| m == user(i as u128 + 1)).count() as f64;
                let share = n as f64 * f64::from(*w) / f64::from(total);
                prop_assert!(got - share <= 2.0, "member {i} weight {w}: {got} vs {share}");
                prop_assert!(
                    share - got <= 2.0 + returning,
                    "member {i} weight {w}: {got} vs {share}, {returning} returning"
                );
            }
        }

        #[test]
        fn a_recorded_rotation_replays_to_the_same_pick(
            weights in proptest::collection::vec(1u32..=6, 1..=7),
            warmup in 0usize..50,
            skipped in proptest::collection::vec(any::<bool>(), 7),
        ) {
            // The decision record stores the rotation and the verdicts; reading them back
            // and picking again must give the recorded member and rotation.
            let (_, r) = run(rotation(&weights), warmup, |_| true);
            let eligible = |m: Member| r.slots.iter().position(|s| s.member == m).is_some_and(|i| !skipped[i]);
            let recorded = serde_json::to_string(&r).unwrap();
            let replayed: Rotation = serde_json::from_str(&recorded).unwrap();
            prop_assert_eq!(replayed.pick(eligible), r.pick(eligible));
        }
    }
}
