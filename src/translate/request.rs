//! An OpenAI Chat Completions request as the gateway's `ChatRequest`, which
//! the Anthropic provider module then writes in its own API, as it does for
//! `/api/chat`. Fields keygate translates are checked as `/api/chat` checks
//! them; a wrong type is a 400 naming the field, never silently dropped.

use serde_json::{Map, Value};

use crate::domain::{ChatMessage, ChatParts, ChatRequest, ChatRole};
use crate::error::ApiError;

/// The translated request and what the answer's rendering needs.
pub struct Translated {
    pub request: ChatRequest,
    /// The client asked for the usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
}

const UNSUPPORTED: &[&str] = &["tools", "tool_choice", "functions", "function_call"];

pub fn to_anthropic(request: &Map<String, Value>) -> Result<Translated, ApiError> {
    for field in UNSUPPORTED {
        if request.get(*field).is_some_and(|v| !v.is_null()) {
            return Err(ApiError::bad_request(format!(
                "{field}: tool calls are not supported yet when a claude- model is served through /v1/chat/completions; \
                 use /v1/messages for tools"
            )));
        }
    }
    if request
        .get("n")
        .and_then(Value::as_u64)
        .is_some_and(|n| n > 1)
    {
        return Err(ApiError::bad_request(
            "n: only one choice can be generated for claude- models",
        ));
    }
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let (system, messages) = convert_messages(request.get("messages"))?;
    let max_tokens = match ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|field| present(request, field).map(|value| (*field, value)))
    {
        None => None,
        Some((field, value)) => Some(
            value
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    ApiError::bad_request(format!("{field}: must be a positive integer"))
                })?,
        ),
    };
    let stream = match present(request, "stream") {
        None => false,
        Some(value) => value
            .as_bool()
            .ok_or_else(|| ApiError::bad_request("stream: must be true or false"))?,
    };
    let include_usage = request
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let stop_sequences = match present(request, "stop") {
        None => None,
        Some(Value::String(stop)) => Some(vec![stop.clone()]),
        Some(Value::Array(stops)) => Some(
            stops
                .iter()
                .map(|s| s.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    ApiError::bad_request("stop: must be a string or an array of strings")
                })?,
        ),
        Some(_) => {
            return Err(ApiError::bad_request(
                "stop: must be a string or an array of strings",
            ));
        }
    };
    let request = ChatRequest::assemble(ChatParts {
        model,
        max_tokens,
        system,
        messages,
        temperature: number(request, "temperature")?,
        top_p: number(request, "top_p")?,
        stop_sequences,
        stream,
    })
    .map_err(ApiError::bad_request)?;
    Ok(Translated {
        request,
        include_usage,
    })
}

/// A field that is there and not `null`.
fn present<'a>(request: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    request.get(field).filter(|v| !v.is_null())
}

fn number(request: &Map<String, Value>, field: &str) -> Result<Option<f64>, ApiError> {
    present(request, field)
        .map(|value| {
            value
                .as_f64()
                .ok_or_else(|| ApiError::bad_request(format!("{field}: must be a number")))
        })
        .transpose()
}

/// System and developer messages become the system prompt; user and
/// assistant turns keep their text.
fn convert_messages(messages: Option<&Value>) -> Result<(Vec<String>, Vec<ChatMessage>), ApiError> {
    let mut system = Vec::new();
    let mut turns = Vec::new();
    for (index, message) in messages
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if message.get("tool_calls").is_some_and(|v| !v.is_null())
            || matches!(role, "tool" | "function")
        {
            return Err(ApiError::bad_request(format!(
                "messages[{index}]: tool calls are not supported yet when a claude- model is served \
                 through /v1/chat/completions"
            )));
        }
        let text = text_of(message.get("content"))
            .map_err(|what| ApiError::bad_request(format!("messages[{index}].content: {what}")))?;
        match role {
            "system" | "developer" => system.push(text),
            "user" => turns.push(ChatMessage {
                role: ChatRole::User,
                content: Value::String(text),
            }),
            "assistant" => turns.push(ChatMessage {
                role: ChatRole::Assistant,
                content: Value::String(text),
            }),
            other => {
                return Err(ApiError::bad_request(format!(
                    "messages[{index}].role: {other:?} is not one of system, developer, user, assistant"
                )));
            }
        }
    }
    Ok((system, turns))
}

fn text_of(content: Option<&Value>) -> Result<String, &'static str> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(parts)) => parts
            .iter()
            .map(|part| match part.get("type").and_then(Value::as_str) {
                Some("text") => Ok(part.get("text").and_then(Value::as_str).unwrap_or_default()),
                _ => Err("only text parts can be translated for claude- models"),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|texts| texts.join("")),
        Some(_) => Err("must be a string or an array of content parts"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn translate(request: Value) -> Result<Value, ApiError> {
        let Value::Object(map) = request else {
            panic!()
        };
        to_anthropic(&map).map(|t| {
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
}
