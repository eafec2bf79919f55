//! Property tests over what keygate parses from the outside: request bodies
//! (`limits::check_shape`, `parse_json` + `ChatBody::into_request`,
//! `translate::to_anthropic`) and upstream SSE (`read_frame` of both
//! providers, `gateway::stream::frames` on arbitrary bytes in arbitrary
//! chunks). Bounded case counts keep each
//! under a few seconds.

use std::convert::Infallible;

use axum::body::Bytes;
use fake_upstream::SseFrame;
use keygate::domain::Frame;
use keygate::extract::parse_json;
use keygate::gateway::stream::frames;
use keygate::routes::chat::ChatBody;
use proptest::prelude::*;
use serde_json::{Value, json};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if crate::long_run() { 5_000 } else { 200 },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// JSON values biased towards the shapes the parsers look for.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just("user"),
            Just("assistant"),
            Just("system"),
            Just("anthropic"),
            Just("openai"),
            Just("claude-sonnet-4-20250514"),
            Just("gpt-4o-mini"),
            Just("text"),
            Just(""),
        ]
        .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            Just("messages".to_string()),
            Just("role".to_string()),
            Just("content".to_string()),
            Just("model".to_string()),
            Just("provider".to_string()),
            Just("max_tokens".to_string()),
            Just("stream".to_string()),
            Just("system".to_string()),
            Just("stop".to_string()),
            Just("stop_sequences".to_string()),
            Just("temperature".to_string()),
            Just("tools".to_string()),
            Just("type".to_string()),
            Just("text".to_string()),
            "[a-z_]{0,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// A body that is at least an object with a messages array, so parsing gets
/// past the first checks often.
fn chat_body() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(json_value(), 0..4),
        json_value(),
        json_value(),
    )
        .prop_map(|(messages, extra, model)| {
            let mut body = json!({"messages": messages, "model": model});
            if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
                body.extend(extra);
            }
            body
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic_the_body_parser(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(body) = parse_json::<ChatBody>(&bytes) {
            let _ = body.into_request();
        }
    }

    #[test]
    fn json_ish_bodies_never_panic_parsing_or_translation(body in chat_body()) {
        let bytes = body.to_string();
        let _ = keygate::limits::check_shape(bytes.as_bytes());
        if let Ok(parsed) = parse_json::<ChatBody>(bytes.as_bytes()) {
            let _ = parsed.into_request();
        }
        let _ = keygate::translate::to_anthropic(bytes.as_bytes());
        let _ = keygate::translate::to_anthropic(b"{}");
    }

    #[test]
    fn arbitrary_frames_never_panic_the_stream_readers(
        event in prop::option::of("[a-z_]{0,16}"),
        data in prop_oneof![".{0,64}".boxed(), json_value().prop_map(|v| v.to_string()).boxed()],
    ) {
        let frame = Frame { event, data };
        let _ = keygate::providers::anthropic::read_frame(&frame);
        let _ = keygate::providers::openai::read_frame(&frame);
    }

    #[test]
    fn arbitrary_bytes_in_arbitrary_chunks_never_panic_frames(
        bytes in prop::collection::vec(
            prop_oneof![any::<u8>(), Just(b'\n'), Just(b':'), Just(b' '), Just(b'\r')], 0..512),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let _ = read_all(chunked(&bytes, &cuts));
    }

    #[test]
    fn well_formed_frames_read_the_same_however_they_are_chunked(
        sent in prop::collection::vec(
            (prop::option::of("[a-z_]{1,12}"), "[a-zA-Z0-9{}\":,\\[\\] ]{0,40}"), 1..6),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let sent: Vec<SseFrame> = sent
            .into_iter()
            .map(|(event, data)| SseFrame { event, data })
            .collect();
        let bytes: Vec<u8> = sent.iter().flat_map(|frame| frame.encode()).collect();
        let read = read_all(chunked(&bytes, &cuts));
        let expected: Vec<Result<(Option<String>, String), ()>> = sent
            .into_iter()
            .map(|frame| Ok((frame.event, frame.data)))
            .collect();
        prop_assert_eq!(read, expected);
    }
}

fn chunked(bytes: &[u8], cuts: &[prop::sample::Index]) -> Vec<Bytes> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    points.dedup();
    points
        .windows(2)
        .map(|w| Bytes::copy_from_slice(&bytes[w[0]..w[1]]))
        .collect()
}

/// Feeds `chunks` as an upstream body to `frames` and collects what it reads.
fn read_all(chunks: Vec<Bytes>) -> Vec<Result<(Option<String>, String), ()>> {
    use futures::StreamExt;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let body = reqwest::Body::wrap_stream(futures::stream::iter(
            chunks.into_iter().map(Ok::<_, Infallible>),
        ));
        let response = reqwest::Response::from(axum::http::Response::new(body));
        frames(response)
            .map(|item| item.map(|f| (f.event, f.data)).map_err(|_| ()))
            .collect()
            .await
    })
}
