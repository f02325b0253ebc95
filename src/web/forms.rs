//! Reading posted forms: `application/x-www-form-urlencoded` for the
//! server's own forms, and RFC 8058's one-click unsubscribe body, which
//! mail providers may send as either that or `multipart/form-data`.

use axum::http::{HeaderMap, header};

/// A posted form's fields, in order; a name may repeat (`follow`, `kind`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    /// The first value of a field.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of a field.
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

fn is_urlencoded(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|media| media.trim() == "application/x-www-form-urlencoded")
}

/// Reads a urlencoded form; `None` for any other content type.
pub(crate) fn parse(headers: &HeaderMap, body: &[u8]) -> Option<Form> {
    if !is_urlencoded(&content_type(headers)) {
        return None;
    }
    Some(Form {
        fields: url::form_urlencoded::parse(body).into_owned().collect(),
    })
}

/// Whether a POST is an RFC 8058 one-click unsubscribe: a field
/// `List-Unsubscribe` with the value `One-Click`, urlencoded or multipart.
pub(crate) fn is_one_click(headers: &HeaderMap, body: &[u8]) -> bool {
    let content_type = content_type(headers);
    if is_urlencoded(&content_type) || content_type.is_empty() {
        return url::form_urlencoded::parse(body)
            .any(|(key, value)| key == "List-Unsubscribe" && value == "One-Click");
    }
    if content_type.starts_with("multipart/form-data") {
        // The boundary's case matters; take it from the original header.
        let original = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        return boundary(original).is_some_and(|b| multipart_one_click(body, &b));
    }
    false
}

fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty())
    })
}

/// Looks through a multipart body for the one-click field. Just enough of
/// RFC 7578 for this one field: parts split on the boundary, headers split
/// from the content by a blank line.
fn multipart_one_click(body: &[u8], boundary: &str) -> bool {
    let Ok(text) = std::str::from_utf8(body) else {
        return false;
    };
    let delimiter = format!("--{boundary}");
    text.split(delimiter.as_str()).any(|part| {
        let part = part.strip_prefix("\r\n").unwrap_or(part);
        let Some((head, content)) = part
            .split_once("\r\n\r\n")
            .or_else(|| part.split_once("\n\n"))
        else {
            return false;
        };
        let named = head.lines().any(|line| {
            let line = line.to_ascii_lowercase();
            line.starts_with("content-disposition:")
                && line.contains("form-data")
                && (line.contains("name=\"list-unsubscribe\"")
                    || line.contains("name=list-unsubscribe"))
        });
        named && content.trim_end_matches(['\r', '\n']).trim() == "One-Click"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, content_type.parse().expect("header"));
        headers
    }

    #[test]
    fn urlencoded_forms_keep_repeated_fields() {
        let form = parse(
            &headers("application/x-www-form-urlencoded"),
            b"follow=a&follow=tag%3ALancashire+and+South+Cumbria&name=Ada",
        )
        .expect("form");
        assert_eq!(
            form.all("follow"),
            ["a", "tag:Lancashire and South Cumbria"]
        );
        assert_eq!(form.get("name"), Some("Ada"));
        assert!(parse(&headers("text/plain"), b"a=b").is_none());
    }

    #[test]
    fn one_click_is_recognised_in_both_encodings() {
        assert!(is_one_click(
            &headers("application/x-www-form-urlencoded"),
            b"List-Unsubscribe=One-Click"
        ));
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
        assert!(is_one_click(
            &headers("multipart/form-data; boundary=XyZ"),
            body.as_bytes()
        ));
        assert!(!is_one_click(
            &headers("multipart/form-data; boundary=Other"),
            body.as_bytes()
        ));
        assert!(!is_one_click(
            &headers("application/x-www-form-urlencoded"),
            b"csrf=abc"
        ));
    }
}
