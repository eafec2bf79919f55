//! Bounded memory per request. `/api/chat` and a `claude-` model on
//! `/v1/chat/completions` rebuild the client's body in another API's shape;
//! the pass-through routes only read a few fields and send the bytes on.
//! Rebuilding costs memory per message, per content block and per value
//! kept, not per byte: a 32 MiB body of 600,000 one-character text blocks
//! once took 1.2 GB to rebuild. Three things bound it:
//!
//! - the limits below, checked by `check_shape` in one pass over the body
//!   that builds nothing, before it is parsed;
//! - conversion that keeps content blocks as their original bytes
//!   (`serde_json::value::RawValue`) and reads fields without a tree
//!   (`raw_json`), so a rebuilt body costs about two copies of its bytes;
//! - `ConversionGate`: only a few large bodies are converted at once.
//!
//! The parts:
//!
//! - `shape`: the one pass that checks the limits.
//! - `gate`: the semaphore for large bodies.

mod gate;
mod shape;

pub use gate::{ConversionGate, GateSettings, Turn};
pub use shape::check_shape;

/// Messages in one rebuilt request. Long agent sessions reach a few
/// thousand; each message costs a few dozen bytes besides its content.
pub const MAX_MESSAGES: usize = 10_000;

/// Content blocks (or OpenAI content parts) in one message.
pub const MAX_BLOCKS_PER_MESSAGE: usize = 10_000;

/// Content blocks in all messages together. Each kept block costs its bytes
/// plus about 32 bytes; without a bound, a body of empty blocks (`{}`, three
/// bytes each) would cost more than ten times its size.
pub const MAX_CONTENT_BLOCKS: usize = 100_000;

/// Stop sequences (`stop_sequences`, or OpenAI's `stop`). OpenAI accepts 4
/// and real clients send a handful; each is a string kept for the rebuild.
pub const MAX_STOP_SEQUENCES: usize = 1_000;

/// How deep JSON may nest (the body's object is level 1, a content block's
/// object level 5). Real tool inputs and schemas stay far below; the bound
/// keeps every recursive reader of a rebuilt body shallow.
pub const MAX_DEPTH: usize = 64;
