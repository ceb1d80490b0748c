//! Every host and URI form AWS serves a bucket on, its lookalikes, and the
//! form each resolution names.

use serde_json::json;

use super::*;

const AP: &str = "arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap";
const OLAP: &str = "arn:aws:s3-object-lambda:us-west-2:123456789012:accesspoint/my-olap";
const DIRECTORY: &str = "bucket-name--usw2-az1--x-s3";

/// A service whose buckets include access points, a directory bucket and a
/// legacy bucket with capitals.
fn aws_resolver() -> Resolver {
    Resolver::new(&Storage {
        buckets: vec![
            "media".into(),
            "MyBucket".into(),
            "bucket".into(),
            DIRECTORY.into(),
            AP.into(),
            OLAP.into(),
            "arn:aws-cn:s3:cn-north-1:123456789012:accesspoint/cn-ap".into(),
            "arn:aws-us-gov:s3:us-gov-west-1:123456789012:accesspoint/gov-ap".into(),
            "arn:aws:s3-outposts:us-west-2:123456789012:outpost/op-01ac5d28a6a232904/accesspoint/op-ap"
                .into(),
        ],
        ..Storage::default()
    })
}

fn resolved(url: &str) -> (ObjectRef, String) {
    match aws_resolver().resolve_url(url) {
        Resolution::Object { object, via } => (object, via),
        other => panic!("{url}: expected an object, got {other:?}"),
    }
}

#[test]
fn every_aws_host_form_resolves_and_names_its_form() {
    for (url, bucket, via) in [
        (
            "https://s3-fips.us-east-1.amazonaws.com/media/k/1.png",
            "media",
            "S3 URL (FIPS, path-style)",
        ),
        (
            "https://s3-fips.dualstack.us-east-1.amazonaws.com/media/k/1.png",
            "media",
            "S3 URL (FIPS dualstack, path-style)",
        ),
        (
            "https://media.s3-fips.us-gov-west-1.amazonaws.com/k/1.png",
            "media",
            "S3 URL (FIPS, virtual-hosted)",
        ),
        (
            "https://media.s3-fips.dualstack.us-east-1.amazonaws.com/k/1.png",
            "media",
            "S3 URL (FIPS dualstack, virtual-hosted)",
        ),
        (
            "https://media.s3.cn-north-1.amazonaws.com.cn/k/1.png",
            "media",
            "S3 URL (regional, virtual-hosted)",
        ),
        (
            "https://s3.eusc-de-east-1.amazonaws.eu/media/k/1.png",
            "media",
            "S3 URL (regional, path-style)",
        ),
        (
            "https://media.s3.us-isob-east-1.sc2s.sgov.gov/k/1.png",
            "media",
            "S3 URL (regional, virtual-hosted)",
        ),
        (
            "https://media.s3.mx-central-1.amazonaws.com/k/1.png",
            "media",
            "S3 URL (regional, virtual-hosted)",
        ),
        (
            "https://media.bucket.vpce-1a2b3c4d-5e6f7g8h.s3.us-east-1.vpce.amazonaws.com/k/1.png",
            "media",
            "VPC endpoint (virtual-hosted)",
        ),
        (
            "https://media.vpce-1a2b3c4d-5e6f7g8h.s3.us-east-1.vpce.amazonaws.com/k/1.png",
            "media",
            "VPC endpoint (virtual-hosted)",
        ),
        (
            "https://vpce-1a2b3c4d-5e6f7g8h.s3.us-east-1.vpce.amazonaws.com/media/k/1.png",
            "media",
            "VPC endpoint (path-style)",
        ),
        // The SDKs' literal `bucket.` endpoint is path-style: the bucket
        // named `bucket` is not meant here, `media` is.
        (
            "https://bucket.vpce-1a2b3c4d-5e6f7g8h.s3.us-east-1.vpce.amazonaws.com/media/k/1.png",
            "media",
            "VPC endpoint (path-style)",
        ),
        (
            "https://bucket.bucket.vpce-1a2b3c4d-5e6f7g8h.s3.us-east-1.vpce.amazonaws.com/k/1.png",
            "bucket",
            "VPC endpoint (virtual-hosted)",
        ),
        (
            "https://my-ap-123456789012.accesspoint.vpce-1a2b3c4d-5e6f.s3.us-west-2.vpce.amazonaws.com/k/1.png",
            AP,
            "VPC endpoint (access point hostname)",
        ),
        (
            "https://bucket-name--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com/k/1.png",
            DIRECTORY,
            "S3 Express directory bucket (zonal, virtual-hosted)",
        ),
        (
            "https://my-ap-123456789012.s3-accesspoint.us-west-2.amazonaws.com/k/1.png",
            AP,
            "S3 access point hostname",
        ),
        (
            "https://my-ap-123456789012.s3-accesspoint.dualstack.us-west-2.amazonaws.com/k/1.png",
            AP,
            "S3 access point hostname (dualstack)",
        ),
        (
            "https://my-ap-123456789012.s3-accesspoint-fips.us-west-2.amazonaws.com/k/1.png",
            AP,
            "S3 access point hostname (FIPS)",
        ),
        (
            "https://cn-ap-123456789012.s3-accesspoint.cn-north-1.amazonaws.com.cn/k/1.png",
            "arn:aws-cn:s3:cn-north-1:123456789012:accesspoint/cn-ap",
            "S3 access point hostname",
        ),
        (
            "https://gov-ap-123456789012.s3-accesspoint.us-gov-west-1.amazonaws.com/k/1.png",
            "arn:aws-us-gov:s3:us-gov-west-1:123456789012:accesspoint/gov-ap",
            "S3 access point hostname",
        ),
        (
            "https://my-olap-123456789012.s3-object-lambda.us-west-2.amazonaws.com/k/1.png",
            OLAP,
            "S3 Object Lambda access point hostname",
        ),
        (
            "https://op-ap-123456789012.op-01ac5d28a6a232904.s3-outposts.us-west-2.amazonaws.com/k/1.png",
            "arn:aws:s3-outposts:us-west-2:123456789012:outpost/op-01ac5d28a6a232904/accesspoint/op-ap",
            "S3 on Outposts access point hostname",
        ),
        (
            "s3://arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap/k/1.png",
            AP,
            "s3:// URI (access point ARN)",
        ),
        (
            "s3://arn:aws:s3:us-west-2:123456789012:accesspoint:my-ap/k/1.png",
            AP,
            "s3:// URI (access point ARN)",
        ),
        (
            "s3://arn:aws:s3-object-lambda:us-west-2:123456789012:accesspoint/my-olap/k/1.png",
            OLAP,
            "s3:// URI (access point ARN)",
        ),
        ("s3a://media/k/1.png", "media", "s3a:// URI (Hadoop)"),
        ("S3N://media/k/1.png", "media", "s3n:// URI (Hadoop)"),
        (
            "s3://media/k/1.png?versionId=3HL4kqtJlcpXroDTDmJ",
            "media",
            "s3:// URI (query or fragment cut off the key)",
        ),
        (
            "s3a://media/k/1.png#part",
            "media",
            "s3a:// URI (Hadoop, query or fragment cut off the key)",
        ),
        (
            "https://s3.amazonaws.com/MyBucket/k/1.png",
            "MyBucket",
            "S3 URL (global, path-style)",
        ),
        (
            "https://s3.amazonaws.com/m%65dia/k/1.png",
            "media",
            "S3 URL (global, path-style)",
        ),
        (
            "https://MEDIA.s3.amazonaws.com/k/1.png",
            "media",
            "S3 URL (global, virtual-hosted)",
        ),
    ] {
        let (got, got_via) = resolved(url);
        assert_eq!(got, object(bucket, "k/1.png"), "{url}");
        assert_eq!(got_via, via, "{url}");
    }
}

#[test]
fn a_path_style_bucket_keeps_its_case_and_is_percent_decoded() {
    let r = aws_resolver();
    // `mybucket` is not `MyBucket`: a bucket compares exactly.
    assert!(matches!(
        r.resolve_url("https://s3.amazonaws.com/mybucket/k"),
        Resolution::Foreign { .. }
    ));
    assert_eq!(
        resolved("https://s3.us-east-1.amazonaws.com/My%42ucket/a%20b").0,
        object("MyBucket", "a b")
    );
    match r.resolve_url("https://s3.amazonaws.com/me%2Fdia/k") {
        Resolution::Foreign { reason } => assert!(reason.contains("encoded '/'"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        r.resolve_url("https://s3.amazonaws.com//k"),
        Resolution::Foreign { .. }
    ));
}

#[test]
fn a_query_or_fragment_is_not_part_of_an_s3_uri_key() {
    let r = aws_resolver();
    assert_eq!(
        resolved("s3://media/a b.png?versionId=1").0,
        object("media", "a b.png")
    );
    assert_eq!(resolved("s3://media/a#b").0, object("media", "a"));
    // Trailing whitespace is still part of a raw key, before a query too.
    assert_eq!(resolved("s3://media/a ").0, object("media", "a "));
    for url in [
        "s3://media/?versionId=1",
        "s3://media#k",
        "s3://?x",
        "s3:///k",
    ] {
        assert!(
            matches!(r.resolve_url(url), Resolution::Foreign { .. }),
            "{url}"
        );
    }
}

#[test]
fn lookalike_hosts_are_foreign_never_objects() {
    let r = aws_resolver();
    for url in [
        "https://s3.amazonaws.com.evil.com/media/k",
        "https://media.s3.amazonaws.com.evil.com/k",
        "https://media.s3.amazonaws.com@evil.com/k",
        "https://evil.com\\@media.s3.amazonaws.com/k",
        "https://evil.com#@media.s3.amazonaws.com/k",
        "https://media.s3.amazonaws.com%2Eevil.com/k",
        "https://evil-s3-accesspoint.com/k",
        "https://evil.com/media/k",
        "https://media-s3.amazonaws.com/k",
        "https://my-ap.s3-accesspoint.us-west-2.amazonaws.com/k",
        "https://my-ap-12345678901.s3-accesspoint.us-west-2.amazonaws.com/k",
        "https://my-ap-1234567890123.s3-accesspoint.us-west-2.amazonaws.com/k",
        "https://my-ap-123456789012.s3-accesspoint.us-west-2.amazonaws.com.evil.com/k",
        "https://my-ap-123456789012.s3-accesspoint.amazonaws.com/k",
        "https://x.my-ap-123456789012.s3-accesspoint.us-west-2.amazonaws.com/k",
        "https://accesspoint.vpce-1a2b3c4d-5e6f.s3.us-west-2.vpce.amazonaws.com/k",
        "https://control.vpce-1a2b3c4d-5e6f.s3.us-west-2.vpce.amazonaws.com/media/k",
        "https://mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com/k",
        "https://s3express-control.us-west-2.amazonaws.com/bucket-name--usw2-az1--x-s3/k",
        "s3://arn:aws:iam::123456789012:role/media/k",
        "s3://arn:aws:s3:us-west-2:123456789012:accesspoint/other-ap/k",
        "s3://arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap",
        "s3x://media/k",
        "https://s3.amazonaws.com/media",
    ] {
        match r.resolve_url(url) {
            Resolution::Foreign { .. } => {}
            other => panic!("{url}: expected foreign, got {other:?}"),
        }
    }
}

#[test]
fn explanations_name_the_form_of_every_outcome() {
    let r = aws_resolver();
    let explain = |url: &str| r.explain_url(url);
    let cases = [
        (
            "https://media.s3.amazonaws.com/k",
            "object",
            "S3 URL (global, virtual-hosted)",
        ),
        (
            "https://media.s3.amazonaws.com/a+b",
            "ambiguous",
            "S3 URL (global, virtual-hosted)",
        ),
        (
            "https://other.s3.amazonaws.com/k",
            "foreign",
            "S3 URL (global, virtual-hosted)",
        ),
        ("https://example.com/k", "foreign", "not recognised"),
        ("mailto:x@example.com", "foreign", "not recognised"),
        (
            "https://my-ap.s3-accesspoint.us-west-2.amazonaws.com/k",
            "foreign",
            "S3 access point hostname",
        ),
        ("s3n://media/k", "object", "s3n:// URI (Hadoop)"),
    ];
    for (url, outcome, form) in cases {
        let explanation = explain(url);
        assert_eq!(explanation.form, form, "{url}");
        let json = serde_json::to_value(&explanation).unwrap();
        assert_eq!(json["outcome"], outcome, "{url}");
        assert_eq!(json["form"], form, "{url}");
        let text = explanation.to_string();
        assert!(text.contains(form), "{url}: {text}");
    }
    let fields = r
        .explain_value(&json!({"bucket": "media", "key": "k"}))
        .unwrap();
    assert_eq!(fields.form, "bucket+key fields");
    assert_eq!(r.explain_value(&json!(7)).unwrap().form, "JSON number");
}

#[test]
fn foreign_reasons_say_which_part_was_not_recognised_and_repeat_no_key() {
    let r = aws_resolver();
    for (url, says) in [
        ("https://example.com/member-42/a.png", "host example.com"),
        ("ftp://example.com/member-42/a.png", "scheme ftp://"),
        ("member-42/a.png", "not a URL"),
        (
            "https://media.s3.amazonaws.com@evil.com/member-42",
            "host evil.com",
        ),
        (
            "https://evil.com\\@media.s3.amazonaws.com/member-42",
            "host is not a valid host name",
        ),
        (
            "https://my-ap-12345678901.s3-accesspoint.us-west-2.amazonaws.com/member-42",
            "12-digit account id",
        ),
        (
            "https://other.s3.amazonaws.com/member-42",
            "bucket \"other\"",
        ),
        (
            "https://s3.amazonaws.com/member-42%20x/a.png",
            "not a valid bucket name",
        ),
        (
            "s3://arn:aws:s3:mars:123456789012:accesspoint/a/member-42",
            "region",
        ),
        ("https://media.s3.amazonaws.com/%FFmember-42", "UTF-8"),
    ] {
        match r.resolve_url(url) {
            Resolution::Foreign { reason } => {
                assert!(reason.contains(says), "{url}: {reason}");
                assert!(!reason.contains("member-42"), "{url}: {reason}");
            }
            other => panic!("{url}: {other:?}"),
        }
    }
}
