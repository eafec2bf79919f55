use super::*;

const LITELLM: &str = r#"{
    "sample_spec": {
        "max_tokens": "LEGACY parameter. set to max_output_tokens if provider specifies it.",
        "input_cost_per_token": 0.0,
        "output_cost_per_token": 0.0,
        "litellm_provider": "one of https://docs.litellm.ai/docs/providers",
        "mode": "one of: chat, embedding, completion, image_generation, audio_transcription, audio_speech, image_generation, moderation, rerank, search"
    },
    "text-embedding-3-large": {
        "input_cost_per_token": 1.3e-07,
        "litellm_provider": "openai",
        "mode": "embedding",
        "output_vector_size": 3072
    },
    "azure/gpt-4o": {
        "input_cost_per_token": "not read",
        "litellm_provider": "azure",
        "mode": "chat"
    },
    "anthropic/claude-nova-1": {
        "input_cost_per_token": 2e-06,
        "output_cost_per_token": 1e-05,
        "cache_creation_input_token_cost": 2.5e-06,
        "cache_creation_input_token_cost_above_1hr": 4e-06,
        "cache_read_input_token_cost": 2e-07,
        "input_cost_per_token_above_200k_tokens": 4e-06,
        "output_cost_per_token_above_200k_tokens": 1.5e-05,
        "litellm_provider": "anthropic",
        "max_input_tokens": 1000000,
        "mode": "chat",
        "supports_vision": true
    },
    "gpt-7-mini": {
        "input_cost_per_token": 4e-07,
        "output_cost_per_token": 1.6e-06,
        "input_cost_per_token_above_272k_tokens": 8e-07,
        "output_cost_per_token_above_272k_tokens": 2.4e-06,
        "input_cost_per_token_batches": 2e-07,
        "litellm_provider": "openai",
        "mode": "responses"
    },
    "gpt-image-9": {
        "litellm_provider": "openai",
        "mode": "chat"
    }
}"#;

#[test]
fn a_litellm_file_is_read_as_it_is() {
    let entries = parse_price_file(LITELLM, Some("2026-11-29")).unwrap();
    let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["claude-nova-1", "gpt-7-mini"]);
    let nova = &entries[0];
    assert_eq!(nova.provider, ProviderKind::Anthropic);
    assert_eq!(
        nova.price.rates,
        Rates {
            input: 2000,
            output: 10_000,
            cache_write_5m: 2500,
            cache_write_1h: 4000,
            cache_read: 200,
        }
    );
    let long = nova.price.long_context.unwrap();
    assert_eq!(long.above_tokens, 200_000);
    assert_eq!((long.rates.input, long.rates.output), (4000, 15_000));
    assert_eq!(nova.origin, Origin::PriceFile);
    assert_eq!(nova.checked.as_deref(), Some("2026-11-29"));
    // No cache prices: cache tokens are billed as input.
    let mini = &entries[1];
    assert_eq!(mini.provider, ProviderKind::OpenAI);
    assert_eq!(
        (mini.price.rates.cache_read, mini.price.rates.cache_write_5m),
        (400, 400)
    );
    let long = mini.price.long_context.unwrap();
    assert_eq!(
        (long.above_tokens, long.rates.input, long.rates.output),
        (272_000, 800, 2400)
    );
}

const KEYGATE: &str = r#"{
  "models": [
    {"provider": "anthropic", "id": "claude-nova", "name": "Claude Nova",
     "input": 3, "output": 15, "cache_write_5m": 3.75, "cache_write_1h": 6, "cache_read": 0.3,
     "long_context": {"above_tokens": 200000, "input": 6, "output": 22.5},
     "checked": "2026-11-28"},
    {"provider": "openai", "id": "gpt-7", "input": 1.25, "output": 10}
  ]
}"#;

#[test]
fn keygate_own_form_is_read_per_million() {
    let entries = parse_price_file(KEYGATE, Some("2026-11-30")).unwrap();
    let nova = &entries[0];
    assert_eq!(
        (nova.id.as_str(), nova.name.as_str()),
        ("claude-nova", "Claude Nova")
    );
    assert_eq!(
        nova.price.rates,
        Rates {
            input: 3000,
            output: 15_000,
            cache_write_5m: 3750,
            cache_write_1h: 6000,
            cache_read: 300,
        }
    );
    let long = nova.price.long_context.unwrap();
    assert_eq!(
        (long.above_tokens, long.rates.output, long.rates.cache_read),
        (200_000, 22_500, 6000)
    );
    assert_eq!(nova.checked.as_deref(), Some("2026-11-28"));
    let gpt = &entries[1];
    assert_eq!(
        (gpt.provider, gpt.name.as_str()),
        (ProviderKind::OpenAI, "gpt-7")
    );
    assert_eq!(gpt.checked.as_deref(), Some("2026-11-30"));
}

fn fault(text: &str) -> Fault {
    parse_price_file(text, None).unwrap_err()
}

#[test]
fn a_malformed_file_names_its_line_and_field() {
    let bad_type = "{\n  \"models\": [\n    {\"provider\": \"openai\", \"id\": \"gpt-7\",\n     \"input\": \"1.25\", \"output\": 10}\n  ]\n}";
    let found = fault(bad_type);
    assert_eq!(
        (found.line, found.field.as_str()),
        (4, "models[0].input"),
        "{found:?}"
    );
    assert!(found.message.contains("invalid type"), "{}", found.message);

    let typo = "{\"models\": [\n{\"provider\": \"openai\", \"id\": \"gpt-7\", \"input\": 1, \"output\": 2,\n \"cache_reed\": 0.1}]}";
    let found = fault(typo);
    assert_eq!(found.line, 3, "{found:?}");
    assert!(found.message.contains("cache_reed"), "{}", found.message);

    let search = r#"{"models": [{"provider": "brave", "id": "x", "input": 1, "output": 1}]}"#;
    assert_eq!(fault(search).field, "models[0].provider");

    let per_token_in_per_million =
        r#"{"models": [{"provider": "openai", "id": "x", "input": 1e9, "output": 1}]}"#;
    assert!(
        fault(per_token_in_per_million)
            .message
            .contains("more than any model costs")
    );

    let negative = "{\n\"claude-nova\": {\"litellm_provider\": \"anthropic\",\n \"input_cost_per_token\": -1e-6, \"output_cost_per_token\": 1e-5}}";
    let found = fault(negative);
    assert_eq!(
        (found.line, found.field.as_str()),
        (3, "claude-nova.input_cost_per_token"),
        "{found:?}"
    );

    let syntax = "{\n  \"models\": [\n    {\"provider\": \"openai\",,}\n  ]\n}";
    assert_eq!(fault(syntax).line, 3);
}

#[test]
fn a_missing_or_oversized_file_is_refused_by_name() {
    let error = read_price_file(Path::new("/nonexistent/prices.json")).unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/prices.json"),
        "{error}"
    );
}
