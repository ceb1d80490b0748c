//! Recognising Amazon S3 endpoints in URLs, in every addressing style AWS has
//! used: virtual-hosted (`bucket.s3.amazonaws.com`, with a region, dotted
//! bucket names, `s3-<region>`, dualstack, `s3-external-1`, accelerate,
//! website endpoints) and path-style (`s3.amazonaws.com/bucket`, the same
//! hosts without a bucket label), plus `s3://bucket/key` URIs.
//!
//! The rule this module keeps: it only splits a URL into its parts; it never
//! decides ownership (that is [`super::Resolver`]'s job) and never rewrites a
//! key.

/// A URL split into the parts resolution needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedUrl<'a> {
    /// `s3://bucket/key`: the key is raw (the AWS CLI does not encode it).
    S3Uri { bucket: &'a str, key: &'a str },
    /// `http(s)://host/path`, query and fragment dropped; the host is lowercased
    /// and without port; the path is still percent-encoded and has no leading `/`.
    Http { host: String, path: &'a str },
}

/// Where an S3 host puts the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Host {
    /// The bucket is the host's leading labels.
    VirtualHosted { bucket: String, style: &'static str },
    /// The bucket is the first path segment.
    PathStyle { style: &'static str },
}

/// Splits a URL; None when it is not a URL at all.
pub fn parse(url: &str) -> Option<ParsedUrl<'_>> {
    if let Some(rest) = strip_prefix_ignore_case(url, "s3://") {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        return Some(ParsedUrl::S3Uri { bucket, key });
    }
    let rest = strip_prefix_ignore_case(url, "https://")
        .or_else(|| strip_prefix_ignore_case(url, "http://"))?;
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let rest = &rest[..end];
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, ""),
    };
    // Drop user info and port: neither changes which object is meant.
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = host_port.split(':').next().unwrap_or(host_port);
    if host.is_empty() {
        return None;
    }
    Some(ParsedUrl::Http {
        host: host.to_ascii_lowercase(),
        path,
    })
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Recognises an Amazon S3 host; None for any other host.
pub fn classify_host(host: &str) -> Option<S3Host> {
    let labels_part = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let labels: Vec<&str> = labels_part.split('.').collect();
    // Endpoint suffixes, longest first, so `bucket.s3.dualstack.eu-west-1`
    // is not read as a bucket called `bucket.s3.dualstack`.
    let endpoints: [(&[&str], usize, &'static str); 9] = [
        (&["s3", "dualstack", "*region"], 3, "dualstack"),
        (&["s3-accelerate", "dualstack"], 2, "accelerate-dualstack"),
        (&["s3", "*region"], 2, "regional"),
        (&["s3-website", "*region"], 2, "website"),
        (&["*s3-website-region"], 1, "website"),
        (&["s3-external-1"], 1, "s3-external-1"),
        (&["s3-accelerate"], 1, "accelerate"),
        (&["*s3-region"], 1, "legacy-regional"),
        (&["s3"], 1, "global"),
    ];
    for (pattern, len, style) in endpoints {
        if labels.len() < len {
            continue;
        }
        let tail = &labels[labels.len() - len..];
        if !pattern
            .iter()
            .zip(tail)
            .all(|(want, got)| label_matches(want, got))
        {
            continue;
        }
        let bucket = labels[..labels.len() - len].join(".");
        return Some(if bucket.is_empty() {
            S3Host::PathStyle { style }
        } else {
            S3Host::VirtualHosted { bucket, style }
        });
    }
    None
}

fn label_matches(pattern: &str, label: &str) -> bool {
    match pattern {
        "*region" => is_region(label),
        "*s3-region" => label.strip_prefix("s3-").is_some_and(is_region),
        "*s3-website-region" => label.strip_prefix("s3-website-").is_some_and(is_region),
        literal => literal == label,
    }
}

/// `us-east-1`, `ap-northeast-2`, `us-gov-west-1`, `cn-north-1`, ...
fn is_region(label: &str) -> bool {
    let parts: Vec<&str> = label.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn virtual_bucket(host: &str) -> Option<String> {
        match classify_host(host)? {
            S3Host::VirtualHosted { bucket, .. } => Some(bucket),
            S3Host::PathStyle { .. } => None,
        }
    }

    #[test]
    fn virtual_hosted_styles() {
        for host in [
            "my-bucket.s3.amazonaws.com",
            "my-bucket.s3.ap-northeast-2.amazonaws.com",
            "my-bucket.s3-ap-northeast-2.amazonaws.com",
            "my-bucket.s3.dualstack.ap-northeast-2.amazonaws.com",
            "my-bucket.s3-external-1.amazonaws.com",
            "my-bucket.s3-accelerate.amazonaws.com",
            "my-bucket.s3-accelerate.dualstack.amazonaws.com",
            "my-bucket.s3-website-us-east-1.amazonaws.com",
            "my-bucket.s3-website.eu-central-1.amazonaws.com",
            "my-bucket.s3.cn-north-1.amazonaws.com.cn",
        ] {
            assert_eq!(virtual_bucket(host).as_deref(), Some("my-bucket"), "{host}");
        }
        assert_eq!(
            virtual_bucket("my.dotted.bucket.s3.us-west-2.amazonaws.com").as_deref(),
            Some("my.dotted.bucket")
        );
    }

    #[test]
    fn path_style_hosts() {
        for host in [
            "s3.amazonaws.com",
            "s3.ap-northeast-2.amazonaws.com",
            "s3-ap-northeast-2.amazonaws.com",
            "s3.dualstack.us-east-1.amazonaws.com",
            "s3-external-1.amazonaws.com",
            "s3.us-gov-west-1.amazonaws.com",
        ] {
            assert!(
                matches!(classify_host(host), Some(S3Host::PathStyle { .. })),
                "{host}"
            );
        }
    }

    #[test]
    fn other_hosts_are_not_s3() {
        for host in [
            "example.com",
            "d111.cloudfront.net",
            "s3.example.com",
            "ec2.amazonaws.com",
            "bucket.s4.amazonaws.com",
            "amazonaws.com",
        ] {
            assert_eq!(classify_host(host), None, "{host}");
        }
    }

    #[test]
    fn parse_drops_query_fragment_port_and_lowercases_host() {
        assert_eq!(
            parse("HTTPS://My-Bucket.S3.amazonaws.com:443/a/b.png?X-Amz-Signature=1#frag"),
            Some(ParsedUrl::Http {
                host: "my-bucket.s3.amazonaws.com".into(),
                path: "a/b.png"
            })
        );
        assert_eq!(
            parse("s3://bucket/a//b"),
            Some(ParsedUrl::S3Uri {
                bucket: "bucket",
                key: "a//b"
            })
        );
        assert_eq!(parse("not a url"), None);
        assert_eq!(parse("ftp://x/y"), None);
    }
}
