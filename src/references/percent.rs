//! Percent-decoding of URL paths into S3 keys, byte-exact: no path
//! normalisation (`a//b` and `../x` are keys, not directions), and `+`
//! reported rather than guessed, because a console-copied URL means a space
//! by it and every other URL means a plus.

/// A decoded URL path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedPath {
    /// The path with `%XX` decoded and `+` kept as `+`.
    pub text: String,
    /// Whether a literal (unencoded) `+` appeared, making the path ambiguous.
    pub has_literal_plus: bool,
}

/// Why a path could not become a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the path is not valid UTF-8 after percent-decoding")]
    NotUtf8,
}

/// Decodes `%XX` escapes. A `%` not followed by two hex digits is kept as
/// it is, as S3 itself would receive it.
pub fn decode_path(path: &str) -> Result<DecodedPath, DecodeError> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut has_literal_plus = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => {
                has_literal_plus = true;
                out.push(b'+');
            }
            other => out.push(other),
        }
        i += 1;
    }
    let text = String::from_utf8(out).map_err(|_| DecodeError::NotUtf8)?;
    Ok(DecodedPath {
        text,
        has_literal_plus,
    })
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Encodes a key the way S3 and the AWS console write URL paths: unreserved
/// characters and `/` as they are, everything else as `%XX`. The inverse of
/// [`decode_path`]; used by tests, the example generator, and the pages'
/// links back (a path and query inside a query value).
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_korean_spaces_and_keeps_paths_exact() {
        let decoded = decode_path("%EC%82%AC%EC%A7%84/a%20b//..%2Fc").unwrap();
        assert_eq!(decoded.text, "사진/a b//../c");
        assert!(!decoded.has_literal_plus);
    }

    #[test]
    fn plus_is_kept_and_flagged_but_encoded_plus_is_not_flagged() {
        let decoded = decode_path("a+b").unwrap();
        assert_eq!(decoded.text, "a+b");
        assert!(decoded.has_literal_plus);
        let decoded = decode_path("a%2Bb").unwrap();
        assert_eq!(decoded.text, "a+b");
        assert!(!decoded.has_literal_plus);
    }

    #[test]
    fn stray_percent_signs_are_kept() {
        assert_eq!(decode_path("100%").unwrap().text, "100%");
        assert_eq!(decode_path("a%zzb").unwrap().text, "a%zzb");
        assert_eq!(decode_path("a%4").unwrap().text, "a%4");
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        assert_eq!(decode_path("%FF%FE"), Err(DecodeError::NotUtf8));
    }

    #[test]
    fn encode_then_decode_is_identity() {
        for key in [
            "사진/얼굴 1.png",
            "a+b c",
            "a//b",
            "../x",
            "100%.png",
            "q?x=1#f",
        ] {
            assert_eq!(decode_path(&encode_key(key)).unwrap().text, key);
        }
    }
}
