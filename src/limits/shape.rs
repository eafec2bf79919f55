//! `check_shape`: one pass over a body that counts messages, content blocks
//! and stop sequences and measures how deep it nests, keeping nothing. It
//! runs before a rebuilt body is parsed, so a body past a limit is refused
//! before it costs more than this pass. A body that is not valid JSON passes
//! here: the parse that follows says what is wrong with it, as for any body.

use std::cell::{Cell, RefCell};
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{
    MAX_BLOCKS_PER_MESSAGE, MAX_CONTENT_BLOCKS, MAX_DEPTH, MAX_MESSAGES, MAX_STOP_SEQUENCES,
};
use crate::error::ApiError;

/// Checks the limits of `super` on a request body (`/api/chat`'s or an
/// OpenAI Chat Completions one: both keep messages in `messages` and blocks
/// or parts in each message's `content`).
pub fn check_shape(body: &[u8]) -> Result<(), ApiError> {
    let tally = Tally::default();
    let root = Node {
        depth: 0,
        place: Place::Body,
        tally: &tally,
    };
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    // Any other error is the body's syntax, which the real parse reports.
    let _ = root.deserialize(&mut deserializer);
    match tally.exceeded.into_inner() {
        Some(message) => Err(ApiError::bad_request(message)),
        None => Ok(()),
    }
}

#[derive(Default)]
struct Tally {
    blocks: Cell<usize>,
    /// The first limit exceeded; set, then the pass stops with an error.
    exceeded: RefCell<Option<String>>,
}

impl Tally {
    fn exceed<E: de::Error>(&self, message: String) -> E {
        *self.exceeded.borrow_mut() = Some(message);
        E::custom("a request limit is exceeded")
    }
}

/// Where a value sits, as far as the limits care.
#[derive(Clone, Copy)]
enum Place {
    Body,
    Messages,
    Message(usize),
    Content(usize),
    Stop(&'static str),
    Other,
}

/// A value to walk: its place and the depth of the value holding it.
#[derive(Clone, Copy)]
struct Node<'t> {
    depth: usize,
    place: Place,
    tally: &'t Tally,
}

impl<'t> Node<'t> {
    /// The depth of a container this node opens; past `MAX_DEPTH`, an error.
    fn enter<E: de::Error>(&self) -> Result<usize, E> {
        let depth = self.depth + 1;
        if depth > MAX_DEPTH {
            return Err(self.tally.exceed(format!(
                "request body: JSON nested more than {MAX_DEPTH} levels deep is not accepted"
            )));
        }
        Ok(depth)
    }

    fn child(&self, depth: usize, place: Place) -> Node<'t> {
        Node {
            depth,
            place,
            tally: self.tally,
        }
    }

    /// After the `count`th element of this array: a limit it passes.
    fn over_limit(&self, count: usize) -> Option<String> {
        match self.place {
            Place::Messages if count > MAX_MESSAGES => Some(format!(
                "messages: at most {MAX_MESSAGES} messages are accepted"
            )),
            Place::Content(index) => {
                let blocks = self.tally.blocks.get() + 1;
                self.tally.blocks.set(blocks);
                if blocks > MAX_CONTENT_BLOCKS {
                    Some(format!(
                        "messages: at most {MAX_CONTENT_BLOCKS} content blocks in all are accepted"
                    ))
                } else if count > MAX_BLOCKS_PER_MESSAGE {
                    Some(format!(
                        "messages[{index}].content: at most {MAX_BLOCKS_PER_MESSAGE} content blocks per message are accepted"
                    ))
                } else {
                    None
                }
            }
            Place::Stop(field) if count > MAX_STOP_SEQUENCES => Some(format!(
                "{field}: at most {MAX_STOP_SEQUENCES} stop sequences are accepted"
            )),
            _ => None,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = self.enter()?;
        let mut count = 0;
        loop {
            let place = match self.place {
                Place::Messages => Place::Message(count),
                _ => Place::Other,
            };
            if seq.next_element_seed(self.child(depth, place))?.is_none() {
                return Ok(());
            }
            count += 1;
            if let Some(message) = self.over_limit(count) {
                return Err(self.tally.exceed(message));
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let depth = self.enter()?;
        while let Some(key) = map.next_key_seed(KeyName)? {
            let place = match (self.place, key) {
                (Place::Body, Key::Messages) => Place::Messages,
                (Place::Body, Key::Stop(field)) => Place::Stop(field),
                (Place::Message(index), Key::Content) => Place::Content(index),
                _ => Place::Other,
            };
            map.next_value_seed(self.child(depth, place))?;
        }
        Ok(())
    }
}

/// The keys the limits look at.
#[derive(Clone, Copy)]
enum Key {
    Messages,
    Content,
    Stop(&'static str),
    Other,
}

struct KeyName;

impl<'de> DeserializeSeed<'de> for KeyName {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyName {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E>(self, key: &str) -> Result<Key, E> {
        Ok(match key {
            "messages" => Key::Messages,
            "content" => Key::Content,
            "stop" => Key::Stop("stop"),
            "stop_sequences" => Key::Stop("stop_sequences"),
            _ => Key::Other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message_of(body: &str) -> Option<String> {
        check_shape(body.as_bytes()).err().map(|e| e.message)
    }

    fn repeat(item: &str, n: usize) -> String {
        vec![item; n].join(",")
    }

    fn blocks_in(messages: &[usize]) -> String {
        let messages: Vec<String> = messages
            .iter()
            .map(|n| format!(r#"{{"role":"user","content":[{}]}}"#, repeat("{}", *n)))
            .collect();
        format!(r#"{{"messages":[{}]}}"#, messages.join(","))
    }

    #[test]
    fn messages_are_counted() {
        let message = r#"{"role":"user","content":"hi"}"#;
        let at_limit = format!(r#"{{"messages":[{}]}}"#, repeat(message, MAX_MESSAGES));
        assert_eq!(message_of(&at_limit), None);
        let over = format!(r#"{{"messages":[{}]}}"#, repeat(message, MAX_MESSAGES + 1));
        assert_eq!(
            message_of(&over).unwrap(),
            "messages: at most 10000 messages are accepted"
        );
    }

    #[test]
    fn blocks_are_counted_per_message_and_in_all() {
        assert_eq!(message_of(&blocks_in(&[MAX_BLOCKS_PER_MESSAGE, 5])), None);
        assert_eq!(
            message_of(&blocks_in(&[3, MAX_BLOCKS_PER_MESSAGE + 1])).unwrap(),
            "messages[1].content: at most 10000 content blocks per message are accepted"
        );
        let per_message = MAX_CONTENT_BLOCKS / MAX_BLOCKS_PER_MESSAGE;
        let mut all = vec![MAX_BLOCKS_PER_MESSAGE; per_message];
        assert_eq!(message_of(&blocks_in(&all)), None);
        all.push(1);
        assert_eq!(
            message_of(&blocks_in(&all)).unwrap(),
            "messages: at most 100000 content blocks in all are accepted"
        );
    }

    #[test]
    fn stop_sequences_are_counted_under_either_name() {
        for field in ["stop", "stop_sequences"] {
            let at_limit = format!(r#"{{"{field}":[{}]}}"#, repeat(r#""x""#, 1_000));
            assert_eq!(message_of(&at_limit), None);
            let over = format!(r#"{{"{field}":[{}]}}"#, repeat(r#""x""#, 1_001));
            assert_eq!(
                message_of(&over).unwrap(),
                format!("{field}: at most 1000 stop sequences are accepted")
            );
        }
    }

    #[test]
    fn depth_is_measured_anywhere() {
        let nested = |levels: usize| {
            // The body's object is level 1.
            format!(
                r#"{{"metadata":{}1{}}}"#,
                "[".repeat(levels - 1),
                "]".repeat(levels - 1)
            )
        };
        assert_eq!(message_of(&nested(MAX_DEPTH)), None);
        assert_eq!(
            message_of(&nested(MAX_DEPTH + 1)).unwrap(),
            "request body: JSON nested more than 64 levels deep is not accepted"
        );
    }

    #[test]
    fn only_the_request_s_own_messages_and_content_count() {
        // Arrays of the same names deeper in the body are content, not structure.
        let inner = format!(r#"{{"messages":[{}]}}"#, repeat("1", MAX_MESSAGES + 1));
        let body = format!(r#"{{"messages":[{{"role":"user","content":[{inner}]}}]}}"#);
        assert_eq!(message_of(&body), None);
        let content_at_top = format!(r#"{{"content":[{}]}}"#, repeat("1", MAX_CONTENT_BLOCKS + 1));
        assert_eq!(message_of(&content_at_top), None);
    }

    #[test]
    fn invalid_json_is_left_to_the_parse() {
        assert_eq!(message_of(r#"{"messages": ["#), None);
        assert_eq!(message_of("[1, 2]"), None);
    }
}
