//! Error text from upstream bodies that are not the JSON the API documents
//! (a proxy's HTML page, a load balancer's plain text).

/// A short, printable excerpt of a body, or a placeholder if it is empty.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    if text.trim().is_empty() {
        "the upstream gave no error message".into()
    } else {
        text.trim().to_string()
    }
}
