//! An OpenAI Chat Completions request as an Anthropic Messages request.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// What the translated call needs besides the body.
pub struct Translated {
    pub body: Bytes,
    pub stream: bool,
    /// The client asked for the usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    pub model: String,
}

const DEFAULT_MAX_TOKENS: u64 = 1024;
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
    let max_tokens = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|f| request.get(*f).and_then(Value::as_u64))
        .unwrap_or(DEFAULT_MAX_TOKENS);
    let stream = request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let include_usage = request
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);

    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("max_tokens".into(), json!(max_tokens));
    body.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        body.insert("system".into(), json!(system.join("\n\n")));
    }
    for field in ["temperature", "top_p"] {
        if let Some(value) = request.get(field).filter(|v| !v.is_null()) {
            body.insert(field.into(), value.clone());
        }
    }
    match request.get("stop") {
        Some(Value::String(stop)) => {
            body.insert("stop_sequences".into(), json!([stop]));
        }
        Some(Value::Array(stops)) => {
            body.insert("stop_sequences".into(), Value::Array(stops.clone()));
        }
        _ => {}
    }
    if stream {
        body.insert("stream".into(), json!(true));
    }
    Ok(Translated {
        body: Bytes::from(Value::Object(body).to_string()),
        stream,
        include_usage,
        model,
    })
}

/// System and developer messages become the system prompt; user and
/// assistant turns keep their text.
fn convert_messages(messages: Option<&Value>) -> Result<(Vec<String>, Vec<Value>), ApiError> {
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
            "user" | "assistant" => turns.push(json!({"role": role, "content": text})),
            other => {
                return Err(ApiError::bad_request(format!(
                    "messages[{index}].role: {other:?} is not one of system, developer, user, assistant"
                )));
            }
        }
    }
    if turns.is_empty() {
        return Err(ApiError::bad_request(
            "messages: must contain at least one user or assistant message",
        ));
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

    fn translate(request: Value) -> Result<Value, ApiError> {
        let Value::Object(map) = request else {
            panic!()
        };
        to_anthropic(&map).map(|t| serde_json::from_slice(&t.body).unwrap())
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
