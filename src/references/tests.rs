//! Unit tests for reference resolution: one per shape and URL style.

use serde_json::json;

use super::*;

fn resolver() -> Resolver {
    Resolver::new(&Storage {
        buckets: vec!["media".into(), "my.dotted.bucket".into()],
        cloudfront: vec![
            CloudFrontOrigin {
                domain: "d111.cloudfront.net".into(),
                bucket: "media".into(),
                origin_path: String::new(),
            },
            CloudFrontOrigin {
                domain: "cdn.example.com".into(),
                bucket: "media".into(),
                origin_path: "/public/".into(),
            },
        ],
        protected: vec![Protected {
            bucket: "media".into(),
            prefixes: vec!["shared/".into()],
            keys: vec!["presets/default.png".into()],
        }],
        ..Storage::default()
    })
}

fn object(bucket: &str, key: &str) -> ObjectRef {
    ObjectRef {
        bucket: bucket.into(),
        key: key.into(),
    }
}

fn resolved_object(resolution: Resolution) -> ObjectRef {
    match resolution {
        Resolution::Object { object, .. } => object,
        other => panic!("expected an object, got {other:?}"),
    }
}

#[test]
fn every_s3_url_style_resolves_to_the_same_object() {
    let r = resolver();
    for url in [
        "https://media.s3.amazonaws.com/u/1/a.png",
        "https://media.s3.ap-northeast-2.amazonaws.com/u/1/a.png",
        "https://media.s3-ap-northeast-2.amazonaws.com/u/1/a.png",
        "https://media.s3.dualstack.ap-northeast-2.amazonaws.com/u/1/a.png",
        "https://media.s3-external-1.amazonaws.com/u/1/a.png",
        "https://s3.amazonaws.com/media/u/1/a.png",
        "https://s3.ap-northeast-2.amazonaws.com/media/u/1/a.png",
        "https://s3-ap-northeast-2.amazonaws.com/media/u/1/a.png",
        "https://s3.dualstack.us-east-1.amazonaws.com/media/u/1/a.png",
        "http://media.s3.amazonaws.com/u/1/a.png",
        "s3://media/u/1/a.png",
        "https://media.s3.amazonaws.com/u/1/a.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc",
        "https://d111.cloudfront.net/u/1/a.png",
    ] {
        assert_eq!(
            resolved_object(r.resolve_url(url)),
            object("media", "u/1/a.png"),
            "{url}"
        );
    }
}

#[test]
fn dotted_buckets_and_origin_paths() {
    let r = resolver();
    assert_eq!(
        resolved_object(r.resolve_url("https://my.dotted.bucket.s3.us-west-2.amazonaws.com/k")),
        object("my.dotted.bucket", "k")
    );
    assert_eq!(
        resolved_object(r.resolve_url("https://cdn.example.com/a/b.png")),
        object("media", "public/a/b.png")
    );
}

#[test]
fn keys_are_percent_decoded_byte_exact() {
    let r = resolver();
    assert_eq!(
        resolved_object(
            r.resolve_url("https://media.s3.amazonaws.com/%EC%82%AC%EC%A7%84/a%20b//..%2F%2Bc.png")
        ),
        object("media", "사진/a b//../+c.png")
    );
}

#[test]
fn a_literal_plus_is_ambiguous_not_guessed() {
    match resolver().resolve_url("https://media.s3.amazonaws.com/a+b%2Bc.png") {
        Resolution::Ambiguous { plus, space, .. } => {
            assert_eq!(plus, object("media", "a+b+c.png"));
            assert_eq!(space, object("media", "a b+c.png"));
        }
        other => panic!("expected ambiguity, got {other:?}"),
    }
}

#[test]
fn bucket_and_key_fields_win_over_the_url() {
    let value = json!({
        "bucket": "media",
        "key": "u/1/real.png",
        "url": "https://d111.cloudfront.net/u/1/other.png"
    });
    assert_eq!(
        resolved_object(resolver().resolve_value(&value).unwrap()),
        object("media", "u/1/real.png")
    );
    let url_only = json!({"url": "https://d111.cloudfront.net/u/1/other.png", "inputFileType": "originalImage"});
    assert_eq!(
        resolved_object(resolver().resolve_value(&url_only).unwrap()),
        object("media", "u/1/other.png")
    );
}

#[test]
fn protected_objects_are_retained() {
    let r = resolver();
    assert!(matches!(
        r.resolve_url("https://media.s3.amazonaws.com/shared/sample.png"),
        Resolution::Protected { .. }
    ));
    assert!(matches!(
        r.resolve_url("s3://media/presets/default.png"),
        Resolution::Protected { .. }
    ));
    assert!(matches!(
        r.resolve_url("s3://media/presets/default.png.bak"),
        Resolution::Object { .. }
    ));
}

#[test]
fn everything_else_is_foreign() {
    let r = resolver();
    for url in [
        "https://example.com/a.png",
        "https://other-bucket.s3.amazonaws.com/a.png",
        "https://media.s3.amazonaws.com/",
        "https://s3.amazonaws.com/media",
        "data:image/png;base64,AAAA",
        "a.png",
    ] {
        assert!(
            matches!(r.resolve_url(url), Resolution::Foreign { .. }),
            "{url}"
        );
    }
    assert!(matches!(
        r.resolve_value(&json!(42)),
        Some(Resolution::Foreign { .. })
    ));
    assert!(matches!(
        r.resolve_value(&json!({"key": "only-a-key"})),
        Some(Resolution::Foreign { .. })
    ));
}

#[test]
fn empty_values_mean_no_file() {
    let r = resolver();
    assert_eq!(r.resolve_value(&json!("")), None);
    assert_eq!(r.resolve_value(&json!(null)), None);
    assert_eq!(r.resolve_value(&json!({"url": null, "key": null})), None);
    assert_eq!(
        r.resolve_value(&json!({"scale": 2, "inputFileList": []})),
        None
    );
}

mod properties {
    //! For random buckets and random unicode keys, every URL style built
    //! from (bucket, key) resolves back to exactly (bucket, key).

    use proptest::prelude::*;

    use super::*;
    use crate::references::percent::encode_key;

    /// Valid S3 bucket names, dotted ones included: 3-63 characters of
    /// lowercase letters, digits, `-` and `.`, starting and ending with a
    /// letter or digit, no `..`, no `.-`/`-.`, not an IP address.
    fn bucket() -> impl Strategy<Value = String> {
        "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?){0,3}"
            .prop_filter("3 to 63 characters", |b| (3..=63).contains(&b.len()))
            .prop_filter("not an IP address", |b| {
                !b.split('.').all(|p| p.parse::<u8>().is_ok())
            })
    }

    /// Any non-empty unicode key, weighted towards the awkward: Korean,
    /// spaces, `+`, `%`, `?`, `#`, and path-like `//` and `../`.
    fn key() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "[a-zA-Z0-9_.-]{1,8}",
            "[가-힣]{1,4}",
            Just(" ".to_owned()),
            Just("+".to_owned()),
            Just("%".to_owned()),
            Just("?".to_owned()),
            Just("#".to_owned()),
            Just("/".to_owned()),
            Just("//".to_owned()),
            Just("../".to_owned()),
            any::<char>()
                .prop_filter("printable", |c| !c.is_control())
                .prop_map(String::from),
        ];
        prop::collection::vec(piece, 1..12).prop_map(|pieces| pieces.concat())
    }

    fn resolver_for(bucket: &str) -> Resolver {
        Resolver::new(&Storage {
            buckets: vec![bucket.to_owned()],
            cloudfront: vec![
                CloudFrontOrigin {
                    domain: "d111.cloudfront.net".into(),
                    bucket: bucket.to_owned(),
                    origin_path: String::new(),
                },
                CloudFrontOrigin {
                    domain: "cdn.example.com".into(),
                    bucket: bucket.to_owned(),
                    origin_path: "/media".into(),
                },
            ],
            protected: Vec::new(),
            ..Storage::default()
        })
    }

    /// Every URL style for (bucket, key), with the key it should give back.
    fn urls(bucket: &str, key: &str) -> Vec<(String, String)> {
        let encoded = encode_key(key);
        let mut urls: Vec<String> = vec![
            format!("https://{bucket}.s3.amazonaws.com/{encoded}"),
            format!("https://{bucket}.s3.ap-northeast-2.amazonaws.com/{encoded}"),
            format!("https://{bucket}.s3-ap-northeast-2.amazonaws.com/{encoded}"),
            format!("https://{bucket}.s3.dualstack.eu-west-1.amazonaws.com/{encoded}"),
            format!("https://{bucket}.s3-external-1.amazonaws.com/{encoded}"),
            format!("https://s3.amazonaws.com/{bucket}/{encoded}"),
            format!("https://s3.ap-northeast-2.amazonaws.com/{bucket}/{encoded}"),
            format!("https://s3-ap-northeast-2.amazonaws.com/{bucket}/{encoded}"),
            format!("https://s3.dualstack.us-east-1.amazonaws.com/{bucket}/{encoded}"),
            format!("http://{bucket}.s3.amazonaws.com/{encoded}"),
            format!(
                "https://{bucket}.s3.amazonaws.com/{encoded}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=3600&X-Amz-Signature=ab12"
            ),
            format!("https://d111.cloudfront.net/{encoded}"),
        ];
        // Dotted buckets cannot be virtual-hosted over TLS, but the URLs exist.
        urls.push(format!("s3://{bucket}/{key}"));
        let mut pairs: Vec<(String, String)> =
            urls.into_iter().map(|u| (u, key.to_owned())).collect();
        pairs.push((
            format!("https://cdn.example.com/{encoded}"),
            format!("media/{key}"),
        ));
        pairs
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn every_url_style_resolves_back_exactly(bucket in bucket(), key in key()) {
            let resolver = resolver_for(&bucket);
            for (url, expected_key) in urls(&bucket, &key) {
                match resolver.resolve_url(&url) {
                    Resolution::Object { object, .. } => {
                        prop_assert_eq!(&object.bucket, &bucket, "{}", url);
                        prop_assert_eq!(&object.key, &expected_key, "{}", url);
                    }
                    other => prop_assert!(false, "{} resolved to {:?}", url, other),
                }
            }
            // As a {bucket, key} object, too.
            let value = serde_json::json!({"bucket": bucket, "key": key, "url": "https://elsewhere.example/x"});
            match resolver.resolve_value(&value) {
                Some(Resolution::Object { object, .. }) => prop_assert_eq!(object.key, key),
                other => prop_assert!(false, "{:?}", other),
            }
        }

        #[test]
        fn a_console_copied_plus_is_ambiguous_between_exactly_two_keys(bucket in bucket(), key in key()) {
            prop_assume!(key.contains(' '));
            let resolver = resolver_for(&bucket);
            let console = format!("https://{bucket}.s3.amazonaws.com/{}", encode_key(&key).replace("%20", "+"));
            match resolver.resolve_url(&console) {
                Resolution::Ambiguous { plus, space, .. } => {
                    prop_assert_eq!(&space.key, &key);
                    prop_assert_eq!(plus.key, key.replace(' ', "+"));
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }
}
