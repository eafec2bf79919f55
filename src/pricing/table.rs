//! `PriceTable`: the built-in prices with a price file's over them, and the
//! lookup of a model's family. `Prices`: the handle every request reads the
//! table through; a reload swaps the whole table at once (`arc-swap`), so a
//! request never waits on a lock and never sees half a table.
//!
//! Models are matched by the longest id prefix that ends at a `-` boundary,
//! so dated snapshots (`claude-sonnet-4-5-20250929`, `gpt-4o-2024-08-06`)
//! and aliases (`-latest`) find their family. A suffix that names another
//! model is not a family member: a version number (`claude-opus-5-5` is not
//! `claude-opus-5`) or a variant word such as `-pro` or `-mini` (a
//! `gpt-5.4-pro` priced as `gpt-5.4` would be billed a twelfth of its
//! price, in silence). Such a model is unpriced until it has a row.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Serialize;

use super::built_in::{BUILT_IN, BuiltInPrice};
use super::unpriced::UnpricedModels;
use super::{Cost, Price, cost, total_nanos};
use crate::domain::{ProviderKind, Usage};
use crate::scrub::Scrubber;

/// Where a price came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Origin {
    #[serde(rename = "built in")]
    BuiltIn,
    #[serde(rename = "price file")]
    PriceFile,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PriceEntry {
    pub provider: ProviderKind,
    pub id: String,
    pub name: String,
    /// Further prefixes that resolve to this entry.
    pub aliases: Vec<String>,
    pub price: Price,
    pub origin: Origin,
    /// The day the price was checked (`YYYY-MM-DD`): a built-in row's
    /// check, or the day the price file was last changed; `None` when
    /// nobody recorded it.
    pub checked: Option<String>,
    /// The page a built-in price was checked against, or the price file.
    pub source: String,
}

impl PriceEntry {
    fn built_in(row: &BuiltInPrice) -> Self {
        Self {
            provider: row.provider,
            id: row.id.to_string(),
            name: row.name.to_string(),
            aliases: row.aliases.iter().map(|a| a.to_string()).collect(),
            price: row.price,
            origin: Origin::BuiltIn,
            checked: Some(row.checked.to_string()).filter(|day| !day.is_empty()),
            source: row.source.to_string(),
        }
    }

    /// The id and aliases: every prefix that resolves to this entry.
    fn prefixes(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

/// Suffix words that name a different model, not a snapshot of this one.
const VARIANT_WORDS: &[&str] = &[
    "pro",
    "mini",
    "nano",
    "audio",
    "realtime",
    "search",
    "transcribe",
    "tts",
    "codex",
    "instruct",
];

pub(super) fn in_family(model: &str, prefix: &str) -> bool {
    let Some(rest) = model.strip_prefix(prefix) else {
        return false;
    };
    let Some(rest) = rest.strip_prefix('-') else {
        return rest.is_empty();
    };
    let segment = rest.split('-').next().unwrap_or_default();
    let version = (1..=3).contains(&segment.len()) && segment.bytes().all(|b| b.is_ascii_digit());
    !version && !VARIANT_WORDS.contains(&segment)
}

#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    /// Price-file rows first: on a tie they win.
    entries: Vec<PriceEntry>,
    /// Each provider's prefixes (ids and aliases), to the first entry that
    /// has it. Every request prices through `find`: with a LiteLLM price
    /// file of a few thousand rows a scan of `entries` would cost each
    /// request microseconds, a lookup per `-` of the model id does not.
    by_prefix: HashMap<ProviderKind, HashMap<String, usize>>,
}

impl Default for PriceTable {
    fn default() -> Self {
        Self::built_in()
    }
}

impl PriceTable {
    pub fn built_in() -> Self {
        Self::indexed(BUILT_IN.iter().map(PriceEntry::built_in).collect())
    }

    fn indexed(entries: Vec<PriceEntry>) -> Self {
        let mut by_prefix = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            for prefix in entry.prefixes() {
                // The first entry with a prefix keeps it: a price file's
                // row before the built-in one.
                by_prefix
                    .entry(entry.provider)
                    .or_insert_with(HashMap::new)
                    .entry(prefix.to_string())
                    .or_insert(index);
            }
        }
        Self { entries, by_prefix }
    }

    /// The built-in table with `file` over it: a file row replaces the
    /// built-in row of the same provider and id, and adds the others.
    pub fn with_file(file: Vec<PriceEntry>) -> Self {
        let built_in = BUILT_IN
            .iter()
            .filter(|row| {
                !file
                    .iter()
                    .any(|entry| entry.provider == row.provider && entry.id == row.id)
            })
            .map(PriceEntry::built_in)
            .collect::<Vec<_>>();
        let mut entries = file;
        entries.extend(built_in);
        Self::indexed(entries)
    }

    pub fn entries(&self) -> &[PriceEntry] {
        &self.entries
    }

    /// The entry that prices `model`: the longest matching prefix; a price
    /// file's row before a built-in one of the same length.
    pub fn find(&self, provider: ProviderKind, model: &str) -> Option<&PriceEntry> {
        // A prefix a model can belong to is the whole id or ends before one
        // of its `-`; tried longest first, so the first family found is the
        // longest match.
        let prefixes = self.by_prefix.get(&provider)?;
        std::iter::once(model.len())
            .chain(model.rmatch_indices('-').map(|(at, _)| at))
            .map(|end| &model[..end])
            .filter(|prefix| in_family(model, prefix))
            .find_map(|prefix| prefixes.get(prefix))
            .and_then(|&index| self.entries.get(index))
    }

    /// The price of an answer: the answering model's, else the requested
    /// one's (an upstream may name a snapshot keygate has never seen).
    pub fn price_of(
        &self,
        provider: ProviderKind,
        answered: &str,
        requested: &str,
    ) -> Option<&Price> {
        self.find(provider, answered)
            .or_else(|| self.find(provider, requested))
            .map(|entry| &entry.price)
    }

    /// Cost of `usage` in nano-dollars, priced as `BilledUsage::new` prices
    /// it; `None` when neither model has a price.
    pub fn cost_nanos(
        &self,
        provider: ProviderKind,
        answered: &str,
        requested: &str,
        usage: &Usage,
    ) -> Option<u64> {
        self.price_of(provider, answered, requested)
            .map(|price| total_nanos(price, usage))
    }

    /// Cost of `usage` on `model`, or `None` for a model with no price.
    pub fn cost_of(&self, provider: ProviderKind, model: &str, usage: &Usage) -> Option<Cost> {
        self.find(provider, model)
            .map(|entry| cost(&entry.price, usage))
    }
}

/// The prices in force and the models found without one. Cheap to clone;
/// every clone sees the same table.
#[derive(Clone)]
pub struct Prices {
    table: Arc<ArcSwap<PriceTable>>,
    unpriced: Arc<UnpricedModels>,
}

impl Prices {
    pub fn new(table: PriceTable, scrubber: Arc<Scrubber>) -> Self {
        Self {
            table: Arc::new(ArcSwap::from_pointee(table)),
            unpriced: Arc::new(UnpricedModels::new(scrubber)),
        }
    }

    /// The table in force (a request holds it for as long as it prices).
    pub fn table(&self) -> Arc<PriceTable> {
        self.table.load_full()
    }

    /// Puts `table` in force for every request that starts pricing after.
    pub fn replace(&self, table: PriceTable) {
        self.table.store(Arc::new(table));
    }

    pub fn unpriced(&self) -> &UnpricedModels {
        &self.unpriced
    }
}
