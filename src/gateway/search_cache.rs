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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{KeyId, ProviderKind};

    fn query(q: &str) -> SearchQuery {
        SearchQuery::parse(Some(q.into()), None, None, None, None, None).unwrap()
    }

    fn answer(q: &str) -> SearchAnswer {
        SearchAnswer {
            provider: ProviderKind::Brave,
            query: q.into(),
            total_results: None,
            results: Vec::new(),
            key_id: KeyId::new("key0"),
            attempts: 1,
            search_time_ms: 1.0,
            cached: false,
        }
    }

    #[test]
    fn the_oldest_answer_goes_when_the_cache_is_full() {
        let cache = SearchCache::new(Duration::from_secs(60), 2);
        for q in ["a", "b", "c"] {
            cache.put(Choice::Auto, &query(q), &answer(q));
        }
        assert!(cache.get(Choice::Auto, &query("a")).is_none());
        assert_eq!(cache.get(Choice::Auto, &query("c")).unwrap().query, "c");
        assert!(
            cache
                .get(Choice::Only(ProviderKind::Brave), &query("c"))
                .is_none(),
            "another provider choice is another search"
        );
    }

    #[test]
    fn answers_expire() {
        let cache = SearchCache::new(Duration::ZERO, 10);
        cache.put(Choice::Auto, &query("a"), &answer("a"));
        assert!(cache.get(Choice::Auto, &query("a")).is_none());
    }
}
