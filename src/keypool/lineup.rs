//! A set of slot indexes ready to serve, ordered the way a strategy picks
//! from it, answering "which next?" without visiting the others.
//!
//! Ranked strategies keep `(rank, index)` in a B-tree: the best rank is the
//! first entry, and within one rank the earliest from the round-robin
//! cursor is one range lookup away. `random` keeps a bag (a vector with
//! each member's position) so that a uniform draw is one index.
//!
//! The slots a request may not take (tried, spent) are few (at most a
//! couple per attempt), so skipping them costs at most that many extra
//! steps.

use std::collections::BTreeSet;
use std::ops::Bound;

use rand::Rng;

use super::select::{Rank, Strategy};

/// Draws `random` makes before listing the admissible members instead:
/// only a bag made almost entirely of excluded slots gets that far.
const RANDOM_DRAWS: usize = 16;

pub(super) enum Lineup {
    Ranked(BTreeSet<(Rank, usize)>),
    Bag(Bag),
}

impl Lineup {
    pub fn new(strategy: Strategy) -> Self {
        match strategy {
            Strategy::Random => Lineup::Bag(Bag::default()),
            _ => Lineup::Ranked(BTreeSet::new()),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Lineup::Ranked(set) => set.len(),
            Lineup::Bag(bag) => bag.members.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, rank: Rank, index: usize) -> bool {
        match self {
            Lineup::Ranked(set) => set.contains(&(rank, index)),
            Lineup::Bag(bag) => bag.position(index).is_some(),
        }
    }

    pub fn insert(&mut self, rank: Rank, index: usize) {
        match self {
            Lineup::Ranked(set) => {
                set.insert((rank, index));
            }
            Lineup::Bag(bag) => bag.insert(index),
        }
    }

    pub fn remove(&mut self, rank: Rank, index: usize) {
        match self {
            Lineup::Ranked(set) => {
                set.remove(&(rank, index));
            }
            Lineup::Bag(bag) => bag.remove(index),
        }
    }

    /// The member a pick takes among those `admit` lets through: the best
    /// rank, and in it the first at or after `cursor` (wrapping); under
    /// `random` any, with equal chance.
    pub fn choose(&self, cursor: usize, admit: impl Fn(usize) -> bool) -> Option<usize> {
        match self {
            Lineup::Ranked(set) => first_ranked(set, cursor, admit),
            Lineup::Bag(bag) => bag.draw(admit),
        }
    }
}

fn first_ranked(
    set: &BTreeSet<(Rank, usize)>,
    cursor: usize,
    admit: impl Fn(usize) -> bool,
) -> Option<usize> {
    let mut group = set.first()?.0;
    loop {
        let from_cursor = set.range((group, cursor)..=(group, usize::MAX));
        let before_cursor = set.range((group, 0)..(group, cursor));
        if let Some(&(_, index)) = from_cursor.chain(before_cursor).find(|(_, i)| admit(*i)) {
            return Some(index);
        }
        // Every member of this rank is excluded: the next rank.
        let after = (Bound::Excluded((group, usize::MAX)), Bound::Unbounded);
        group = set.range(after).next()?.0;
    }
}

/// Members in any order, with each one's place for O(1) removal.
#[derive(Default)]
pub(super) struct Bag {
    members: Vec<usize>,
    /// `places[index]`: where `index` is in `members`, if it is.
    places: Vec<Option<u32>>,
}

impl Bag {
    fn position(&self, index: usize) -> Option<usize> {
        self.places
            .get(index)
            .copied()
            .flatten()
            .map(|p| p as usize)
    }

    fn insert(&mut self, index: usize) {
        if self.position(index).is_some() {
            return;
        }
        if self.places.len() <= index {
            self.places.resize(index + 1, None);
        }
        self.places[index] = u32::try_from(self.members.len()).ok();
        self.members.push(index);
    }

    fn remove(&mut self, index: usize) {
        let Some(place) = self.position(index) else {
            return;
        };
        self.members.swap_remove(place);
        if let Some(&moved) = self.members.get(place) {
            self.places[moved] = u32::try_from(place).ok();
        }
        self.places[index] = None;
    }

    fn draw(&self, admit: impl Fn(usize) -> bool) -> Option<usize> {
        if self.members.is_empty() {
            return None;
        }
        let mut rng = rand::thread_rng();
        for _ in 0..RANDOM_DRAWS {
            let index = self.members[rng.gen_range(0..self.members.len())];
            if admit(index) {
                return Some(index);
            }
        }
        let admitted: Vec<usize> = self.members.iter().copied().filter(|&i| admit(i)).collect();
        (!admitted.is_empty()).then(|| admitted[rng.gen_range(0..admitted.len())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranked_takes_the_best_rank_then_the_first_from_the_cursor() {
        let mut lineup = Lineup::new(Strategy::LeastUsed);
        for (rank, index) in [((1, 0), 0), ((0, 0), 2), ((0, 0), 5), ((0, 0), 7)] {
            lineup.insert(rank, index);
        }
        assert_eq!(lineup.choose(0, |_| true), Some(2));
        assert_eq!(lineup.choose(3, |_| true), Some(5));
        assert_eq!(lineup.choose(8, |_| true), Some(2), "wraps around");
        assert_eq!(lineup.choose(0, |i| i == 0), Some(0), "next rank");
        assert_eq!(lineup.choose(0, |_| false), None);
    }

    #[test]
    fn the_bag_draws_only_admitted_members_and_forgets_removed_ones() {
        let mut lineup = Lineup::new(Strategy::Random);
        for index in 0..10 {
            lineup.insert((0, 0), index);
        }
        lineup.remove((0, 0), 3);
        lineup.remove((0, 0), 9);
        assert_eq!(lineup.len(), 8);
        assert!(!lineup.contains((0, 0), 3));
        for _ in 0..200 {
            let drawn = lineup.choose(0, |i| i != 4);
            assert!(drawn.is_some_and(|i| i != 3 && i != 9 && i != 4));
        }
        assert_eq!(lineup.choose(0, |i| i == 7), Some(7));
        assert_eq!(lineup.choose(0, |i| i == 3), None);
    }
}
