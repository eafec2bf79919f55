//! OpenAI's Responses API as far as keygate reads it: the usage of an
//! answer, and what each named stream event means to the gateway.
//! Input tokens include the cached ones and output tokens the reasoning
//! ones; the gateway's `Usage` counts cached input apart (priced as such)
//! and records reasoning as a part of the output, where OpenAI bills it.

use serde::Deserialize;

use super::classify_stream_error;
use super::convert::reasoning_part;
use super::wire::ErrorBody;
use crate::domain::{Failure, Frame, FrameKind, Reading, UpstreamDetail, Usage, UsagePatch};

#[derive(Debug, Default, Deserialize)]
struct ResponseUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    input_tokens_details: Option<InputDetails>,
    #[serde(default)]
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Debug, Default, Deserialize)]
struct InputDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct OutputDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl ResponseUsage {
    fn patch(&self) -> UsagePatch {
        let cached = self
            .input_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0);
        let reasoning = self
            .output_tokens_details
            .as_ref()
            .and_then(|d| d.reasoning_tokens)
            .unwrap_or(0);
        UsagePatch {
            input_tokens: Some(self.input_tokens.saturating_sub(cached)),
            output_tokens: Some(self.output_tokens),
            cache_creation_input_tokens: None,
            cache_creation_1h_tokens: None,
            cache_read_input_tokens: Some(cached),
            reasoning_tokens: Some(reasoning_part(reasoning, self.output_tokens)),
        }
    }
}

/// The part of a `response` object keygate reads.
#[derive(Debug, Deserialize)]
struct Accounted {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    /// `null` while a background response is queued or in progress.
    #[serde(default)]
    usage: Option<ResponseUsage>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

/// The model and usage of a whole `response` object.
pub fn responses_usage(body: &[u8]) -> Result<(String, Usage), Failure> {
    let reply: Accounted =
        serde_json::from_slice(body).map_err(|e| Failure::malformed(&e.to_string()))?;
    let mut usage = Usage::default();
    if let Some(wire) = &reply.usage {
        usage.apply(&wire.patch());
    }
    Ok((reply.model.unwrap_or_default(), usage))
}

/// One named stream event: `type` says what it is (the `event:` line
/// repeats it, and is not relied on).
#[derive(Debug, Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    /// On `response.created`, `…in_progress`, `…completed`, `…failed`,
    /// `…incomplete`: the response so far.
    #[serde(default)]
    response: Option<Accounted>,
    /// On `error`: the error itself, not enveloped.
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
}

/// Events before any output: the response's creation and progress, and
/// the empty shells of an output item or content part.
const META_EVENTS: &[&str] = &[
    "response.created",
    "response.queued",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
];

pub fn read_responses_frame(frame: &Frame) -> Reading {
    let Ok(event) = serde_json::from_str::<Event>(&frame.data) else {
        return Reading::default();
    };
    let response = event.response.as_ref();
    let usage = response
        .and_then(|r| r.usage.as_ref())
        .map(ResponseUsage::patch)
        .unwrap_or_default();
    let model = response.and_then(|r| r.model.clone());
    let message_id = response.and_then(|r| r.id.clone());
    let kind = match event.kind.as_str() {
        "error" => FrameKind::Error(Box::new(classify_stream_error(ErrorBody {
            message: event.message.clone(),
            kind: None,
            code: event.code.clone(),
        }))),
        "response.failed" => FrameKind::Error(Box::new(failed(response))),
        // An incomplete response (max_output_tokens reached, content
        // filtered) is still the upstream's own, honest end.
        "response.completed" | "response.incomplete" => FrameKind::Finished,
        kind if META_EVENTS.contains(&kind) => FrameKind::Meta,
        _ => FrameKind::Content,
    };
    Reading {
        kind,
        usage,
        model,
        message_id,
        ..Reading::default()
    }
}

/// A `response.failed` event: the model failed on the provider's side.
fn failed(response: Option<&Accounted>) -> Failure {
    let error = response.and_then(|r| r.error.as_ref());
    Failure::ProviderFault(UpstreamDetail {
        status: None,
        error_type: error
            .and_then(ErrorBody::code_text)
            .unwrap_or("response_failed")
            .to_string(),
        message: error
            .and_then(|e| e.message.clone())
            .unwrap_or_else(|| "the upstream reported the response as failed".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(data: &str) -> Frame {
        Frame {
            event: None,
            data: data.into(),
        }
    }

    #[test]
    fn usage_counts_cached_input_apart_and_reasoning_as_output() {
        let (model, usage) = responses_usage(
            br#"{"id":"resp_1","object":"response","model":"o4-mini","status":"completed","output":[],
                "usage":{"input_tokens":100,"input_tokens_details":{"cached_tokens":40},
                         "output_tokens":30,"output_tokens_details":{"reasoning_tokens":20},"total_tokens":130}}"#,
        )
        .unwrap();
        assert_eq!(model, "o4-mini");
        assert_eq!(
            (
                usage.input_tokens,
                usage.cache_read_input_tokens,
                usage.output_tokens,
                usage.reasoning_tokens
            ),
            (60, 40, 30, 20)
        );
        // Reasoning is inside the output, not added to it.
        assert_eq!(usage.total_tokens(), 130);
        let (_, queued) = responses_usage(br#"{"id":"resp_2","model":"o3","usage":null}"#).unwrap();
        assert_eq!(queued, Usage::default());
        assert!(responses_usage(b"not json").is_err());
    }

    #[test]
    fn events_are_read_by_their_type() {
        let created = read_responses_frame(&frame(
            r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","model":"gpt-4.1","usage":null}}"#,
        ));
        assert_eq!(created.kind, FrameKind::Meta);
        assert_eq!(created.model.as_deref(), Some("gpt-4.1"));
        assert_eq!(created.message_id.as_deref(), Some("resp_1"));
        let delta = read_responses_frame(&frame(
            r#"{"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hi"}"#,
        ));
        assert_eq!(delta.kind, FrameKind::Content);
        let done = read_responses_frame(&frame(
            r#"{"type":"response.completed","response":{"model":"o4-mini","usage":{"input_tokens":5,"output_tokens":7,"output_tokens_details":{"reasoning_tokens":3}}}}"#,
        ));
        assert_eq!(done.kind, FrameKind::Finished);
        assert_eq!(done.usage.output_tokens, Some(7));
        assert_eq!(done.usage.reasoning_tokens, Some(3));
        let error = read_responses_frame(&frame(
            r#"{"type":"error","code":"rate_limit_exceeded","message":"slow down","sequence_number":1}"#,
        ));
        assert!(matches!(error.kind, FrameKind::Error(_)));
        let failed = read_responses_frame(&frame(
            r#"{"type":"response.failed","response":{"error":{"code":"server_error","message":"boom"}}}"#,
        ));
        assert!(
            matches!(failed.kind, FrameKind::Error(f) if matches!(*f, Failure::ProviderFault(_)))
        );
    }
}
