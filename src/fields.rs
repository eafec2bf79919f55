//! The checks every route applies to the same fields, with the same 400s,
//! whether the field arrives on `/api/chat`, on `/v1/messages` (passed
//! through) or on `/v1/chat/completions` (translated for a `claude-`
//! model). A field keygate does not read is the upstream's to judge; a field
//! it reads, or rewrites, is checked here, so a wrong type is refused rather
//! than silently dropped or sent on.

use serde_json::Value;

use crate::error::ApiError;

/// `max_tokens` (or `max_completion_tokens`): a whole number from 1 to
/// `u32::MAX`.
pub fn max_tokens(field: &str, value: &Value) -> Result<u32, ApiError> {
    value
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::bad_request(format!("{field}: must be a positive integer")))
}

/// `temperature`, `top_p`, …: any JSON number.
pub fn number(field: &str, value: &Value) -> Result<f64, ApiError> {
    value
        .as_f64()
        .ok_or_else(|| ApiError::bad_request(format!("{field}: must be a number")))
}

/// `stream`: `true` or `false`.
pub fn stream(value: &Value) -> Result<bool, ApiError> {
    value
        .as_bool()
        .ok_or_else(|| ApiError::bad_request("stream: must be true or false"))
}

/// Anthropic's `stop_sequences`: an array of strings.
pub fn stop_sequences(value: &Value) -> Result<Vec<String>, ApiError> {
    strings(value)
        .ok_or_else(|| ApiError::bad_request("stop_sequences: must be an array of strings"))
}

/// OpenAI's `stop`: one string or an array of strings.
pub fn stop(value: &Value) -> Result<Vec<String>, ApiError> {
    match value {
        Value::String(one) => Ok(vec![one.clone()]),
        other => strings(other)
            .ok_or_else(|| ApiError::bad_request("stop: must be a string or an array of strings")),
    }
}

fn strings(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|item| item.as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_field_has_one_rule_and_one_message() {
        assert_eq!(max_tokens("max_tokens", &json!(64)).unwrap(), 64);
        for bad in [
            json!(-1),
            json!(0),
            json!(1.5),
            json!(1e30),
            json!("lots"),
            json!(null),
        ] {
            let error = max_tokens("max_tokens", &bad).unwrap_err();
            assert_eq!(
                error.message, "max_tokens: must be a positive integer",
                "{bad}"
            );
        }
        assert_eq!(number("temperature", &json!(0.5)).unwrap(), 0.5);
        assert_eq!(
            number("temperature", &json!("hot")).unwrap_err().message,
            "temperature: must be a number"
        );
        assert!(stream(&json!(true)).unwrap());
        assert!(stream(&json!("yes")).is_err());
        assert_eq!(stop(&json!("END")).unwrap(), ["END"]);
        assert_eq!(stop(&json!(["A", "B"])).unwrap(), ["A", "B"]);
        assert!(stop(&json!(5)).is_err());
        assert!(stop_sequences(&json!("END")).is_err());
        assert!(stop_sequences(&json!([5])).is_err());
    }
}
