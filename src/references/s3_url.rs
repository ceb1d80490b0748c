//! Splitting a reference into the parts resolution needs: an `http(s)://`
//! URL into its host and still-encoded path, and an `s3://` URI (or
//! Hadoop's `s3a://`/`s3n://`) into its bucket and raw key. The bucket of an
//! `s3://` URI may be an access point ARN (`s3://arn:aws:s3:...:accesspoint/
//! name/key`, split after the name, see [`super::arn`]). Which hosts are
//! S3's, and where they put the bucket, is [`super::aws_hosts`]'s.
//!
//! A query string or fragment is never part of a key. In an `http(s)` URL a
//! `?` or `#` in a key is always encoded, so the rule is exact. In an
//! `s3://` URI the AWS CLI writes keys raw, so a key holding `?` or `#`
//! cannot be told from a key followed by a query (`?versionId=...`, as tools
//! write to name a version) or a fragment. lethe reads them as a query or
//! fragment (issue 10). The cost: an object whose key really holds a raw
//! `?` or `#` in an `s3://` URI is looked for under the shorter key. So the
//! form names the cut ("query or fragment cut off the key"), and
//! `explain-ref` shows it.
//!
//! The rule this module keeps: it only splits; it never decides ownership
//! (that is [`super::Resolver`]'s job) and never rewrites a key.

use super::arn::{self, ArnError};
pub use super::aws_hosts::{S3Host, classify_host};

/// A reference split into the parts resolution needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedUrl<'a> {
    /// `s3://bucket/key`, `s3a://...`, `s3n://...`.
    S3Uri(S3Uri<'a>),
    /// `http(s)://host/path`, query and fragment dropped; the host is lowercased
    /// and without user info or port; the path is still percent-encoded and
    /// has no leading `/`.
    Http { host: String, path: &'a str },
}

/// An `s3://`, `s3a://` or `s3n://` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Uri<'a> {
    pub scheme: S3Scheme,
    /// The bucket as written, or an access point ARN in its canonical form.
    pub bucket: String,
    /// The key, raw (the AWS CLI does not encode it); may be empty.
    pub key: &'a str,
    /// Whether the bucket is an access point ARN.
    pub arn: bool,
    /// Whether a `?query` or `#fragment` was cut off.
    pub cut: bool,
}

/// The scheme of an S3 URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Scheme {
    S3,
    /// Hadoop's S3A connector.
    S3a,
    /// Hadoop's older S3 native connector.
    S3n,
}

/// Why a text is not a URL lethe reads. The messages name what is wrong,
/// never more of the text than its scheme.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("not a URL or s3:// URI")]
    NotUrl,
    #[error("the URL's scheme {0}:// is not one lethe reads (http, https, s3, s3a, s3n)")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("the URL's host is not a valid host name")]
    InvalidHost,
    #[error("the URI's bucket is an ARN, but not an S3 access point ARN: {0}")]
    Arn(#[source] ArnError),
}

impl S3Uri<'_> {
    /// The form, as a resolution's `via` names it: `s3:// URI`,
    /// `s3a:// URI (Hadoop, access point ARN)`, ...
    pub fn form(&self) -> String {
        let mut notes = Vec::new();
        if self.scheme != S3Scheme::S3 {
            notes.push("Hadoop");
        }
        if self.arn {
            notes.push("access point ARN");
        }
        if self.cut {
            notes.push("query or fragment cut off the key");
        }
        let scheme = match self.scheme {
            S3Scheme::S3 => "s3",
            S3Scheme::S3a => "s3a",
            S3Scheme::S3n => "s3n",
        };
        if notes.is_empty() {
            format!("{scheme}:// URI")
        } else {
            format!("{scheme}:// URI ({})", notes.join(", "))
        }
    }
}

/// The S3 URI schemes, as written before `://` (any case).
const S3_SCHEMES: [(&str, S3Scheme); 3] = [
    ("s3", S3Scheme::S3),
    ("s3a", S3Scheme::S3a),
    ("s3n", S3Scheme::S3n),
];

/// Whether `text` starts with a scheme lethe reads as a URL (`http://`,
/// `https://`, `s3://`, `s3a://`, `s3n://`, any case).
pub fn is_url(text: &str) -> bool {
    scheme(text).is_some_and(|(scheme, _)| {
        ["http", "https", "s3", "s3a", "s3n"]
            .iter()
            .any(|known| scheme.eq_ignore_ascii_case(known))
    })
}

/// Whether `text` is an `s3://`, `s3a://` or `s3n://` URI, whose key is raw
/// (so trailing whitespace may be part of it).
pub fn is_s3_uri(text: &str) -> bool {
    s3_scheme(text).is_some()
}

/// Splits a reference.
pub fn parse(url: &str) -> Result<ParsedUrl<'_>, UrlError> {
    if let Some((scheme, rest)) = s3_scheme(url) {
        return parse_s3_uri(scheme, rest).map(ParsedUrl::S3Uri);
    }
    let (scheme, rest) = scheme(url).ok_or(UrlError::NotUrl)?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return Err(UrlError::Scheme(scheme.to_ascii_lowercase()));
    }
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let rest = &rest[..end];
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, ""),
    };
    // A browser ends the authority at a backslash as at a slash, so
    // `https://evil.com\@bucket.s3.amazonaws.com/` is evil.com's: refuse it
    // rather than read either host.
    if authority.contains('\\') {
        return Err(UrlError::InvalidHost);
    }
    // Drop user info and port: neither changes which object is meant.
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = match host_port.strip_prefix('[') {
        Some(ipv6) => match ipv6.split_once(']') {
            Some((address, _)) if is_ipv6(address) => &host_port[..address.len() + 2],
            _ => return Err(UrlError::InvalidHost),
        },
        None => host_port.split(':').next().unwrap_or(host_port),
    };
    if host.is_empty() {
        return Err(UrlError::NoHost);
    }
    let host = host.to_ascii_lowercase();
    if !host.starts_with('[') && !is_host_name(&host) {
        return Err(UrlError::InvalidHost);
    }
    Ok(ParsedUrl::Http { host, path })
}

fn parse_s3_uri(scheme: S3Scheme, rest: &str) -> Result<S3Uri<'_>, UrlError> {
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let cut = end < rest.len();
    let rest = &rest[..end];
    // An ARN holds `/` itself: it is split after the access point's name.
    if rest.starts_with("arn:") {
        let (bucket, key) = arn::split_uri(rest).map_err(UrlError::Arn)?;
        return Ok(S3Uri {
            scheme,
            bucket,
            key,
            arn: true,
            cut,
        });
    }
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    Ok(S3Uri {
        scheme,
        bucket: bucket.to_owned(),
        key,
        arn: false,
        cut,
    })
}

/// The scheme before `://` and the rest, when the scheme is well formed
/// (RFC 3986: a letter, then letters, digits, `+`, `-`, `.`; at most 16 here).
fn scheme(text: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = text.split_once("://")?;
    let mut bytes = scheme.bytes();
    let well_formed = scheme.len() <= 16
        && bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    well_formed.then_some((scheme, rest))
}

fn s3_scheme(text: &str) -> Option<(S3Scheme, &str)> {
    let (written, rest) = scheme(text)?;
    S3_SCHEMES
        .iter()
        .find(|(name, _)| written.eq_ignore_ascii_case(name))
        .map(|(_, scheme)| (*scheme, rest))
}

/// A DNS name or IPv4 address: labels of ASCII letters, digits and `-`, not
/// starting or ending with `-`, an optional trailing dot.
fn is_host_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn is_ipv6(address: &str) -> bool {
    !address.is_empty()
        && address
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(host: &str, path: &'static str) -> Result<ParsedUrl<'static>, UrlError> {
        Ok(ParsedUrl::Http {
            host: host.to_owned(),
            path,
        })
    }

    #[test]
    fn parse_drops_query_fragment_user_info_port_and_lowercases_host() {
        assert_eq!(
            parse("HTTPS://My-Bucket.S3.amazonaws.com:443/a/b.png?X-Amz-Signature=1#frag"),
            http("my-bucket.s3.amazonaws.com", "a/b.png")
        );
        assert_eq!(
            parse("https://bucket.s3.amazonaws.com@evil.com/k"),
            http("evil.com", "k")
        );
        assert_eq!(
            parse("https://evil.com#@bucket.s3.amazonaws.com/k"),
            http("evil.com", "")
        );
        assert_eq!(parse("http://[::1]:9000/b/k"), http("[::1]", "b/k"));
        assert_eq!(parse("not a url"), Err(UrlError::NotUrl));
        assert_eq!(parse("data:image/png;base64,AAAA"), Err(UrlError::NotUrl));
        assert_eq!(parse("ftp://x/y"), Err(UrlError::Scheme("ftp".into())));
        assert_eq!(parse("https:///k"), Err(UrlError::NoHost));
        for url in [
            "https://evil.com\\@bucket.s3.amazonaws.com/k",
            "https://bucket.s3.amazonaws.com%2eevil.com/k",
            "https://my bucket.s3.amazonaws.com/k",
            "https://-b.s3.amazonaws.com/k",
            "https://[zz]/k",
        ] {
            assert_eq!(parse(url), Err(UrlError::InvalidHost), "{url}");
        }
    }

    fn s3(url: &str) -> S3Uri<'_> {
        match parse(url) {
            Ok(ParsedUrl::S3Uri(uri)) => uri,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn s3_uris_keep_the_key_raw_up_to_a_query_or_fragment() {
        let uri = s3("s3://bucket/a//b");
        assert_eq!(
            (uri.bucket.as_str(), uri.key, uri.cut),
            ("bucket", "a//b", false)
        );
        assert_eq!(uri.form(), "s3:// URI");
        let uri = s3("S3A://Bucket/a%20b?versionId=1");
        assert_eq!(
            (uri.bucket.as_str(), uri.key, uri.cut),
            ("Bucket", "a%20b", true)
        );
        assert_eq!(
            uri.form(),
            "s3a:// URI (Hadoop, query or fragment cut off the key)"
        );
        let uri = s3("s3n://bucket/k#f?g");
        assert_eq!((uri.scheme, uri.key), (S3Scheme::S3n, "k"));
        let uri = s3("s3://bucket?x/k");
        assert_eq!((uri.bucket.as_str(), uri.key), ("bucket", ""));
    }

    #[test]
    fn s3_uris_split_access_point_arns_after_the_name() {
        let uri = s3("s3://arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap/some/key?x");
        assert_eq!(
            (uri.bucket.as_str(), uri.key, uri.arn),
            (
                "arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap",
                "some/key",
                true
            )
        );
        assert_eq!(
            uri.form(),
            "s3:// URI (access point ARN, query or fragment cut off the key)"
        );
        assert_eq!(
            parse("s3://arn:aws:iam::123456789012:role/r"),
            Err(UrlError::Arn(ArnError::Service))
        );
    }

    #[test]
    fn is_url_knows_every_scheme_lethe_reads() {
        for text in [
            "https://x",
            "HTTP://x",
            "s3://b/k",
            "S3a://b/k",
            "s3n://b/k",
        ] {
            assert!(is_url(text), "{text}");
        }
        for text in ["ftp://x", "a.png", "{\"url\": \"s3://b/k\"}", "s3:/b/k"] {
            assert!(!is_url(text), "{text}");
        }
        assert!(is_s3_uri("s3A://b/k") && !is_s3_uri("https://b/k"));
    }
}
