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

mod forms;
mod properties;
