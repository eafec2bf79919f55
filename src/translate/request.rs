//! An OpenAI Chat Completions request as the gateway's `ChatRequest`, which
//! the Anthropic provider module then writes in its own API, as it does for
//! `/api/chat`. Fields keygate translates are checked as `/api/chat` checks
//! them; a wrong type is a 400 naming the field, never silently dropped.
//!
//! The body is read where it lies: each field is a `RawValue` borrowed from
//! the client's bytes and read as the type wanted (`raw_json`), and only the
//! texts are copied out. Nothing is built into a JSON tree, so a large body
//! costs its bytes and the texts, once.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::domain::{ChatContent, ChatMessage, ChatParts, ChatRequest, ChatRole};
use crate::error::ApiError;
use crate::fields as checks;
use crate::raw_json::{as_string, as_u64, include_usage, object};

/// The translated request and what the answer's rendering needs.
pub struct Translated {
    pub request: ChatRequest,
    /// The client asked for the usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
}

/// The fields read from the body; `null` counts as absent (`Option`), the
/// rest of the body is skipped unread.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow)]
    model: Option<&'a RawValue>,
    #[serde(borrow)]
    messages: Option<Vec<&'a RawValue>>,
    #[serde(borrow)]
    tools: Option<&'a RawValue>,
    #[serde(borrow)]
    tool_choice: Option<&'a RawValue>,
    #[serde(borrow)]
    functions: Option<&'a RawValue>,
    #[serde(borrow)]
    function_call: Option<&'a RawValue>,
    #[serde(borrow)]
    n: Option<&'a RawValue>,
    #[serde(borrow)]
    max_completion_tokens: Option<&'a RawValue>,
    #[serde(borrow)]
    max_tokens: Option<&'a RawValue>,
    #[serde(borrow)]
    stream: Option<&'a RawValue>,
    #[serde(borrow)]
    stream_options: Option<&'a RawValue>,
    #[serde(borrow)]
    stop: Option<&'a RawValue>,
    #[serde(borrow)]
    temperature: Option<&'a RawValue>,
    #[serde(borrow)]
    top_p: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    role: Option<&'a RawValue>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    #[serde(borrow)]
    tool_calls: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    text: Option<&'a RawValue>,
}

/// Translates a body already known to be a JSON object whose `messages` is
/// a non-empty array (`SdkFields` checks that first).
pub fn to_anthropic(body: &[u8]) -> Result<Translated, ApiError> {
    let fields: Fields = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let unsupported = [
        ("tools", fields.tools),
        ("tool_choice", fields.tool_choice),
        ("functions", fields.functions),
        ("function_call", fields.function_call),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, value)| value.is_some()) {
        return Err(ApiError::bad_request(format!(
            "{field}: tool calls are not supported yet when a claude- model is served through /v1/chat/completions; \
             use /v1/messages for tools"
        )));
    }
    if fields.n.and_then(as_u64).is_some_and(|n| n > 1) {
        return Err(ApiError::bad_request(
            "n: only one choice can be generated for claude- models",
        ));
    }
    let model = fields.model.and_then(as_string).unwrap_or_default();
    let (system, messages) = convert_messages(fields.messages.as_deref().unwrap_or_default())?;
    let max_tokens = [
        ("max_completion_tokens", fields.max_completion_tokens),
        ("max_tokens", fields.max_tokens),
    ]
    .into_iter()
    .find_map(|(field, value)| value.map(|value| (field, value)))
    .map(|(field, value)| checks::max_tokens(field, &small_value(value)))
    .transpose()?;
    let stream = fields
        .stream
        .map(|value| checks::stream(&small_value(value)))
        .transpose()?
        .unwrap_or(false);
    let include_usage = fields.stream_options.is_some_and(include_usage);
    let request = ChatRequest::assemble(ChatParts {
        model,
        max_tokens,
        system,
        messages,
        temperature: number(fields.temperature, "temperature")?,
        top_p: number(fields.top_p, "top_p")?,
        stop_sequences: fields
            .stop
            .map(|stop| checks::stop(&small_value(stop)))
            .transpose()?,
        stream,
    })
    .map_err(ApiError::bad_request)?;
    Ok(Translated {
        request,
        include_usage,
    })
}

fn number(value: Option<&RawValue>, field: &str) -> Result<Option<f64>, ApiError> {
    value
        .map(|value| checks::number(field, &small_value(value)))
        .transpose()
}

/// A scalar field (or a short list: `crate::limits` bounds how many stop
/// sequences) read as JSON for `crate::fields`; unreadable JSON cannot get
/// here, the body was parsed already.
fn small_value(raw: &RawValue) -> serde_json::Value {
    serde_json::from_str(raw.get()).unwrap_or_default()
}

/// System and developer messages become the system prompt; user and
/// assistant turns keep their text.
fn convert_messages(messages: &[&RawValue]) -> Result<(Vec<String>, Vec<ChatMessage>), ApiError> {
    let mut system = Vec::new();
    let mut turns = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        let message: Message = object(message).ok_or_else(|| {
            ApiError::bad_request(format!("messages[{index}]: must be a JSON object"))
        })?;
        let role = message.role.and_then(as_string).unwrap_or_default();
        if message.tool_calls.is_some() || matches!(role.as_str(), "tool" | "function") {
            return Err(ApiError::bad_request(format!(
                "messages[{index}]: tool calls are not supported yet when a claude- model is served \
                 through /v1/chat/completions"
            )));
        }
        let text = text_of(message.content)
            .map_err(|what| ApiError::bad_request(format!("messages[{index}].content: {what}")))?;
        let role = match role.as_str() {
            "system" | "developer" => {
                system.push(text);
                continue;
            }
            "user" => ChatRole::User,
            "assistant" => ChatRole::Assistant,
            other => {
                return Err(ApiError::bad_request(format!(
                    "messages[{index}].role: {other:?} is not one of system, developer, user, assistant"
                )));
            }
        };
        turns.push(ChatMessage {
            role,
            content: ChatContent::Text(text),
        });
    }
    Ok((system, turns))
}

/// A message's text: a string, or its text parts joined.
fn text_of(content: Option<&RawValue>) -> Result<String, &'static str> {
    const ONLY_TEXT: &str = "only text parts can be translated for claude- models";
    let Some(content) = content else {
        return Ok(String::new());
    };
    match content.get().as_bytes().first() {
        Some(b'"') => as_string(content).ok_or("must be a string or an array of content parts"),
        Some(b'[') => {
            let parts: Vec<&RawValue> =
                serde_json::from_str(content.get()).map_err(|_| ONLY_TEXT)?;
            // The parts' JSON is longer than their text: one allocation.
            let mut text = String::with_capacity(content.get().len());
            for part in parts {
                let part: Part = object(part).ok_or(ONLY_TEXT)?;
                if part.kind.and_then(as_string).as_deref() != Some("text") {
                    return Err(ONLY_TEXT);
                }
                if let Some(piece) = part.text.and_then(as_string) {
                    text.push_str(&piece);
                }
            }
            Ok(text)
        }
        _ => Err("must be a string or an array of content parts"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn translate(request: Value) -> Result<Value, ApiError> {
        to_anthropic(&serde_json::to_vec(&request).unwrap()).map(|t| {
            serde_json::from_slice(&crate::providers::anthropic::request_body(&t.request)).unwrap()
        })
    }

    #[test]
    fn text_system_stop_and_sampling_are_translated() {
        let body = translate(json!({
            "model": "claude-sonnet-4-20250514",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
            ],
            "stop": "END", "temperature": 0.3, "max_tokens": 50, "stream": true,
        }))
        .unwrap();
        assert_eq!(
            body,
            json!({"model": "claude-sonnet-4-20250514", "max_tokens": 50, "system": "Be brief.",
                   "messages": [{"role": "user", "content": "Hi"}], "temperature": 0.3,
                   "stop_sequences": ["END"], "stream": true})
        );
    }

    #[test]
    fn tools_are_refused_clearly() {
        let error = translate(
            json!({"model": "claude-x", "messages": [{"role": "user", "content": "Hi"}],
                                     "tools": [{"type": "function", "function": {"name": "f"}}]}),
        )
        .err()
        .unwrap();
        assert_eq!(error.status, 400);
        assert!(
            error
                .message
                .starts_with("tools: tool calls are not supported")
        );
    }

    #[test]
    fn parts_are_joined_escapes_read_and_nulls_absent() {
        let body = translate(json!({
            "model": "claude-x", "tools": null, "temperature": null,
            "messages": [
                {"role": "developer", "content": [{"type": "text", "text": "a\"b"}]},
                {"role": "user", "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo é"}]},
                {"role": "assistant", "content": null, "tool_calls": null},
                {"role": "user", "content": "x\ny"},
            ],
            "stop": ["A", "B"],
        }))
        .unwrap();
        assert_eq!(
            body,
            json!({"model": "claude-x", "max_tokens": 1024, "system": "a\"b",
                   "messages": [{"role": "user", "content": "Hello é"},
                                {"role": "assistant", "content": ""},
                                {"role": "user", "content": "x\ny"}],
                   "stop_sequences": ["A", "B"]})
        );
    }

    #[test]
    fn wrong_types_are_400s_naming_the_field() {
        let cases = [
            (
                json!({"max_tokens": [1]}),
                "max_tokens: must be a positive integer",
            ),
            (
                json!({"max_completion_tokens": 0}),
                "max_completion_tokens: must be a positive integer",
            ),
            (json!({"stream": "yes"}), "stream: must be true or false"),
            (
                json!({"temperature": {"t": 1}}),
                "temperature: must be a number",
            ),
            (
                json!({"stop": [1]}),
                "stop: must be a string or an array of strings",
            ),
            (
                json!({"n": 2}),
                "n: only one choice can be generated for claude- models",
            ),
        ];
        for (fields, expected) in cases {
            let mut request =
                json!({"model": "claude-x", "messages": [{"role": "user", "content": "Hi"}]});
            request
                .as_object_mut()
                .unwrap()
                .extend(fields.as_object().unwrap().clone());
            assert_eq!(translate(request).err().unwrap().message, expected);
        }
        let messages = [
            (json!("Hi"), "messages[0]: must be a JSON object"),
            (
                json!({"role": "user", "content": [{"type": "image_url"}]}),
                "messages[0].content: only text parts can be translated for claude- models",
            ),
            (
                json!({"role": "user", "content": ["Hi"]}),
                "messages[0].content: only text parts can be translated for claude- models",
            ),
            (
                json!({"role": "user", "content": [["text", "Hi"]]}),
                "messages[0].content: only text parts can be translated for claude- models",
            ),
            (json!(["user", "Hi"]), "messages[0]: must be a JSON object"),
            (
                json!({"role": "user", "content": 5}),
                "messages[0].content: must be a string or an array of content parts",
            ),
            (
                json!({"role": "tool", "content": "x"}),
                "messages[0]: tool calls are not supported yet when a claude- model is served through /v1/chat/completions",
            ),
            (
                json!({"role": "robot", "content": "x"}),
                "messages[0].role: \"robot\" is not one of system, developer, user, assistant",
            ),
        ];
        for (message, expected) in messages {
            let request = json!({"model": "claude-x", "messages": [message]});
            assert_eq!(translate(request).err().unwrap().message, expected);
        }
    }
}
