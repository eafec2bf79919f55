//! The optional search cache (`SEARCH_CACHE_SECS`): identical searches
//! (same provider choice, query and parameters) answered from memory for a
//! while. Bounded in entries: the oldest entry goes first. A plain lock,
//! never held across an `.await`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::search::{Choice, SearchAnswer};
use crate::providers::search::SearchQuery;

type Key = (Choice, SearchQuery);

pub struct SearchCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    answers: HashMap<Key, (Instant, SearchAnswer)>,
    /// Insertion order, for evicting the oldest.
    order: VecDeque<Key>,
}

impl SearchCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(Entries::default()),
        }
    }

    /// A fresh answer to the same search, if one is held.
    pub fn get(&self, choice: Choice, query: &SearchQuery) -> Option<SearchAnswer> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (at, answer) = entries.answers.get(&(choice, query.clone()))?;
        (at.elapsed() < self.ttl).then(|| answer.clone())
    }

    pub fn put(&self, choice: Choice, query: &SearchQuery, answer: &SearchAnswer) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let key = (choice, query.clone());
        if entries
            .answers
            .insert(key.clone(), (Instant::now(), answer.clone()))
            .is_none()
        {
            entries.order.push_back(key);
        }
        while entries.answers.len() > self.capacity {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            entries.answers.remove(&oldest);
        }
    }
}
