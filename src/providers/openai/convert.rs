//! Between the gateway's chat shape and OpenAI's Chat Completions API.
//! OpenAI's `prompt_tokens` include cached ones; the gateway's `Usage`
//! counts them apart (as Anthropic does), so cached input is priced as such.

use bytes::Bytes;

use super::wire::{
    ChatCompletion, ChatCompletionRequest, Message, MessageContent, StreamOptions, WireUsage,
};
use crate::domain::{ChatReply, ChatRequest, ChatRole, Failure, Usage, UsagePatch};

pub fn request_body(request: &ChatRequest) -> Bytes {
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if let Some(system) = &request.system {
        messages.push(Message {
            role: "system",
            content: MessageContent::System(system),
        });
    }
    messages.extend(request.messages.iter().map(|m| Message {
        role: match m.role {
            ChatRole::User => "user",
            ChatRole::Assistant => "assistant",
        },
        content: MessageContent::Chat(&m.content),
    }));
    let wire = ChatCompletionRequest {
        model: &request.model,
        messages,
        max_completion_tokens: request.max_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        stop: request.stop_sequences.as_deref(),
        stream: request.stream,
        // Streams report usage only when asked; the gateway always needs it.
        stream_options: request.stream.then_some(StreamOptions {
            include_usage: true,
        }),
    };
    let mut body = Vec::with_capacity(request.encoded_len_hint());
    match serde_json::to_writer(&mut body, &wire) {
        Ok(()) => Bytes::from(body),
        Err(_) => Bytes::new(),
    }
}

pub fn reply_from_bytes(body: &[u8]) -> Result<ChatReply, Failure> {
    let completion: ChatCompletion =
        serde_json::from_slice(body).map_err(|e| Failure::malformed(&e.to_string()))?;
    let choice = completion.choices.first();
    let mut usage = Usage::default();
    if let Some(wire) = &completion.usage {
        usage.apply(&usage_patch(wire));
    }
    Ok(ChatReply {
        id: completion.id,
        model: completion.model,
        content: choice
            .and_then(|c| c.message.as_ref())
            .and_then(|m| m.content.clone())
            .unwrap_or_default(),
        stop_reason: choice
            .and_then(|c| c.finish_reason.as_deref())
            .map(stop_reason),
        usage,
    })
}

/// The model and usage of a whole answer passed through untouched: only
/// those two fields are read (the rest is skipped, not built).
pub fn usage_from_bytes(body: &[u8]) -> Result<(String, Usage), Failure> {
    #[derive(serde::Deserialize)]
    struct Accounted {
        model: String,
        #[serde(default)]
        usage: Option<WireUsage>,
    }
    let reply: Accounted =
        serde_json::from_slice(body).map_err(|e| Failure::malformed(&e.to_string()))?;
    let mut usage = Usage::default();
    if let Some(wire) = &reply.usage {
        usage.apply(&usage_patch(wire));
    }
    Ok((reply.model, usage))
}

pub fn usage_patch(usage: &WireUsage) -> UsagePatch {
    let cached = usage
        .prompt_tokens_details
        .as_ref()
        .and_then(|d| d.cached_tokens)
        .unwrap_or(0);
    let reasoning = usage
        .completion_tokens_details
        .as_ref()
        .and_then(|d| d.reasoning_tokens)
        .unwrap_or(0);
    UsagePatch {
        input_tokens: Some(usage.prompt_tokens.saturating_sub(cached)),
        output_tokens: Some(usage.completion_tokens),
        cache_creation_input_tokens: None,
        cache_creation_1h_tokens: None,
        cache_read_input_tokens: Some(cached),
        reasoning_tokens: Some(reasoning_part(reasoning, usage.completion_tokens)),
    }
}

/// Reasoning tokens as the part of the output they are: a count above the
/// output's (an upstream's mistake) is cut to it, so the ledger never
/// shows more reasoning than output.
pub(super) fn reasoning_part(reasoning: u64, output: u64) -> u64 {
    reasoning.min(output)
}

/// `/api/chat` answers in one vocabulary: Anthropic's stop reasons.
pub fn stop_reason(finish_reason: &str) -> String {
    match finish_reason {
        "stop" => "end_turn",
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        other => other,
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ChatContent, ChatMessage};
    use serde_json::{Value, json};

    #[test]
    fn system_prompt_becomes_the_first_message_and_streams_ask_for_usage() {
        let request = ChatRequest {
            model: "gpt-4o-mini".into(),
            max_tokens: 100,
            system: Some("Be brief.".into()),
            messages: vec![ChatMessage {
                role: ChatRole::User,
                content: ChatContent::Text("Hi".into()),
            }],
            temperature: None,
            top_p: None,
            stop_sequences: Some(vec!["END".into()]),
            stream: true,
        };
        let bytes = request_body(&request);
        assert!(bytes.len() <= request.encoded_len_hint());
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            body,
            json!({"model":"gpt-4o-mini","max_completion_tokens":100,"stop":["END"],"stream":true,
                   "stream_options":{"include_usage":true},
                   "messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]})
        );
    }

    #[test]
    fn cached_prompt_tokens_are_counted_apart() {
        let reply = reply_from_bytes(
            br#"{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini",
                "choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"length"}],
                "usage":{"prompt_tokens":100,"completion_tokens":5,"total_tokens":105,"prompt_tokens_details":{"cached_tokens":40}}}"#,
        )
        .unwrap();
        assert_eq!(reply.usage.input_tokens, 60);
        assert_eq!(reply.usage.cache_read_input_tokens, 40);
        assert_eq!(reply.usage.total_tokens(), 105);
        assert_eq!(reply.stop_reason.as_deref(), Some("max_tokens"));
    }

    #[test]
    fn reasoning_tokens_are_read_as_a_part_of_the_output() {
        let usage = |completion: u64, details: &str| {
            let body = format!(
                r#"{{"model":"o3","usage":{{"prompt_tokens":25,"completion_tokens":{completion},
                    "total_tokens":111{details}}}}}"#
            );
            usage_from_bytes(body.as_bytes()).unwrap().1
        };
        let reasoned = usage(
            86,
            r#","completion_tokens_details":{"reasoning_tokens":64}"#,
        );
        assert_eq!(
            (
                reasoned.input_tokens,
                reasoned.output_tokens,
                reasoned.reasoning_tokens
            ),
            (25, 86, 64)
        );
        // Inside the output, not added to it.
        assert_eq!(reasoned.total_tokens(), 111);
        // Older models send no details; an upstream claiming more
        // reasoning than output is held to the output.
        assert_eq!(usage(86, "").reasoning_tokens, 0);
        let overclaimed = usage(
            10,
            r#","completion_tokens_details":{"reasoning_tokens":64}"#,
        );
        assert_eq!(overclaimed.reasoning_tokens, 10);
    }
}
