//! Between the gateway's chat shape and Anthropic's Messages API.

use bytes::Bytes;

use super::wire::{Message, MessagesRequest, MessagesResponse, WireUsage};
use crate::domain::{ChatReply, ChatRequest, ChatRole, Failure, Usage};

/// The upstream request body, serialised once and reused for every attempt.
pub fn request_body(request: &ChatRequest) -> Bytes {
    let wire = MessagesRequest {
        model: &request.model,
        max_tokens: request.max_tokens,
        messages: request
            .messages
            .iter()
            .map(|m| Message {
                role: match m.role {
                    ChatRole::User => "user",
                    ChatRole::Assistant => "assistant",
                },
                content: &m.content,
            })
            .collect(),
        system: request.system.as_deref(),
        temperature: request.temperature,
        top_p: request.top_p,
        stop_sequences: request.stop_sequences.as_deref(),
        stream: request.stream,
    };
    // Written once into a buffer of the right size; serialising strings,
    // numbers and raw JSON cannot fail.
    let mut body = Vec::with_capacity(request.encoded_len_hint());
    match serde_json::to_writer(&mut body, &wire) {
        Ok(()) => Bytes::from(body),
        Err(_) => Bytes::new(),
    }
}

/// A 2xx body read as a reply; anything else is the provider's fault.
pub fn reply_from_bytes(body: &[u8]) -> Result<ChatReply, Failure> {
    serde_json::from_slice(body)
        .map(reply_from_wire)
        .map_err(|e| Failure::malformed(&e.to_string()))
}

/// The model and usage of a whole answer passed through untouched: only
/// those two fields are read (the rest is skipped, not built).
pub fn usage_from_bytes(body: &[u8]) -> Result<(String, Usage), Failure> {
    #[derive(serde::Deserialize)]
    struct Accounted {
        model: String,
        usage: WireUsage,
    }
    let reply: Accounted =
        serde_json::from_slice(body).map_err(|e| Failure::malformed(&e.to_string()))?;
    Ok((reply.model, usage_from_wire(&reply.usage)))
}

/// Checks a `count_tokens` answer (`{"input_tokens": N}`): a count costs
/// nothing, but a garbled one is still the attempt's failure.
pub fn check_token_count(body: &[u8]) -> Result<u64, Failure> {
    #[derive(serde::Deserialize)]
    struct Counted {
        input_tokens: u64,
    }
    serde_json::from_slice::<Counted>(body)
        .map(|counted| counted.input_tokens)
        .map_err(|e| Failure::malformed(&e.to_string()))
}

fn usage_from_wire(usage: &WireUsage) -> Usage {
    Usage {
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        cache_creation_input_tokens: usage.cache_creation_input_tokens.unwrap_or(0),
        cache_creation_1h_tokens: usage
            .cache_creation
            .as_ref()
            .and_then(|c| c.ephemeral_1h_input_tokens)
            .unwrap_or(0),
        cache_read_input_tokens: usage.cache_read_input_tokens.unwrap_or(0),
        // Anthropic counts extended thinking inside `output_tokens` and
        // reports no separate figure.
        reasoning_tokens: 0,
    }
}

pub fn reply_from_wire(response: MessagesResponse) -> ChatReply {
    let content = response
        .content
        .iter()
        .filter(|block| block.kind == "text")
        .filter_map(|block| block.text.as_deref())
        .collect::<String>();
    ChatReply {
        id: response.id,
        model: response.model,
        content,
        stop_reason: response.stop_reason,
        usage: usage_from_wire(&response.usage),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ChatContent, ChatMessage};
    use serde_json::{Value, json};

    #[test]
    fn request_carries_system_and_sampling_fields() {
        let request = ChatRequest {
            model: "claude-sonnet-4-20250514".into(),
            max_tokens: 1024,
            system: Some("Be brief.".into()),
            messages: vec![ChatMessage {
                role: ChatRole::User,
                content: ChatContent::Text("Hello!".into()),
            }],
            temperature: Some(0.5),
            top_p: None,
            stop_sequences: Some(vec!["END".into()]),
            stream: false,
        };
        let bytes = request_body(&request);
        assert!(bytes.len() <= request.encoded_len_hint());
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            body,
            json!({"model":"claude-sonnet-4-20250514","max_tokens":1024,
                   "messages":[{"role":"user","content":"Hello!"}],
                   "system":"Be brief.","temperature":0.5,"stop_sequences":["END"]})
        );
    }

    #[test]
    fn reply_joins_text_blocks_and_reads_cache_usage() {
        let wire: MessagesResponse = serde_json::from_value(json!({
            "id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-20250514",
            "content":[{"type":"text","text":"Hel"},{"type":"tool_use","id":"t","name":"n","input":{}},{"type":"text","text":"lo"}],
            "stop_reason":"end_turn","stop_sequence":null,
            "usage":{"input_tokens":25,"output_tokens":86,"cache_creation_input_tokens":null,
                     "cache_read_input_tokens":7,"service_tier":"standard"}
        }))
        .unwrap();
        let reply = reply_from_wire(wire);
        assert_eq!(reply.content, "Hello");
        assert_eq!(reply.usage.cache_read_input_tokens, 7);
        assert_eq!(reply.usage.total_tokens(), 118);
    }
}
